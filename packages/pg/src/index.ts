/**
 * @tether/pg — PostgreSQL on postgres.js through Tether: pooled sessions per
 * role, replica routing, transactions retried as a whole, failover, typed
 * errors, a query cache and a slow-query log.
 *
 * @since 0.1.0
 */

/** The client service: reads, writes, transactions, streams, batches, cache. */
export * as PgClient from "./PgClient.ts"

/** The `@tether/core` driver: one postgres.js connection per pooled item. */
export * as PgDriver from "./PgDriver.ts"

/** Typed errors from SQLSTATE classes, and their classification. */
export * as PgError from "./PgError.ts"

/** Configuration as an effect/Schema, and from the environment. */
export * as PgConfig from "./PgConfig.ts"

/** The options both clients share. */
export * as PgOptions from "./PgOptions.ts"

/** effect/sql's `SqlClient` over Tether: failover, replicas, identities, pipelining, PgBouncer. */
export * as PgSql from "./PgSql.ts"
