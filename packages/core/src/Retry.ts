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
 * **Details**
 *
 * The loop consumes {@link Fault}s: each failure of the operation goes
 * through the classifier (`BreakerOpen` is recognised by its class, before
 * the driver's classifier is asked), and the schedule is stepped by the same
 * helper as the circuit breaker's open duration. Invalid backoff options are
 * reported by {@link makeBackoff} as `InvalidRetryOptions`.
 *
 * @since 0.1.0
 */
import * as Effect from "effect/Effect"
import type * as Duration from "effect/Duration"
import type * as Schedule from "effect/Schedule"
import type { AccessMode, NoEndpointAvailable } from "./Balancer.ts"
import type { EndpointId } from "./Endpoint.ts"
import type { Classifier, Fault } from "./Fault.ts"
import * as internal from "./internal/retry.ts"
import type { InvalidRetryOptions } from "./PoolError.ts"

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
  /** The driver's classifier: turns each failure of the operation into a {@link Fault}. */
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
 * Options of {@link backoff} and {@link makeBackoff}.
 *
 * @since 0.2.0
 * @category models
 */
export interface BackoffOptions {
  /** The first delay (default 100 milliseconds; ≥ 0). */
  readonly base?: Duration.Input | undefined
  /** Growth of the delay between retries (default 2; ≥ 1). */
  readonly factor?: number | undefined
  /** Longest delay between two attempts (default 5 seconds; > 0). */
  readonly maxDelay?: Duration.Input | undefined
  /** Attempts in all, the first one included (default 4; a positive integer or `Infinity`). */
  readonly maxAttempts?: number | undefined
  /** No retry starts later than this after the first failure (default 10 seconds). */
  readonly maxElapsed?: Duration.Input | undefined
  /** Scale each delay by a random factor in [0.8, 1.2] (default `true`). */
  readonly jitter?: boolean | undefined
}

/**
 * Exponential backoff with jitter, bounded by attempts and by elapsed time,
 * failing with `InvalidRetryOptions` naming the first invalid option. The
 * elapsed-time bound stops further retries; it does not cut an attempt short
 * (give the operation its own timeout for that).
 *
 * **When to use**
 *
 * When the options come from outside the program (configuration, user
 * input); for literal options known to be valid, {@link backoff} is the
 * same without the effect.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { Retry } from "@tether/core"
 *
 * // 5 attempts at most, first retry after ~200ms, then ~400ms, ~800ms, ~1.6s; no retry after 5s
 * const schedule = Retry.makeBackoff({ base: "200 millis", maxAttempts: 5, maxElapsed: "5 seconds" }).pipe(
 *   Effect.catchTag("InvalidRetryOptions", (error) => Effect.die(error.message))
 * )
 * ```
 *
 * @since 0.2.0
 * @category schedules
 */
export const makeBackoff = (
  options?: BackoffOptions
): Effect.Effect<Schedule.Schedule<Duration.Duration>, InvalidRetryOptions> => {
  const checked = internal.checkBackoff(options)
  return "_tag" in checked ? Effect.fail(checked) : Effect.succeed(internal.backoffSchedule(checked))
}

/**
 * Exponential backoff with jitter, bounded by attempts and by elapsed time
 * (see {@link makeBackoff}). It never throws: an invalid option is replaced
 * by its default; use {@link makeBackoff} to be told instead.
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
export const backoff = (options?: BackoffOptions): Schedule.Schedule<Duration.Duration> => {
  let current: BackoffOptions = { ...options }
  let checked = internal.checkBackoff(current)
  while ("_tag" in checked) {
    current = { ...current, [checked.option]: undefined }
    checked = internal.checkBackoff(current)
  }
  return internal.backoffSchedule(checked)
}

/**
 * `backoff()`: 4 attempts, 100ms · 2ⁿ with jitter, no retry after 10 seconds.
 *
 * @since 0.1.0
 * @category schedules
 */
export const defaultSchedule: Schedule.Schedule<Duration.Duration> = backoff()

/**
 * Runs `operation` with failover and retries (see the module doc). Fails with
 * the original error when it is not retryable, and with the last error when
 * the schedule is exhausted.
 *
 * @since 0.1.0
 * @category combinators
 */
export const failover = <A, E, R>(options: Options<A, E, R>): Effect.Effect<A, E | NoEndpointAvailable, R> =>
  internal.failover(options, defaultSchedule)
