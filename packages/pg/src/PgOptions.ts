/**
 * The options `PgClient` and `PgSql` share: where the servers are, how to log
 * in, timeouts, routing, pools, health, breaker, retry, cache and slow-query
 * log. Each client's `Options` extends {@link Common} with its own.
 *
 * @since 0.2.0
 */
import type { Balancer, CircuitBreaker, Endpoint, ServerSet } from "@tether/core"
import type { Duration, Redacted, Schedule } from "effect"
import type * as PgDriver from "./PgDriver.ts"

/**
 * Where reads go: `replica-preferred` (default: replicas, the primary when
 * no replica is usable), `replica-only`, or `any` endpoint.
 *
 * @since 0.2.0
 * @category models
 */
export type ReadFrom = "replica-preferred" | "replica-only" | "any"

/**
 * Options of both clients.
 *
 * @since 0.2.0
 * @category models
 */
export interface Common {
  /** Names the client in logs, metrics and spans. Default `pg`. */
  readonly name?: string | undefined
  /**
   * `postgres://host:port/db` URLs (no credentials), host lists
   * (`postgres://h1:5432,h2:5432/db`: one endpoint per host), or endpoint
   * definitions with a `role`.
   */
  readonly endpoints: ReadonlyArray<Endpoint.EndpointInput | string>
  /** The default role: operations not run as an identity log in as it. */
  readonly user: string
  readonly password?: Redacted.Redacted<string> | undefined
  /** Default `postgres`, or the database in the endpoint's URL. */
  readonly database?: string | undefined
  /**
   * TLS of every endpoint, as libpq's `sslmode` (default `disable`); a URL's
   * own `?sslmode=` / `?sslrootcert=` and an endpoint's `tls` win. See
   * `PgDriver.SslMode`.
   */
  readonly ssl?: PgDriver.SslMode | undefined
  /** The CA to verify servers against: PEM text or a file path (default: the system's CAs). */
  readonly ca?: string | undefined
  /** `application_name` of every session. Default `tether`. */
  readonly applicationName?: string | undefined
  /** Default 5 seconds. */
  readonly connectTimeout?: Duration.Input | undefined
  /** Server-side `statement_timeout`, sent at connect (not behind PgBouncer). Default: none. */
  readonly statementTimeout?: Duration.Input | undefined
  /** Client-side bound on every statement (a hung server or socket). Default 30 seconds. */
  readonly queryTimeout?: Duration.Input | undefined
  /** Where reads go. Default `replica-preferred`. */
  readonly readFrom?: ReadFrom | undefined
  /** Balancing strategy. Default `round-robin`. */
  readonly strategy?: Balancer.Strategy | undefined
  /** Pool options of each endpoint (see `ServerSet.Options.pool`). */
  readonly pool?: ServerSet.Options<unknown, unknown>["pool"]
  /** Health probes (they also detect each server's role). Default every 2 seconds. */
  readonly health?: ServerSet.Options<unknown, unknown>["health"]
  readonly breaker?: false | Omit<CircuitBreaker.Options, "endpoint" | "classify"> | undefined
  /** Failover of statements that were not sent (and of idempotent reads and transactions). */
  readonly retry?: false | { readonly schedule?: Schedule.Schedule<unknown, unknown> | undefined } | undefined
  /** The result cache of `cached` reads (single flight). Default 1,000 results for 10 seconds. */
  readonly cache?: { readonly capacity?: number | undefined; readonly ttl?: Duration.Input | undefined } | undefined
  /** Statements slower than this are logged (text only, never parameter values) and counted. Default 1 second. */
  readonly slowQueryThreshold?: Duration.Input | undefined
}

/**
 * The options of {@link Common} alone (what one client hands the other).
 *
 * @since 0.2.0
 * @category constructors
 */
export const common = (options: Common): Common => ({
  name: options.name,
  endpoints: options.endpoints,
  user: options.user,
  password: options.password,
  database: options.database,
  ssl: options.ssl,
  ca: options.ca,
  applicationName: options.applicationName,
  connectTimeout: options.connectTimeout,
  statementTimeout: options.statementTimeout,
  queryTimeout: options.queryTimeout,
  readFrom: options.readFrom,
  strategy: options.strategy,
  pool: options.pool,
  health: options.health,
  breaker: options.breaker,
  retry: options.retry,
  cache: options.cache,
  slowQueryThreshold: options.slowQueryThreshold
})
