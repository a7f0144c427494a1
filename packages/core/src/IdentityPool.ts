/**
 * Credential-aware pooling for one server: idle connections are kept per
 * identity (keyed by a digest of principal and secret, never by the plain
 * secret), under one global `max` across identities and an optional
 * `maxPerIdentity`. When the pool is full and an identity needs a connection
 * while other identities' connections sit idle, the least recently used idle
 * one is re-bound as the new identity (drivers that can, see `rebind`) or
 * closed to make room. A connection bound as A is never lent to a
 * borrower running as B.
 *
 * A changed secret for the same principal (a password rotation, or a caller
 * with a wrong password) replaces the old one only once it has bound: until
 * then connections of the old secret keep serving their callers, and a bind
 * that fails is its caller's typed error alone. Once a connection of the new
 * secret is open, those of the old one are retired gracefully (work in
 * flight completes; callers still holding the old secret get fresh
 * connections, which bind only if the server still accepts it).
 *
 * A connection is lent only while its bound identity is known: drivers that
 * can lose it (ldapts reconnects unbound) say so through `isReady`, checked
 * before every loan.
 *
 * @example
 * ```ts
 * import { Identity, IdentityPool } from "@tether/core"
 * import { Effect, Redacted } from "effect"
 *
 * // What your client library provides:
 * interface Client { readonly id: number }
 * declare const openAndBind: (
 *   principal: string | undefined,
 *   secret: Redacted.Redacted<string> | undefined
 * ) => Effect.Effect<Client, Error>
 * declare const whoami: (client: Client) => Effect.Effect<string, Error>
 *
 * const program = Effect.gen(function*() {
 *   const pool = yield* IdentityPool.make({
 *     name: "ldap1",
 *     // `undefined`: the default identity (here an anonymous bind)
 *     connect: (identity) => openAndBind(identity?.principal, identity?.secret),
 *     max: 20,
 *     maxPerIdentity: 4
 *   })
 *   const alice = Identity.make("uid=alice,ou=people,dc=example,dc=com", Redacted.make("…"))
 *   return yield* pool.use(alice, (client) => whoami(client))
 * }).pipe(Effect.scoped)
 * ```
 *
 * @since 0.1.0
 */
import type { Effect, Scope } from "effect"
import type * as ConnectionPool from "./ConnectionPool.ts"
import type { Credentials } from "./Identity.ts"
import * as internal from "./internal/identityPool.ts"
import type { InvalidPoolOptions } from "./PoolError.ts"

/**
 * Options of {@link make}.
 *
 * @since 0.1.0
 * @category models
 */
export interface Options<C, E> {
  /** Names the pool in logs, metrics and errors (never a secret). */
  readonly name: string
  /**
   * Opens a connection bound as `identity` (`undefined`: the driver's default
   * identity). Closing the scope closes it. A rejected bind should fail with
   * the driver's typed "invalid credentials" error: it reaches that caller only.
   */
  readonly connect: (identity: Credentials | undefined) => Effect.Effect<C, E, Scope.Scope>
  /**
   * Re-binds an idle connection as another identity. When given, making room
   * for an identity re-binds another identity's least recently used idle
   * connection instead of closing it and opening a new one (an LDAP bind on
   * an open connection saves the TCP and TLS handshakes). A connection whose
   * re-bind fails is closed, never pooled half-bound, and a new one is opened.
   */
  readonly rebind?: ((connection: C, identity: Credentials | undefined) => Effect.Effect<void, unknown>) | undefined
  /** Checks a pooled connection (ideally that it is still bound as `identity`). */
  readonly validate?: ((connection: C, identity: Credentials | undefined) => Effect.Effect<unknown, unknown>) | undefined
  /**
   * Says at once whether a pooled connection still holds the identity it was
   * bound as (see `Driver.isReady`). A connection that is not ready is never
   * lent: it is destroyed and the borrow goes to another connection.
   */
  readonly isReady?: ((connection: C) => boolean) | undefined
  /** Says whether an error means the connection is broken. */
  readonly isBroken?: ((error: unknown) => boolean) | undefined
  /** Connections of the default identity kept open, opened at start-up. Default 0. */
  readonly min?: number | undefined
  /** Open connections across all identities. Default 10. */
  readonly max?: number | undefined
  /** Open connections of one identity. Default `max`. */
  readonly maxPerIdentity?: number | undefined
  /**
   * Reuse with bounded fairness: when the first waiter would have to evict
   * another identity's idle connection, a later waiter of that connection's
   * identity is served with it instead (no bind), and a connection just
   * returned is left to its identity for one scheduler turn; at most this
   * many times in a row, then the first waiter takes its turn. 0: strict
   * arrival order. Default 8: with 10 identities busy on 8 connections, 4
   * reused 76–77 % of borrows and 8 reuses 85–86 %, with no worse p99
   * acquire time (`npm run bench -- --suite identity`).
   */
  readonly maxReuseStreak?: number | undefined
  /** Options of the connections (see `ConnectionPool.Options`). */
  readonly pool?:
    | Omit<ConnectionPool.Options<C, E, never>, "name" | "acquire" | "validate" | "isBroken" | "max" | "min">
    | undefined
}

/**
 * One identity's share of the pool, by its label (never its secret).
 *
 * @since 0.1.0
 * @category models
 */
export interface IdentityStats {
  readonly label: string
  readonly idle: number
  readonly inUse: number
  readonly borrows: number
  readonly created: number
}

/**
 * A snapshot of the whole pool.
 *
 * @since 0.1.0
 * @category models
 */
export interface Stats extends ConnectionPool.Stats {
  /** Open connections of one identity (see `Options.maxPerIdentity`). */
  readonly maxPerIdentity?: number | undefined
  /** Connections open now, across identities (at most `max`). */
  readonly open: number
  /** Idle connections closed (or re-bound) to make room for another identity. */
  readonly evictions: number
  /** Evicted connections re-bound as another identity instead of being closed. */
  readonly rebinds: number
  /** Re-binds that failed (the connection was closed and a new one opened). */
  readonly rebindFailures: number
  /** Borrows served by a connection already open (and bound as the right identity). */
  readonly reuseRate: number
  readonly identities: ReadonlyArray<IdentityStats>
}

/**
 * A running credential-aware pool.
 *
 * @since 0.1.0
 * @category models
 */
export interface IdentityPool<C, E> {
  readonly name: string
  /** Borrows a connection bound as `identity` (`undefined`: the default identity), runs `f`, returns it. */
  readonly use: <A, E2, R>(
    identity: Credentials | undefined,
    f: (connection: C) => Effect.Effect<A, E2, R>
  ) => Effect.Effect<A, E | E2 | ConnectionPool.BorrowError, R>
  /** Destroys every idle connection of every identity. Returns how many. */
  readonly invalidateIdle: Effect.Effect<number>
  readonly stats: Effect.Effect<Stats>
  /**
   * Changes the limits while running. Growing admits waiters at once;
   * shrinking closes idle connections above the new limit and the others as
   * they are given back — work in flight is never failed or interrupted.
   * `maxPerIdentity` follows `max` unless it was ever given.
   */
  readonly resize: (limits: Limits) => Effect.Effect<void, InvalidPoolOptions>
}

/**
 * New limits for {@link IdentityPool.resize}; what is left out stays.
 *
 * @since 0.1.0
 * @category models
 */
export interface Limits {
  readonly min?: number | undefined
  readonly max?: number | undefined
  readonly maxPerIdentity?: number | undefined
}

/**
 * Makes a credential-aware pool in the current scope.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make: <C, E>(
  options: Options<C, E>
) => Effect.Effect<IdentityPool<C, E>, InvalidPoolOptions, Scope.Scope> = internal.make
