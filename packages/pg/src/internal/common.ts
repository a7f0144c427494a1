/**
 * What `PgClient` and `PgSql` share at construction: their metrics, the
 * failover default, the ServerSet resilience settings and the connection
 * settings taken from `PgOptions.Common`.
 *
 * @internal
 */
import { Retry, Validation } from "@tether/core"
import type { ServerSet } from "@tether/core"
import { Metric } from "effect"
import type { Duration } from "effect"
import type * as PgOptions from "../PgOptions.ts"
import type { SessionOptions } from "./session.ts"

export const slowQueries = Metric.counter("tether_pg_slow_queries_total", {
  description: "Statements slower than the slow-query threshold",
  incremental: true
})

export const cacheRequests = Metric.counter("tether_pg_cache_requests_total", {
  description: "Cached reads, by outcome (hit | miss)",
  incremental: true
})

/** Milliseconds of a checked duration option, or `fallback`. */
export const millis: (input: Duration.Input | undefined, fallback: number) => number = Validation.millis

/** Failover default for PostgreSQL: enough patience to ride out a promotion (about 10 s). */
export const defaultRetry = Retry.backoff({
  base: "50 millis",
  maxDelay: "500 millis",
  maxAttempts: 40,
  maxElapsed: "10 seconds"
})

/** The ServerSet settings every set of either client takes from the options. */
export const resilience = (
  options: PgOptions.Common
): Pick<ServerSet.Options<unknown, unknown>, "strategy" | "health" | "breaker" | "retry"> => ({
  strategy: options.strategy ?? "round-robin",
  health: options.health ?? { interval: "2 seconds", timeout: "1 second" },
  breaker: options.breaker,
  retry: options.retry ?? { schedule: defaultRetry }
})

/** The connection settings of either client's driver. */
export const sessionOptions = (options: PgOptions.Common): SessionOptions => ({
  user: options.user,
  password: options.password,
  database: options.database,
  ssl: options.ssl,
  ca: options.ca,
  connectTimeout: options.connectTimeout,
  statementTimeout: options.statementTimeout,
  applicationName: options.applicationName
})
