/**
 * Tells when a postgres.js session's socket closed, and fails statements still
 * waiting on it.
 *
 * postgres.js can leave a statement that was in flight when its socket was
 * reset unsettled for ever (seen under `FaultProxy.resetAll`: a few statements
 * in every 10 s of resets), and it reconnects a closed session silently on the
 * next statement. Tether therefore never lends a session whose socket closed
 * and races each statement against the close.
 *
 * @internal
 */
import type { PgError } from "../PgError.ts"

export interface SocketClosed {
  /** Whether the socket closed. */
  readonly closed: boolean
  /** Marks the socket closed: statements waiting in {@link race} fail with `error()`. */
  readonly close: () => void
  /** Settles like `statement`, or rejects with the close error as soon as the socket closes. */
  readonly race: <A>(statement: Promise<A>) => Promise<A>
}

/** `error` builds what a statement cut off by the close rejects with (classified as a connection error). */
export const make = (error: () => PgError | Error): SocketClosed => {
  let closed = false
  const waiting = new Set<(cause: unknown) => void>()
  return {
    get closed() {
      return closed
    },
    close: () => {
      if (closed) return
      closed = true
      const cause = error()
      for (const reject of waiting) reject(cause)
      waiting.clear()
    },
    race: <A>(statement: Promise<A>): Promise<A> => {
      if (closed) {
        statement.catch(() => undefined)
        return Promise.reject(error())
      }
      return new Promise<A>((resolve, reject) => {
        waiting.add(reject)
        statement.then(
          (value) => {
            waiting.delete(reject)
            resolve(value)
          },
          (cause: unknown) => {
            waiting.delete(reject)
            reject(cause)
          }
        )
      })
    }
  }
}
