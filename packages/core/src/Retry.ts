/**
 * Failover with retries: run an operation on the balancer's pick and, when it
 * fails with a fault worth retrying, mark the endpoint, pick again
 * (preferring an endpoint that has not failed yet) and retry on a
 * `Schedule`.
 *
 * What is retried follows `Fault.isRetryable`: connection and overload
 * faults, and only when the operation cannot have reached the server or is
 * declared `idempotent`. Authentication and semantic failures, and unknown
 * faults, fail at once with the original error. A `BreakerOpen` rejection
 * (see `CircuitBreaker`) is a connection fault that never reached the
 * server, and `NoEndpointAvailable` from the picker is waited out on the
 * schedule too (a primary may come back, a breaker may half-open).
 *
 * When the schedule is exhausted the call fails with the *last* error, as
 * `Effect.retry` does, so the error handling written for the operation keeps
 * working; the attempts and the endpoints tried are logged, and every retry
 * is counted in `tether_retries_total{endpoint, mode}`.
 *
 * @example
 * ```ts
 * import type { Effect } from "effect"
 * import { type Balancer, type Fault, Retry } from "@tether/core"
 *
 * declare const balancer: Balancer.Balancer
 * declare const classify: Fault.Classifier
 * declare const search: (endpoint: string) => Effect.Effect<ReadonlyArray<string>, Error>
 *
 * const program = Retry.failover({
 *   operation: search,
 *   pick: ({ mode, avoid }) => balancer.pick(mode, { avoid }),
 *   classify,
 *   mode: "read",
 *   idempotent: true,
 *   onRetryableFailure: ({ endpoint }) => balancer.setHealth(endpoint, "degraded")
 * })
 * ```
 *
 * @since 0.1.0
 */
import * as Clock from "effect/Clock"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Metric from "effect/Metric"
import * as Schedule from "effect/Schedule"
import type { AccessMode, NoEndpointAvailable } from "./Balancer.ts"
import type { EndpointId } from "./Endpoint.ts"
import { type Classifier, type Fault, isRetryable } from "./Fault.ts"
import { describeError, formatMillis } from "./internal/format.ts"

/**
 * What the picker is told before each attempt.
 *
 * @since 0.1.0
 * @category models
 */
export interface PickContext {
  readonly mode: AccessMode
  /** 1 for the first attempt. */
  readonly attempt: number
  /** Endpoints that already failed during this call: pick them only as a last resort. */
  readonly avoid: ReadonlySet<EndpointId>
}

/**
 * A retryable failure, as reported to `onRetryableFailure`.
 *
 * @since 0.1.0
 * @category models
 */
export interface RetryableFailure<E> {
  readonly endpoint: EndpointId
  readonly attempt: number
  readonly fault: Fault
  readonly error: E
}

/**
 * Options of {@link failover}.
 *
 * @since 0.1.0
 * @category models
 */
export interface Options<A, E, R> {
  /** The operation, run against the endpoint picked; `attempt` is 1 for the first run. */
  readonly operation: (endpoint: EndpointId, attempt: number) => Effect.Effect<A, E, R>
  /**
   * Picks the endpoint of each attempt. A function is given the access mode
   * and the endpoints to avoid (e.g. `(ctx) => balancer.pick(ctx.mode, ctx)`);
   * a plain effect is simply run again.
   */
  readonly pick:
    | Effect.Effect<EndpointId, NoEndpointAvailable>
    | ((context: PickContext) => Effect.Effect<EndpointId, NoEndpointAvailable>)
  /** The driver's classifier. */
  readonly classify: Classifier
  /** Default `"read"`. */
  readonly mode?: AccessMode | undefined
  /** Whether running the operation twice is harmless (default `false`). */
  readonly idempotent?: boolean | undefined
  /** When to retry, fed each failure (default {@link defaultSchedule}). */
  readonly schedule?: Schedule.Schedule<unknown, E | NoEndpointAvailable> | undefined
  /** Runs after each retryable failure of the operation, before the next attempt: mark the endpoint here. */
  readonly onRetryableFailure?: ((failure: RetryableFailure<E>) => Effect.Effect<void>) | undefined
}

/**
 * Exponential backoff with jitter, bounded by attempts and by elapsed time.
 * The elapsed-time bound stops further retries; it does not cut an attempt
 * short (give the operation its own timeout for that).
 *
 * @example
 * ```ts
 * import { Retry } from "@tether/core"
 *
 * // 5 attempts at most, first retry after ~200ms, then ~400ms, ~800ms, ~1.6s; no retry after 5s
 * const schedule = Retry.backoff({ base: "200 millis", maxAttempts: 5, maxElapsed: "5 seconds" })
 * ```
 *
 * @since 0.1.0
 * @category schedules
 */
export const backoff = (options?: {
  /** The first delay (default 100 milliseconds). */
  readonly base?: Duration.Input | undefined
  /** Growth of the delay between retries (default 2). */
  readonly factor?: number | undefined
  /** Longest delay between two attempts (default 5 seconds). */
  readonly maxDelay?: Duration.Input | undefined
  /** Attempts in all, the first one included (default 4). */
  readonly maxAttempts?: number | undefined
  /** No retry starts later than this after the first failure (default 10 seconds). */
  readonly maxElapsed?: Duration.Input | undefined
  /** Scale each delay by a random factor in [0.8, 1.2] (default `true`). */
  readonly jitter?: boolean | undefined
}): Schedule.Schedule<Duration.Duration> => {
  const maxDelay = Duration.fromInputUnsafe(options?.maxDelay ?? "5 seconds")
  const capped = Schedule.exponential(options?.base ?? "100 millis", options?.factor ?? 2).pipe(
    Schedule.modifyDelay(({ duration }) => Effect.succeed(Duration.min(duration, maxDelay)))
  )
  return (options?.jitter ?? true ? Schedule.jittered(capped) : capped).pipe(
    Schedule.upTo({
      times: Math.max(0, (options?.maxAttempts ?? 4) - 1),
      duration: options?.maxElapsed ?? "10 seconds"
    })
  )
}

/**
 * `backoff()`: 4 attempts, 100ms · 2ⁿ with jitter, no retry after 10 seconds.
 *
 * @since 0.1.0
 * @category schedules
 */
export const defaultSchedule: Schedule.Schedule<Duration.Duration> = backoff()

const notReachedFault: Fault = { kind: "connection", mayHaveReachedServer: false }

const isTagged = (u: unknown, tag: string): boolean =>
  typeof u === "object" && u !== null && (u as { _tag?: unknown })._tag === tag

const retries = Metric.counter("tether_retries_total", {
  description: "Operations retried after a retryable fault, by the endpoint that failed and the access mode",
  incremental: true
})

/**
 * Runs `operation` with failover and retries (see the module doc). Fails with
 * the original error when it is not retryable, and with the last error when
 * the schedule is exhausted.
 *
 * @since 0.1.0
 * @category combinators
 */
export const failover = <A, E, R>(options: Options<A, E, R>): Effect.Effect<A, E | NoEndpointAvailable, R> => {
  const mode = options.mode ?? "read"
  const pick = options.pick
  const picker = Effect.isEffect(pick) ? () => pick : pick
  const avoid = new Set<EndpointId>()
  // The first attempt runs without the retry loop's machinery: most calls succeed at once.
  return Effect.matchEffect(picker({ mode, attempt: 1, avoid }), {
    onFailure: (error) => retryAfter(options, picker, avoid, { endpoint: undefined, error }),
    onSuccess: (endpoint) =>
      Effect.catch(options.operation(endpoint, 1), (error) => retryAfter(options, picker, avoid, { endpoint, error }))
  })
}

/** The retry loop, entered once the first attempt (pick or operation) failed. */
const retryAfter = <A, E, R>(
  options: Options<A, E, R>,
  picker: (context: PickContext) => Effect.Effect<EndpointId, NoEndpointAvailable>,
  avoid: Set<EndpointId>,
  first: { readonly endpoint: EndpointId | undefined; readonly error: E | NoEndpointAvailable }
): Effect.Effect<A, E | NoEndpointAvailable, R> =>
  Effect.gen(function*() {
    const clock = yield* Clock.Clock
    const mode = options.mode ?? "read"
    const idempotent = options.idempotent ?? false
    const step = yield* Schedule.toStep(options.schedule ?? defaultSchedule)
    const tried: Array<EndpointId> = []
    let attempt = 1
    let failed: { endpoint: EndpointId | undefined; error: E | NoEndpointAvailable } | undefined = first
    while (true) {
      if (failed === undefined) {
        attempt++
        const picked = yield* Effect.result(picker({ mode, attempt, avoid }))
        if (picked._tag === "Failure") {
          failed = { endpoint: undefined, error: picked.failure }
        } else {
          const result = yield* Effect.result(options.operation(picked.success, attempt))
          if (result._tag === "Success") return result.success
          failed = { endpoint: picked.success, error: result.failure }
        }
      }
      const { endpoint, error } = failed
      failed = undefined
      if (endpoint !== undefined) {
        const fault = isTagged(error, "BreakerOpen") ? notReachedFault : options.classify(error)
        if (!isRetryable(fault, idempotent)) return yield* Effect.fail(error)
        avoid.add(endpoint)
        if (!tried.includes(endpoint)) tried.push(endpoint)
        if (options.onRetryableFailure !== undefined) {
          yield* options.onRetryableFailure({ endpoint, attempt, fault, error: error as E })
        }
      }
      const next = yield* Effect.result(step(clock.currentTimeMillisUnsafe(), error))
      const annotations = {
        mode,
        attempts: attempt,
        endpoints: tried.join(", "),
        lastError: describeError(error)
      }
      if (next._tag === "Failure") {
        yield* Effect.logWarning(`giving up after ${attempt} attempt${attempt === 1 ? "" : "s"}`).pipe(
          Effect.annotateLogs(annotations)
        )
        return yield* Effect.fail(error)
      }
      const delay = next.success[1]
      yield* Metric.update(Metric.withAttributes(retries, { endpoint: endpoint ?? "none", mode }), 1)
      yield* Effect.logInfo(
        `attempt ${attempt} failed${endpoint === undefined ? " (no endpoint)" : ` on ${endpoint}`}; ` +
          `retrying in ${formatMillis(Duration.toMillis(delay))}`
      ).pipe(Effect.annotateLogs(annotations))
      yield* Effect.sleep(delay)
    }
  })
