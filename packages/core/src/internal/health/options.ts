/**
 * The health monitor's options: their schema (invalid options fail with
 * `InvalidPoolOptions`), their defaults, and the thresholds and timeout
 * resolved from them.
 */
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Schedule from "effect/Schedule"
import * as Schema from "effect/Schema"
import type { Options, Thresholds } from "../../HealthMonitor.ts"
import type { InvalidPoolOptions } from "../../PoolError.ts"
import * as Validation from "../../Validation.ts"
import * as Ewma from "../ewma.ts"
import * as Millis from "../millis.ts"

export const millisOf = (input: Duration.Input): number => Millis.withFallback(input, 0)

const OptionsSchema = Schema.Struct({
  endpoint: Schema.String,
  probe: Validation.Opaque("an Effect", Effect.isEffect),
  schedule: Schema.optional(Validation.Opaque("a Schedule", (u) => u === undefined || (typeof u === "object" && u !== null))),
  timeout: Schema.optional(Validation.PositiveDurationInput),
  degradedLatency: Schema.optional(Validation.DurationInput),
  unhealthyAfter: Schema.optional(Validation.IntAtLeast(1)),
  healthyAfter: Schema.optional(Validation.IntAtLeast(1)),
  latencyAlpha: Schema.optional(
    Schema.Number.check(Schema.makeFilter((n) => n > 0 && n <= 1 ? undefined : "a number in (0, 1]"))
  ),
  isAuthFailure: Schema.optional(Validation.Opaque("a function", (u) => u === undefined || typeof u === "function")),
  onUnhealthy: Schema.optional(Validation.Opaque("a function", (u) => u === undefined || typeof u === "function")),
  restartSchedule: Schema.optional(
    Validation.Opaque("a Schedule", (u) => u === undefined || (typeof u === "object" && u !== null))
  )
})

export const validate = <E, R>(options: Options<E, R>): Effect.Effect<unknown, InvalidPoolOptions> =>
  Validation.validate(OptionsSchema, options, {
    component: `health monitor of ${typeof options?.endpoint === "string" ? options.endpoint : "an endpoint"}`
  })

export const defaultSchedule: Schedule.Schedule<unknown, unknown> = Schedule.spaced("5 seconds").pipe(Schedule.jittered)
export const defaultRestartSchedule: Schedule.Schedule<unknown, unknown> = Schedule.exponential("1 second").pipe(
  Schedule.modifyDelay(({ duration }) => Effect.succeed(Duration.min(duration, Duration.minutes(1))))
)

export const thresholdsOf = <E, R>(options: Options<E, R>): Thresholds => ({
  degradedLatency: options.degradedLatency === undefined ? undefined : millisOf(options.degradedLatency),
  unhealthyAfter: options.unhealthyAfter ?? 3,
  healthyAfter: options.healthyAfter ?? 1,
  latencyAlpha: options.latencyAlpha ?? Ewma.defaultAlpha
})

export const timeoutOf = <E, R>(options: Options<E, R>): Duration.Duration =>
  Duration.fromInputUnsafe(options.timeout ?? "2 seconds")
