/**
 * The `ConnectionPool`'s options: their defaults, the keys it accepts (any
 * other is refused) and their checks (`InvalidPoolOptions` naming the first
 * bad one). The identity pool checks its `pool` options with the same rules.
 */
import { Duration, Effect } from "effect"
import type * as ConnectionPool from "../../../ConnectionPool.ts"
import { InvalidPoolOptions } from "../../../PoolError.ts"
import { checkKnownKeys, showValue } from "../../../Validation.ts"
import * as Millis from "../../millis.ts"

const millisOf = Millis.withFallback
const optionalMillis = Millis.optional

/** @internal */
export const defaults = {
  min: 0,
  max: 10,
  concurrency: 1,
  idleTimeToLive: Duration.minutes(10),
  maxLifetime: Duration.minutes(30),
  acquireTimeout: Duration.seconds(30),
  connectTimeout: Duration.seconds(10),
  validationWindow: Duration.millis(500),
  drainTimeout: Duration.seconds(30),
  housekeepingInterval: Duration.seconds(1)
} as const

/** The options given as durations (each checked as one). */
const durationKeys = [
  "idleTimeToLive",
  "maxLifetime",
  "acquireTimeout",
  "connectTimeout",
  "validationWindow",
  "keepAliveInterval",
  "leakDetectionThreshold",
  "drainTimeout",
  "housekeepingInterval"
] as const

/** Every key of `ConnectionPool.Options`: any other is refused (a misspelt option is never ignored). @internal */
export const optionKeys: ReadonlyArray<string> = [
  "name",
  "acquire",
  "validate",
  "isBroken",
  "min",
  "max",
  "concurrency",
  ...durationKeys,
  "warmUp"
]

/** @internal Checks pool options; fails with `InvalidPoolOptions` naming the first bad one. */
export const checkOptions = <A, E, R>(options: ConnectionPool.Options<A, E, R>) =>
  Effect.suspend(() => {
    if (typeof options !== "object" || options === null) {
      return Effect.fail(new InvalidPoolOptions({ pool: "(unnamed)", option: "(options)", reason: "must be an object" }))
    }
    const unknown = checkKnownKeys(options, optionKeys, String(options.name))
    if (unknown !== undefined) return Effect.fail(unknown)
    const fail = (option: string, reason: string) =>
      Effect.fail(new InvalidPoolOptions({ pool: String(options.name), option, reason }))
    if (typeof options.name !== "string" || options.name === "") return fail("name", "must be a non-empty string")
    if (!Effect.isEffect(options.acquire)) return fail("acquire", "must be an Effect that opens a connection")
    const min = options.min ?? defaults.min
    const max = options.max ?? defaults.max
    const concurrency = options.concurrency ?? defaults.concurrency
    if (!Number.isInteger(min) || min < 0) return fail("min", `must be an integer >= 0, got ${min}`)
    if (!Number.isInteger(max) || max < 1) return fail("max", `must be an integer >= 1, got ${max}`)
    if (min > max) return fail("min", `must not exceed max (${max}), got ${min}`)
    if (!Number.isInteger(concurrency) || concurrency < 1) {
      return fail("concurrency", `must be an integer >= 1, got ${concurrency}`)
    }
    for (const key of durationKeys) {
      const value = options[key]
      if (value === undefined) continue
      const millis = optionalMillis(value)
      if (millis === undefined || Number.isNaN(millis) || (typeof value === "number" && Number.isNaN(value))) {
        return fail(key, `is not a duration (got ${showValue(value, key)}): give milliseconds or a string like "5 seconds"`)
      }
      if (millis < 0) return fail(key, `must not be negative, got ${showValue(value, key)}`)
    }
    const keepAlive = optionalMillis(options.keepAliveInterval)
    const idleTtl = millisOf(options.idleTimeToLive, defaults.idleTimeToLive)
    if (keepAlive !== undefined && min < max && keepAlive <= idleTtl) {
      return fail(
        "keepAliveInterval",
        `must exceed idleTimeToLive (${idleTtl} ms) so that probes do not keep surplus idle connections open`
      )
    }
    return Effect.void
  })
