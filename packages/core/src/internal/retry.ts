/**
 * The failover loop of `Retry.failover`, and the checks of `Retry.backoff`'s
 * options.
 *
 * @internal
 */
import * as Clock from "effect/Clock"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Metric from "effect/Metric"
import * as Option from "effect/Option"
import * as Schedule from "effect/Schedule"
import type { NoEndpointAvailable } from "../Balancer.ts"
import { BreakerOpen } from "../CircuitBreaker.ts"
import type { EndpointId } from "../Endpoint.ts"
import { type Classifier, type Fault, isRetryable } from "../Fault.ts"
import { InvalidRetryOptions } from "../PoolError.ts"
import type { BackoffOptions, Options, PickContext } from "../Retry.ts"
import { describeError, formatMillis } from "./format.ts"
import * as ScheduleStep from "./scheduleStep.ts"

const notReachedFault: Fault = { kind: "connection", mayHaveReachedServer: false }

/**
 * The driver's classifier, plus what the core knows itself: a
 * `BreakerOpen` rejection is a connection fault that never reached the
 * server.
 *
 * @internal
 */
export const withBreakerOpen = (classify: Classifier): Classifier => (error) =>
  error instanceof BreakerOpen ? notReachedFault : classify(error)

const retries = Metric.counter("tether_retries_total", {
  description: "Operations retried after a retryable fault, by the endpoint that failed and the access mode",
  incremental: true
})

/** One failed attempt: the operation failed on an endpoint, or no endpoint could be picked. */
type Failed<E> =
  | { readonly _tag: "Operation"; readonly endpoint: EndpointId; readonly error: E }
  | { readonly _tag: "Pick"; readonly error: NoEndpointAvailable }

type Picker = (context: PickContext) => Effect.Effect<EndpointId, NoEndpointAvailable>

const pickerOf = (pick: Options<unknown, unknown, unknown>["pick"]): Picker => Effect.isEffect(pick) ? () => pick : pick

/** @internal */
export const failover = <A, E, R>(
  options: Options<A, E, R>,
  defaultSchedule: Schedule.Schedule<unknown, unknown>
): Effect.Effect<A, E | NoEndpointAvailable, R> => {
  const mode = options.mode ?? "read"
  const picker = pickerOf(options.pick)
  const avoid = new Set<EndpointId>()
  // The first attempt runs without the retry loop's machinery: most calls succeed at once.
  return Effect.matchEffect(picker({ mode, attempt: 1, avoid }), {
    onFailure: (error) => retryAfter(options, defaultSchedule, picker, avoid, { _tag: "Pick", error }),
    onSuccess: (endpoint) =>
      Effect.catch(
        options.operation(endpoint, 1),
        (error) => retryAfter(options, defaultSchedule, picker, avoid, { _tag: "Operation", endpoint, error })
      )
  })
}

/**
 * `failover` after a first attempt that its caller ran itself on `endpoint` and that failed with
 * `error` (`ServerSet` runs the first attempt without this module's machinery).
 *
 * @internal
 */
export const afterFailure = <A, E, R>(
  options: Options<A, E, R>,
  defaultSchedule: Schedule.Schedule<unknown, unknown>,
  endpoint: EndpointId,
  error: E
): Effect.Effect<A, E | NoEndpointAvailable, R> => {
  return retryAfter(options, defaultSchedule, pickerOf(options.pick), new Set(), { _tag: "Operation", endpoint, error })
}

/** The retry loop, entered once the first attempt (pick or operation) failed. */
const retryAfter = <A, E, R>(
  options: Options<A, E, R>,
  defaultSchedule: Schedule.Schedule<unknown, unknown>,
  picker: Picker,
  avoid: Set<EndpointId>,
  first: Failed<E>
): Effect.Effect<A, E | NoEndpointAvailable, R> =>
  Effect.gen(function*() {
    const clock = yield* Clock.Clock
    const mode = options.mode ?? "read"
    const idempotent = options.idempotent ?? false
    const classify = withBreakerOpen(options.classify)
    const step = yield* ScheduleStep.start(options.schedule ?? defaultSchedule)
    const tried: Array<EndpointId> = []
    let attempt = 1
    let failed: Failed<E> | undefined = first
    while (true) {
      if (failed === undefined) {
        attempt++
        const picked = yield* Effect.result(picker({ mode, attempt, avoid }))
        if (picked._tag === "Failure") {
          failed = { _tag: "Pick", error: picked.failure }
        } else {
          const result = yield* Effect.result(options.operation(picked.success, attempt))
          if (result._tag === "Success") return result.success
          failed = { _tag: "Operation", endpoint: picked.success, error: result.failure }
        }
      }
      const current: Failed<E> = failed
      failed = undefined
      const endpoint = current._tag === "Operation" ? current.endpoint : undefined
      if (current._tag === "Operation") {
        const fault = classify(current.error)
        if (!isRetryable(fault, idempotent)) return yield* Effect.fail(current.error)
        avoid.add(current.endpoint)
        if (!tried.includes(current.endpoint)) tried.push(current.endpoint)
        if (options.onRetryableFailure !== undefined) {
          yield* options.onRetryableFailure({ endpoint: current.endpoint, attempt, fault, error: current.error })
        }
      }
      const delay = yield* step(clock.currentTimeMillisUnsafe(), current.error)
      const annotations = {
        mode,
        attempts: attempt,
        endpoints: tried.join(", "),
        lastError: describeError(current.error)
      }
      if (delay === undefined) {
        yield* Effect.logWarning(`giving up after ${attempt} attempt${attempt === 1 ? "" : "s"}`).pipe(
          Effect.annotateLogs(annotations)
        )
        return yield* Effect.fail(current.error)
      }
      yield* Metric.update(Metric.withAttributes(retries, { endpoint: endpoint ?? "none", mode }), 1)
      // Retry chatter is DEBUG: the outcome (success, or the WARN below) is what an operator needs.
      yield* Effect.logDebug(
        `attempt ${attempt} failed${endpoint === undefined ? " (no endpoint)" : ` on ${endpoint}`}; ` +
          `retrying in ${formatMillis(delay)}`
      ).pipe(Effect.annotateLogs(annotations))
      yield* Effect.sleep(Duration.millis(delay))
    }
  })

// --- backoff -----------------------------------------------------------------

/** Backoff options with every default filled in and every value checked. @internal */
export interface CheckedBackoff {
  readonly base: Duration.Duration
  readonly factor: number
  readonly maxDelay: Duration.Duration
  readonly maxAttempts: number
  readonly maxElapsed: Duration.Duration
  readonly jitter: boolean
}

const defaults = {
  base: Duration.millis(100),
  factor: 2,
  maxDelay: Duration.seconds(5),
  maxAttempts: 4,
  maxElapsed: Duration.seconds(10)
}

const durationOf = (input: Duration.Input | undefined, fallback: Duration.Duration, positive: boolean) => {
  if (input === undefined) return fallback
  const duration = Duration.fromInput(input)
  if (Option.isNone(duration)) return undefined
  const millis = Duration.toMillis(duration.value)
  return millis < 0 || (positive && millis === 0) || Number.isNaN(millis) ? undefined : duration.value
}

/**
 * Checks backoff options: the checked options, or the first invalid one.
 *
 * @internal
 */
export const checkBackoff = (options: BackoffOptions | undefined): CheckedBackoff | InvalidRetryOptions => {
  const o = options ?? {}
  const invalid = (option: string, value: unknown, allowed: string) => new InvalidRetryOptions({ option, value, allowed })
  const base = durationOf(o.base, defaults.base, false)
  if (base === undefined || !Duration.isFinite(base)) return invalid("base", o.base, "a finite duration ≥ 0")
  const factor = o.factor ?? defaults.factor
  if (!(typeof factor === "number" && factor >= 1 && Number.isFinite(factor))) {
    return invalid("factor", o.factor, "a finite number ≥ 1")
  }
  const maxDelay = durationOf(o.maxDelay, defaults.maxDelay, true)
  if (maxDelay === undefined) return invalid("maxDelay", o.maxDelay, "a duration > 0")
  const maxAttempts = o.maxAttempts ?? defaults.maxAttempts
  if (!((Number.isInteger(maxAttempts) && maxAttempts >= 1) || maxAttempts === Infinity)) {
    return invalid("maxAttempts", o.maxAttempts, "a positive integer (attempts in all, the first included) or Infinity")
  }
  const maxElapsed = durationOf(o.maxElapsed, defaults.maxElapsed, false)
  if (maxElapsed === undefined) return invalid("maxElapsed", o.maxElapsed, "a duration ≥ 0")
  return { base, factor, maxDelay, maxAttempts, maxElapsed, jitter: o.jitter ?? true }
}

/** @internal */
export const backoffSchedule = (options: CheckedBackoff): Schedule.Schedule<Duration.Duration> => {
  const capped = Schedule.exponential(options.base, options.factor).pipe(
    Schedule.modifyDelay(({ duration }) => Effect.succeed(Duration.min(duration, options.maxDelay)))
  )
  const retries = options.maxAttempts - 1
  return (options.jitter ? Schedule.jittered(capped) : capped).pipe(
    retries === Infinity
      ? Schedule.upTo({ duration: options.maxElapsed })
      : Schedule.upTo({ times: retries, duration: options.maxElapsed })
  )
}
