/**
 * @tether/core — backend-agnostic pooling, balancing, health and resilience
 * for Effect 4.
 *
 * @since 0.1.0
 */

/** Pools of connections to one server, on `Pool.makeWithTTL`. */
export * as ConnectionPool from "./ConnectionPool.ts"

/** How drivers classify failures for breakers and retries. */
export * as Fault from "./Fault.ts"

/** The typed errors of a pool. */
export * from "./PoolError.ts"

/** One server: URL, weight, priority, role, TLS, tags (an effect/Schema). */
export * as Endpoint from "./Endpoint.ts"

/** Picks an endpoint: round robin, smooth weighted round robin, least connections, random, priority, fastest, power of two. */
export * as Balancer from "./Balancer.ts"

/** Per-endpoint circuit breaker: closed / open / half-open. */
export * as CircuitBreaker from "./CircuitBreaker.ts"

/** Supervised health probing of one endpoint. */
export * as HealthMonitor from "./HealthMonitor.ts"

/** Failover with retries on a Schedule. */
export * as Retry from "./Retry.ts"

/** What a backend plugs into the core: connect, validate, probe, classify. */
export * as Driver from "./Driver.ts"

/** One manager over several servers: pools, balancing, health, breakers, failover. */
export * as ServerSet from "./ServerSet.ts"

/** Identities as typed services: credentials with a `Redacted` secret. */
export * as Identity from "./Identity.ts"

/** Credential-aware pooling for one server, one global limit across identities. */
export * as IdentityPool from "./IdentityPool.ts"

/** Shared pool, balancing, health, breaker and retry settings as a Schema for configuration files. */
export * as ServerSetConfig from "./ServerSetConfig.ts"

/** The options every client built on a `ServerSet` shares (`LdapClient`, `PgClient` and `PgSql` extend them). */
export * as ClientOptions from "./ClientOptions.ts"

/** Up-front option checks: one typed error naming the option, the value and what is allowed. */
export * as Validation from "./Validation.ts"
export { InvalidOptions } from "./Validation.ts"
