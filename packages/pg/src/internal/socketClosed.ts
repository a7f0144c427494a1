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
import { PgConnectionError } from "../PgError.ts"

export interface SocketClosed {
  /** Whether the socket closed. */
  readonly closed: boolean
  /** Marks the socket closed: statements waiting in {@link race} fail (see `race`). */
  readonly close: () => void
  /**
   * Runs a postgres.js statement (lazy: it starts when awaited) and settles
   * like it, or fails once the socket has closed under it:
   * - closed before it started: it is never started (postgres.js would send it
   *   on a silently reopened session) and fails with `notSent()`;
   * - closed while it runs: after one turn of the event loop (its own answer
   *   or error, delivered on the same close, wins), it fails with `cutOff()`.
   */
  readonly race: <A>(statement: PromiseLike<A>) => Promise<A>
  /**
   * `race` without a promise of its own, for a caller that settles a statement
   * itself: `onClose` hears the cut-off cause once the socket has closed (one
   * turn of the event loop after the close, as in `race`), unless
   * {@link unwatch}ed first. `false` (and no call ever) when already closed.
   */
  readonly watch: (onClose: (cause: unknown) => void) => boolean
  readonly unwatch: (onClose: (cause: unknown) => void) => void
  /** What a statement that was never sent fails with. */
  readonly notSent: () => unknown
}

/** `notSent` and `cutOff` build what a statement fails with (classified as connection errors). */
export const make = (errors: { readonly notSent: () => unknown; readonly cutOff: () => unknown }): SocketClosed => {
  let closed = false
  const waiting = new Set<(cause: unknown) => void>()
  const watch = (onClose: (cause: unknown) => void): boolean => {
    if (closed) return false
    waiting.add(onClose)
    return true
  }
  const unwatch = (onClose: (cause: unknown) => void): void => {
    waiting.delete(onClose)
  }
  return {
    get closed() {
      return closed
    },
    close: () => {
      if (closed) return
      closed = true
      if (waiting.size === 0) return
      setImmediate(() => {
        const cause = errors.cutOff()
        for (const onClose of waiting) onClose(cause)
        waiting.clear()
      })
    },
    watch,
    unwatch,
    notSent: errors.notSent,
    race: <A>(statement: PromiseLike<A>): Promise<A> =>
      new Promise<A>((resolve, reject) => {
        if (!watch(reject)) return reject(errors.notSent())
        statement.then(
          (value) => {
            unwatch(reject)
            resolve(value)
          },
          (cause: unknown) => {
            unwatch(reject)
            reject(cause)
          }
        )
      })
  }
}

/**
 * The socket watch of a session to `endpoint`: a statement never sent fails as
 * a retryable `PgConnectionError` that did not reach the server; one cut off
 * fails as postgres.js's own `CONNECTION_CLOSED` (outcome unknown for a write).
 */
export const forEndpoint = (endpoint: string): SocketClosed =>
  make({
    notSent: () =>
      new PgConnectionError({
        endpoint,
        code: "CONNECTION_CLOSED",
        reason: "the session's connection had closed: the statement was not sent",
        mayHaveReachedServer: false
      }),
    cutOff: () => Object.assign(new Error("the connection closed with the statement in flight"), { code: "CONNECTION_CLOSED" })
  })

/**
 * A statement started only when {@link SocketClosed.race} awaits it: for eager
 * promises (an iterator's `next()`, a `Promise.all`), so that a session whose
 * socket already closed never starts them.
 */
export const lazily = <A>(start: () => PromiseLike<A>): PromiseLike<A> => ({
  then: (onFulfilled, onRejected) => start().then(onFulfilled, onRejected)
})
