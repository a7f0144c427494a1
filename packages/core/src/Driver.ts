/**
 * What a backend (LDAP, PostgreSQL, a test fake) plugs into the core. The
 * core never imports a client library: it only knows how to open a
 * connection to an endpoint, check it, probe the server and classify errors.
 *
 * @since 0.1.0
 */
import type { Effect, Scope } from "effect"
import type { Endpoint } from "./Endpoint.ts"
import type { Classifier } from "./Fault.ts"
import type { Role } from "./Endpoint.ts"
import type { Credentials } from "./Identity.ts"
import type { InvalidPoolOptions } from "./PoolError.ts"

/**
 * What a health probe found: its latency (measured by the monitor when
 * omitted) and, for backends that can tell, the role the server plays now
 * (a PostgreSQL replica that was promoted reports `primary`) and its
 * `timeline`: a number that grows with every promotion (PostgreSQL's
 * timeline id, a consensus term). When two endpoints claim `primary`, only
 * the one on the highest timeline is written to; the other is fenced as a
 * stale primary (see `Balancer.observe`).
 *
 * @since 0.1.0
 * @category models
 */
export interface Probe {
  readonly latencyMillis?: number | undefined
  readonly role?: Role | undefined
  readonly timeline?: number | undefined
}

/**
 * A backend driver for connections of type `C` whose opening fails with `E`.
 *
 * @example
 * ```ts
 * import type { Driver } from "@tether/core"
 * import { Fault } from "@tether/core"
 * import { Effect } from "effect"
 *
 * // What your client library provides:
 * interface Client { readonly url: string }
 * class ConnectError extends Error {}
 * declare const open: (url: string) => Effect.Effect<Client, ConnectError>
 * declare const close: (client: Client) => Effect.Effect<void>
 * declare const ping: (client: Client) => Effect.Effect<void, ConnectError>
 * declare const isRefused: (error: unknown) => boolean
 *
 * const driver: Driver.Driver<Client, ConnectError> = {
 *   connect: (endpoint) => Effect.acquireRelease(open(endpoint.url), (c) => close(c)),
 *   validate: (client) => ping(client),
 *   classify: (error) => Fault.make(isRefused(error) ? "connection" : "semantic")
 * }
 * ```
 *
 * @since 0.1.0
 * @category models
 */
export interface Driver<C, E> {
  /**
   * Opens one connection to the endpoint, bound as `identity` (`undefined`:
   * the driver's own default identity, e.g. a configured service account).
   * Closing the scope closes it. Keep it interruptible. A rejected bind
   * should fail with an error `classify` calls `authentication`.
   */
  readonly connect: (endpoint: Endpoint, identity: Credentials | undefined) => Effect.Effect<C, E, Scope.Scope>
  /** A cheap check that a pooled connection still works (see `ConnectionPool.Options.validate`). */
  readonly validate?:
    | ((connection: C, identity: Credentials | undefined) => Effect.Effect<unknown, unknown>)
    | undefined
  /**
   * Probes a server's health. The default opens a fresh connection and
   * validates it, so a hung server is noticed even while the pool is idle.
   */
  readonly probe?: ((endpoint: Endpoint) => Effect.Effect<Probe | void, unknown>) | undefined
  /**
   * Re-binds an idle connection as another identity (`undefined`: the
   * driver's default identity), saving the TCP and TLS handshakes of a new
   * connection. Optional: drivers that cannot re-bind (PostgreSQL) leave it
   * out and the pool opens a new connection instead. When it fails, the pool
   * destroys the connection: it is never returned half-bound.
   */
  readonly rebind?:
    | ((connection: C, identity: Credentials | undefined) => Effect.Effect<void, E>)
    | undefined
  /**
   * Says at once, without I/O, whether a pooled connection may be lent:
   * `false` when the driver knows the connection lost the identity it was
   * bound as (its socket closed, so the client library would reconnect it
   * unbound). Checked before every loan, even within `validationWindow`; a
   * connection that is not ready is destroyed and another one lent.
   */
  readonly isReady?: ((connection: C) => boolean) | undefined
  /** Classifies any failure of `connect` or of work done on a connection. */
  readonly classify: Classifier
  /** Says whether an error means the connection itself is broken (destroy it instead of pooling it). */
  readonly isBroken?: ((error: unknown) => boolean) | undefined
  /**
   * Checks the driver's own options (timeouts, credentials, TLS): `ServerSet.make` runs it before it
   * builds anything, so a bad option fails construction with a typed error rather than the first connect.
   */
  readonly checkOptions?: Effect.Effect<void, InvalidPoolOptions> | undefined
}
