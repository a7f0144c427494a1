/**
 * The options `PgClient` and `PgSql` share: where the servers are, how to log
 * in, timeouts, routing, pools, health, breaker, retry, cache and slow-query
 * log. Each client's `Options` extends {@link Common} with its own.
 *
 * @since 0.2.0
 */
import type { ClientOptions } from "@tether/core"
import type { Duration, Redacted } from "effect"
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
 * Options of both clients: the options of every `ServerSet`-backed client
 * (`ClientOptions`), with these meanings and defaults for PostgreSQL —
 * - `name`: names the client in logs, metrics and spans. Default `pg`.
 * - `endpoints`: `postgres://host:port/db` URLs (no credentials), host lists
 *   (`postgres://h1:5432,h2:5432/db`: one endpoint per host), or endpoint
 *   definitions with a `role`.
 * - `connectTimeout`: default 5 seconds.
 * - `strategy`: balancing strategy. Default `round-robin`.
 * - `pool`: pool options of each endpoint (see `ServerSet.Options.pool`).
 * - `health`: health probes (they also detect each server's role). Default every 2 seconds.
 * - `breaker`: the circuit breaker of each endpoint; `false` turns it off.
 * - `retry`: failover of statements that were not sent (and of idempotent reads and transactions).
 *
 * — and PostgreSQL's own below.
 *
 * @since 0.2.0
 * @category models
 */
export interface Common extends ClientOptions.ClientOptions {
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
  /** Server-side `statement_timeout`, sent at connect (not behind PgBouncer). Default: none. */
  readonly statementTimeout?: Duration.Input | undefined
  /** Client-side bound on every statement (a hung server or socket). Default 30 seconds. */
  readonly queryTimeout?: Duration.Input | undefined
  /** Where reads go. Default `replica-preferred`. */
  readonly readFrom?: ReadFrom | undefined
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
