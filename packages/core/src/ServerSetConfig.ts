/**
 * The resilience settings every driver's configuration shares — pool,
 * balancing, health checks, breaker and retry — as an `effect/Schema` for
 * configuration files (durations in milliseconds), and their translation to
 * `ServerSet.Options`.
 *
 * @example
 * ```ts
 * import { ServerSetConfig } from "@tether/core"
 * import { Schema } from "effect"
 *
 * const config = Schema.decodeUnknownSync(ServerSetConfig.ServerSetConfigSchema)({
 *   strategy: "fastest",
 *   pool: { max: 20, maxPerIdentity: 4 },
 *   health: { intervalMillis: 2000 },
 *   breaker: { consecutiveFailures: 5 },
 *   retry: { maxAttempts: 3 }
 * })
 * const options = ServerSetConfig.toOptions(config) // strategy, pool, health, breaker, retry
 * ```
 *
 * @since 0.1.0
 */
import { Schema } from "effect"
import * as Retry from "./Retry.ts"
import type * as ServerSet from "./ServerSet.ts"
import { DurationInput, IntAtLeast, Opaque, PositiveDurationInput } from "./Validation.ts"

const Millis = Schema.Number.check(Schema.isGreaterThanOrEqualTo(0))
const PositiveMillis = Schema.Number.check(Schema.isGreaterThan(0))
const Count = Schema.Int.check(Schema.isGreaterThanOrEqualTo(1))

/**
 * The schema of the shared settings.
 *
 * @since 0.1.0
 * @category schemas
 */
export const ServerSetConfigSchema = Schema.Struct({
  strategy: Schema.optionalKey(
    Schema.Literals(["round-robin", "weighted-round-robin", "least-connections", "random", "priority", "fastest", "power-of-two"])
  ),
  pool: Schema.optionalKey(Schema.Struct({
    min: Schema.optionalKey(Schema.Int.check(Schema.isGreaterThanOrEqualTo(0))),
    max: Schema.optionalKey(Count),
    maxPerIdentity: Schema.optionalKey(Count),
    concurrency: Schema.optionalKey(Count),
    idleTimeToLiveMillis: Schema.optionalKey(Millis),
    maxLifetimeMillis: Schema.optionalKey(Millis),
    acquireTimeoutMillis: Schema.optionalKey(Millis),
    connectTimeoutMillis: Schema.optionalKey(Millis)
  })),
  health: Schema.optionalKey(Schema.Union([
    Schema.Literal(false),
    Schema.Struct({
      intervalMillis: Schema.optionalKey(PositiveMillis),
      timeoutMillis: Schema.optionalKey(PositiveMillis),
      unhealthyAfter: Schema.optionalKey(Count),
      healthyAfter: Schema.optionalKey(Count)
    })
  ])),
  breaker: Schema.optionalKey(Schema.Union([
    Schema.Literal(false),
    Schema.Struct({
      consecutiveFailures: Schema.optionalKey(Count),
      halfOpenTrials: Schema.optionalKey(Count)
    })
  ])),
  retry: Schema.optionalKey(Schema.Union([
    Schema.Literal(false),
    Schema.Struct({
      maxAttempts: Schema.optionalKey(Count),
      baseDelayMillis: Schema.optionalKey(Millis),
      maxDelayMillis: Schema.optionalKey(PositiveMillis),
      maxElapsedMillis: Schema.optionalKey(Millis)
    })
  ]))
})

/**
 * The decoded shared settings.
 *
 * @since 0.1.0
 * @category models
 */
export type ServerSetConfig = typeof ServerSetConfigSchema.Type

/**
 * The `ServerSet.Options` fields the settings give.
 *
 * @since 0.1.0
 * @category conversions
 */
export const toOptions = (
  config: ServerSetConfig
): Pick<ServerSet.Options<unknown, unknown>, "strategy" | "pool" | "health" | "breaker" | "retry"> => {
  const pool = config.pool
  const health = config.health
  const breaker = config.breaker
  const retry = config.retry
  return {
    strategy: config.strategy,
    pool: pool === undefined ? undefined : {
      min: pool.min,
      max: pool.max,
      maxPerIdentity: pool.maxPerIdentity,
      concurrency: pool.concurrency,
      idleTimeToLive: pool.idleTimeToLiveMillis,
      maxLifetime: pool.maxLifetimeMillis,
      acquireTimeout: pool.acquireTimeoutMillis,
      connectTimeout: pool.connectTimeoutMillis
    },
    health: health === undefined || health === false ? health : {
      interval: health.intervalMillis,
      timeout: health.timeoutMillis,
      unhealthyAfter: health.unhealthyAfter,
      healthyAfter: health.healthyAfter
    },
    breaker: breaker === undefined || breaker === false ? breaker : {
      consecutiveFailures: breaker.consecutiveFailures,
      halfOpenTrials: breaker.halfOpenTrials
    },
    retry: retry === undefined || retry === false ? retry : {
      schedule: Retry.backoff({
        maxAttempts: retry.maxAttempts,
        base: retry.baseDelayMillis,
        maxDelay: retry.maxDelayMillis,
        maxElapsed: retry.maxElapsedMillis
      })
    }
  }
}

const STRATEGIES = [
  "round-robin",
  "weighted-round-robin",
  "least-connections",
  "random",
  "priority",
  "fastest",
  "power-of-two"
] as const

/**
 * The schema of a strategy name.
 *
 * @since 0.2.0
 * @category schemas
 */
export const StrategySchema = Schema.Literals(STRATEGIES)

const isObject = (u: unknown) => typeof u === "object" && u !== null
const optional = Schema.optional

/**
 * The schema of the pool options a server set (and every client built on
 * one) takes in code: durations as `Duration.Input`.
 *
 * @since 0.2.0
 * @category schemas
 */
export const PoolOptionsSchema = Schema.Struct({
  min: optional(IntAtLeast(0)),
  max: optional(IntAtLeast(1)),
  maxPerIdentity: optional(IntAtLeast(1)),
  concurrency: optional(IntAtLeast(1)),
  idleTimeToLive: optional(DurationInput),
  maxLifetime: optional(DurationInput),
  acquireTimeout: optional(DurationInput),
  connectTimeout: optional(PositiveDurationInput),
  validationWindow: optional(DurationInput),
  keepAliveInterval: optional(PositiveDurationInput),
  leakDetectionThreshold: optional(PositiveDurationInput),
  drainTimeout: optional(DurationInput),
  housekeepingInterval: optional(PositiveDurationInput),
  warmUp: optional(Schema.Boolean)
})

const anything = Schema.Unknown

/**
 * The keys of `CircuitBreaker.Options` a set takes (their values are checked
 * by `CircuitBreaker.make`); an unknown key is refused here.
 */
const BreakerOptionsSchema = Schema.Struct({
  consecutiveFailures: optional(anything),
  failureRate: optional(Schema.Struct({ threshold: anything })),
  slowCalls: optional(Schema.Struct({ slowerThan: anything, threshold: anything })),
  window: optional(anything),
  minimumCalls: optional(anything),
  policies: optional(anything),
  openDuration: optional(anything),
  halfOpenTrials: optional(anything),
  successesToClose: optional(anything)
})

/**
 * The schema of the resilience options every client built on a server set
 * takes in code (`strategy`, `pool`, `health`, `breaker`, `retry`, `hedge`).
 * The breaker's own fields are checked by `CircuitBreaker.make`; unknown keys
 * are refused at every level.
 *
 * @since 0.2.0
 * @category schemas
 */
export const ResilienceOptionsFields = {
  strategy: optional(StrategySchema),
  pool: optional(PoolOptionsSchema),
  health: optional(Schema.Union([
    Schema.Literal(false),
    Schema.Struct({
      interval: optional(PositiveDurationInput),
      timeout: optional(PositiveDurationInput),
      degradedLatency: optional(DurationInput),
      unhealthyAfter: optional(IntAtLeast(1)),
      healthyAfter: optional(IntAtLeast(1))
    })
  ]).annotate({ message: "false or an object of health settings" })),
  breaker: optional(Schema.Union([Schema.Literal(false), BreakerOptionsSchema]).annotate({
    message: "false or an object of breaker settings"
  })),
  retry: optional(Schema.Union([
    Schema.Literal(false),
    Schema.Struct({ schedule: optional(Opaque("a Schedule", (u) => u === undefined || isObject(u))) })
  ]).annotate({ message: "false or { schedule }" })),
  hedge: optional(Schema.Struct({ delay: PositiveDurationInput }))
}

/**
 * The schema of `ServerSet.Options`: checked by `ServerSet.make` before
 * anything is built.
 *
 * @since 0.2.0
 * @category schemas
 */
export const ServerSetOptionsSchema = Schema.Struct({
  name: Schema.String.check(Schema.makeFilter((s) => s.length > 0 ? undefined : "a non-empty name")),
  endpoints: Schema.Array(Schema.Unknown).annotate({ message: "an array of endpoints (URLs or endpoint objects)" }).check(
    Schema.makeFilter((a) => a.length > 0 ? undefined : "at least one endpoint (a URL or an endpoint object)")
  ),
  driver: Opaque("a Driver (an object with connect and classify)", (u) =>
    isObject(u) && typeof (u as { connect?: unknown }).connect === "function" &&
    typeof (u as { classify?: unknown }).classify === "function"),
  ...ResilienceOptionsFields
})
