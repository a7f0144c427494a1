/**
 * The typed errors a {@link ConnectionPool} can fail with, besides the
 * driver's own connection errors.
 *
 * @since 0.1.0
 */
import { Data } from "effect"

/**
 * A point-in-time summary of a pool, carried by its errors so that a timeout
 * says *why* there was no connection.
 *
 * @since 0.1.0
 * @category models
 */
export interface PoolSnapshot {
  readonly idle: number
  readonly inUse: number
  readonly pending: number
  readonly max: number
}

const describe = (s: PoolSnapshot) => `idle ${s.idle}, in use ${s.inUse}/${s.max}, ${s.pending} waiting`

/**
 * No connection could be borrowed within `acquireTimeout`.
 *
 * @since 0.1.0
 * @category errors
 */
export class PoolTimeout extends Data.TaggedError("PoolTimeout")<{
  readonly pool: string
  readonly timeoutMillis: number
  readonly snapshot: PoolSnapshot
}> {
  override get message(): string {
    return `pool "${this.pool}": no connection available within ${this.timeoutMillis} ms (${
      describe(this.snapshot)
    }). Raise max or acquireTimeout, shorten the work done while holding a connection, or turn on ` +
      `leakDetectionThreshold to find a borrower that never returns its connection.`
  }
}

/**
 * Opening one connection took longer than `connectTimeout`: the server
 * accepted nothing, or hung during the handshake. Classified as a connection
 * fault (the server may be down or stopped).
 *
 * @since 0.1.0
 * @category errors
 */
export class ConnectTimeout extends Data.TaggedError("ConnectTimeout")<{
  readonly pool: string
  readonly timeoutMillis: number
}> {
  override get message(): string {
    return `pool "${this.pool}": opening a connection took longer than ${this.timeoutMillis} ms. ` +
      `Check that the server is up and reachable, or raise connectTimeout.`
  }
}

/**
 * The pool is draining or closed: it accepts no new borrowers.
 *
 * @since 0.1.0
 * @category errors
 */
export class PoolClosed extends Data.TaggedError("PoolClosed")<{
  readonly pool: string
}> {
  override get message(): string {
    return `pool "${this.pool}" is shutting down and lends no more connections. ` +
      `Use it only inside the scope (Layer) that owns it.`
  }
}

/**
 * The options given to a pool are inconsistent.
 *
 * @since 0.1.0
 * @category errors
 */
export class InvalidPoolOptions extends Data.TaggedError("InvalidPoolOptions")<{
  readonly pool: string
  readonly option: string
  readonly reason: string
}> {
  override get message(): string {
    return `pool "${this.pool}": invalid option ${this.option}: ${this.reason}`
  }
}
