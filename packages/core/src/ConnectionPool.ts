/**
 * A pool of connections to one server, built on Effect's `Pool.makeWithTTL`,
 * with what users of HikariCP expect on top: a maximum lifetime, a borrow
 * timeout, validation on borrow (skipped for recently used connections),
 * keep-alive probes, warm-up to `min`, leak detection, graceful drain and
 * statistics as Effect metrics.
 *
 * A driver supplies `acquire` — a scoped effect that opens one connection
 * (closing its scope closes the connection) — and optionally a cheap
 * `validate`.
 *
 * @example
 * ```ts
 * import { ConnectionPool } from "@tether/core"
 * import { Effect } from "effect"
 *
 * // What your client library provides:
 * interface Connection { readonly id: number }
 * declare const openConnection: Effect.Effect<Connection, Error>
 * declare const closeConnection: (c: Connection) => Effect.Effect<void>
 * declare const ping: (c: Connection) => Effect.Effect<void, Error>
 * declare const query: (c: Connection, sql: string) => Effect.Effect<ReadonlyArray<unknown>, Error>
 *
 * const program = Effect.gen(function*() {
 *   const pool = yield* ConnectionPool.make({
 *     name: "db-1",
 *     acquire: Effect.acquireRelease(openConnection, (c) => closeConnection(c)),
 *     validate: (c) => ping(c),
 *     min: 2,
 *     max: 10
 *   })
 *   return yield* pool.use((connection) => query(connection, "select 1"))
 * }).pipe(Effect.scoped)
 * ```
 *
 * @since 0.1.0
 */
import type { Context, Duration, Effect, Scope } from "effect"
import { Layer } from "effect"
import * as internal from "./internal/connectionPool.ts"
import type { ConnectTimeout, InvalidPoolOptions, PoolClosed, PoolTimeout } from "./PoolError.ts"

/**
 * How to build a {@link ConnectionPool}.
 *
 * @since 0.1.0
 * @category models
 */
export interface Options<A, E, R> {
  /** A label for metrics, logs and errors, e.g. the server's URL. Never put a secret here. */
  readonly name: string
  /**
   * Opens one connection. Closing the `Scope` it runs in must close the
   * connection. Keep the connect step interruptible (the acquire step of
   * `Effect.acquireRelease` is not), or `connectTimeout` cannot cut a hung
   * handshake short: give the driver its own connect timeout too.
   */
  readonly acquire: Effect.Effect<A, E, R>
  /**
   * A cheap liveness check, run on borrow for a connection unused for longer
   * than `validationWindow`, and by the keep-alive. A failure (or `false`)
   * destroys the connection and the borrower gets another one.
   */
  readonly validate?: ((connection: A) => Effect.Effect<unknown, unknown>) | undefined
  /**
   * Says whether an error raised while using a connection means the
   * connection itself is broken (reset, closed); such a connection is
   * destroyed instead of being returned to the pool.
   */
  readonly isBroken?: ((error: unknown) => boolean) | undefined
  /** Connections kept open even when idle, opened at start-up. Default 0. */
  readonly min?: number | undefined
  /** The most connections open at once. Default 10. */
  readonly max?: number | undefined
  /** How many borrowers may share one connection at once (multiplexing). Default 1. */
  readonly concurrency?: number | undefined
  /** Idle connections above `min` are closed after this long unused. Default 10 minutes. */
  readonly idleTimeToLive?: Duration.Input | undefined
  /** A connection this old is closed when next idle, even if it has been busy all along. Default 30 minutes. */
  readonly maxLifetime?: Duration.Input | undefined
  /** How long a borrower waits for a connection before failing with `PoolTimeout`. Default 30 seconds. */
  readonly acquireTimeout?: Duration.Input | undefined
  /** How long opening one connection may take before it fails with `ConnectTimeout`. Default 10 seconds. */
  readonly connectTimeout?: Duration.Input | undefined
  /** A connection used within this window is lent without validation. Default 500 ms. */
  readonly validationWindow?: Duration.Input | undefined
  /**
   * Probe idle connections unused for this long with `validate`, so that
   * firewalls do not silently drop them. Must exceed `idleTimeToLive` when
   * `min < max`, or the probes would keep surplus connections alive. Off by default.
   */
  readonly keepAliveInterval?: Duration.Input | undefined
  /** Log a warning (with the borrower's span) when a borrow is held longer than this. Off by default. */
  readonly leakDetectionThreshold?: Duration.Input | undefined
  /** On shutdown, how long to wait for borrowed connections before interrupting their borrowers. Default 30 seconds. */
  readonly drainTimeout?: Duration.Input | undefined
  /** How often the housekeeper checks lifetimes, keep-alives and leaks. Default 1 second. */
  readonly housekeepingInterval?: Duration.Input | undefined
  /** Open `min` connections before the pool is returned. Default `true`. */
  readonly warmUp?: boolean | undefined
}

/**
 * A point-in-time snapshot of a pool. Counters are totals since the pool
 * started.
 *
 * @since 0.1.0
 * @category models
 */
export interface Stats {
  readonly name: string
  /** Open connections nobody is using. */
  readonly idle: number
  /** Open connections lent to at least one borrower. */
  readonly inUse: number
  /** Borrowers waiting for a connection. */
  readonly pending: number
  readonly min: number
  readonly max: number
  readonly created: number
  readonly destroyed: number
  readonly acquireFailures: number
  readonly timeouts: number
  readonly validationFailures: number
  readonly leaksDetected: number
  readonly borrows: number
  readonly draining: boolean
}

/**
 * The errors a borrow can fail with, besides the driver's own `E`.
 *
 * @since 0.1.0
 * @category models
 */
export type BorrowError = PoolTimeout | ConnectTimeout | PoolClosed

/**
 * A pool of connections of type `A` whose opening may fail with `E`.
 *
 * @since 0.1.0
 * @category models
 */
export interface ConnectionPool<A, E = never> {
  readonly name: string
  /**
   * Borrows a connection, runs `f` with it and returns it — the fast path:
   * no `Scope` is allocated per borrow. Interrupting the caller returns the
   * connection.
   */
  readonly use: <B, E2, R2>(f: (connection: A) => Effect.Effect<B, E2, R2>) => Effect.Effect<B, E | E2 | BorrowError, R2>
  /** Borrows a connection for the lifetime of the current `Scope`. */
  readonly get: Effect.Effect<A, E | BorrowError, Scope.Scope>
  /** Destroys a connection instead of returning it to the pool (when its borrower returns it). */
  readonly invalidate: (connection: A) => Effect.Effect<void>
  /** Destroys every idle connection (e.g. when the server was found unhealthy). Returns how many. */
  readonly invalidateIdle: Effect.Effect<number>
  /** A snapshot of the pool. */
  readonly stats: Effect.Effect<Stats>
}

/**
 * Makes a pool in the current `Scope`. Closing the scope drains it: new
 * borrowers fail with `PoolClosed`, borrowed connections are awaited up to
 * `drainTimeout` (then their borrowers are interrupted), and every
 * connection is closed.
 *
 * Fails with `InvalidPoolOptions` when the options are inconsistent.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make: <A, E, R>(
  options: Options<A, E, R>
) => Effect.Effect<ConnectionPool<A, E>, InvalidPoolOptions, Exclude<R, Scope.Scope> | Scope.Scope> = internal.make

/**
 * A `Layer` that provides a pool under your own service key.
 *
 * @example
 * ```ts
 * import { ConnectionPool } from "@tether/core"
 * import { Context, Effect } from "effect"
 *
 * interface Connection { readonly id: number }
 * class ConnectError extends Error {}
 * declare const openConnection: Effect.Effect<Connection, ConnectError>
 *
 * class DbPool extends Context.Service<DbPool, ConnectionPool.ConnectionPool<Connection, ConnectError>>()("app/DbPool") {}
 *
 * const DbPoolLive = ConnectionPool.layer(DbPool, { name: "db", acquire: openConnection, max: 10 })
 * ```
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = <I, A, E, R>(
  key: Context.Key<I, ConnectionPool<A, E>>,
  options: Options<A, E, R>
): Layer.Layer<I, InvalidPoolOptions, Exclude<R, Scope.Scope>> => Layer.effect(key, make(options))

/**
 * The default options, for documentation and for code that derives its own.
 *
 * @since 0.1.0
 * @category constants
 */
export const defaults = internal.defaults
