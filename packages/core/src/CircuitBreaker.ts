/**
 * A circuit breaker for one endpoint: `closed` (calls go through), `open`
 * (calls are rejected at once with {@link BreakerOpen}) and `half-open` (a
 * bounded number of trial calls go through; enough successes close it, one
 * failure opens it again for longer).
 *
 * **When to use**
 *
 * Put one in front of each server a client talks to, so that a server that
 * is down or hung stops costing every caller a timeout: callers get
 * {@link BreakerOpen} at once and fail over. `ServerSet` makes one per
 * endpoint (its `breaker` option); make one by hand to protect a single
 * dependency.
 *
 * **Details**
 *
 * - *When to open* is a list of {@link Policy} values; the first one that
 *   trips opens the breaker. Built in: {@link consecutiveFailures} (default:
 *   5 in a row), {@link failureRate} and {@link slowCallRate} over a
 *   {@link countWindow} or {@link timeWindow}. The shorthand options
 *   (`consecutiveFailures`, `failureRate`, `slowCalls`, `window`,
 *   `minimumCalls`) build them; `policies` gives them explicitly.
 * - Only failures that the classifier calls server faults count
 *   (`Fault.isServerFault`: connection, overload, unknown). Authentication
 *   and semantic failures count as *successful* calls: the server answered,
 *   so they reset the consecutive count, dilute the rates, and pass a
 *   half-open trial. Defects count as server faults; interrupted calls are
 *   not counted at all.
 * - How long it stays open is a `Schedule` (`openDuration`): the first
 *   opening waits the schedule's first delay, each failed half-open trial
 *   the next one (when the schedule ends, its last delay is reused); closing
 *   starts it over.
 * - Open → half-open is timed two ways, both from Effect's `Clock` (so
 *   `TestClock` drives it): a fiber forked in the breaker's scope sleeps
 *   until the open duration is over and half-opens it, so that subscribers
 *   of {@link CircuitBreaker.state} (e.g. a balancer that stopped routing to
 *   the endpoint) see `half-open` without waiting for a call; and a call
 *   that arrives when the delay is over but before that fiber has run
 *   half-opens it itself. The timer makes the published state right for
 *   subscribers; the lazy check keeps admission exact whatever the fiber
 *   scheduling, and costs nothing on the closed path, which never reads the
 *   clock unless a timed policy needs it.
 * - Cost: a closed-state call allocates one small object and observes its
 *   outcome with a frame on the fiber's stack (see
 *   `internal/breaker/frame.ts`; it falls back to `Effect.onExitPrimitive`
 *   when Effect's internals are not what it expects).
 * - Every transition is published in {@link CircuitBreaker.state} (a
 *   `SubscriptionRef`), counted in `tether_breaker_transitions_total{endpoint,
 *   from, to}`, reflected in the `tether_breaker_state{endpoint, state}` gauge
 *   (1 for the current state, 0 for the others) and logged. Rejections are
 *   counted in `tether_breaker_rejections_total{endpoint}`.
 * - Invalid options fail {@link make} with `InvalidBreakerOptions` naming
 *   the option, the value and what is allowed.
 *
 * @example
 * ```ts
 * import { Effect, Schedule } from "effect"
 * import { CircuitBreaker, Fault } from "@tether/core"
 *
 * const program = Effect.gen(function*() {
 *   const breaker = yield* CircuitBreaker.make({
 *     endpoint: "ldap://ldap1:389",
 *     consecutiveFailures: 5,
 *     failureRate: { threshold: 0.5 },
 *     minimumCalls: 20, // the rate is only judged over at least 20 calls
 *     window: CircuitBreaker.timeWindow("30 seconds"),
 *     openDuration: Schedule.exponential("2 seconds"),
 *     classify: (error) => Fault.make("connection")
 *   })
 *   return yield* breaker.protect(Effect.succeed("search result"))
 * }).pipe(Effect.scoped)
 * ```
 *
 * @since 0.1.0
 */
import * as Clock from "effect/Clock"
import * as Data from "effect/Data"
import type * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Metric from "effect/Metric"
import type * as Schedule from "effect/Schedule"
import type * as Scope from "effect/Scope"
import * as SubscriptionRef from "effect/SubscriptionRef"
import type { EndpointId } from "./Endpoint.ts"
import type { Classifier } from "./Fault.ts"
import * as ConsecutiveFailures from "./internal/breaker/consecutiveFailures.ts"
import * as FailureRate from "./internal/breaker/failureRate.ts"
import { Machine, stateGauge } from "./internal/breaker/machine.ts"
import * as BreakerOptions from "./internal/breaker/options.ts"
import type { PolicyDescription, Tracker } from "./internal/breaker/policy.ts"
import * as SlowCallRate from "./internal/breaker/slowCallRate.ts"
import { defaultWindow } from "./internal/breaker/window.ts"
import { formatMillis } from "./internal/format.ts"
import type { InvalidBreakerOptions } from "./PoolError.ts"

/**
 * The three states of a breaker.
 *
 * @since 0.1.0
 * @category models
 */
export type Status = "closed" | "open" | "half-open"

/**
 * What the breaker publishes on every transition.
 *
 * @since 0.1.0
 * @category models
 */
export interface BreakerState {
  readonly endpoint: EndpointId
  readonly status: Status
  /** When the breaker entered this status (epoch milliseconds, from `Clock`). */
  readonly since: number
  /** While open: when it will let a trial call through (epoch milliseconds). */
  readonly retryAt: number | undefined
  /** Openings since it was last closed (1 after the first opening, 2 after a failed trial, …). */
  readonly openings: number
  /** Why it last opened, e.g. `5 consecutive server faults`. */
  readonly reason: string | undefined
}

/**
 * A call was rejected because the breaker is open (or half-open with all its
 * trial calls taken). Use another endpoint, or retry after `retryAt`.
 *
 * @since 0.1.0
 * @category errors
 */
export class BreakerOpen extends Data.TaggedError("BreakerOpen")<{
  readonly endpoint: EndpointId
  readonly status: "open" | "half-open"
  /** When a trial call will be let through (epoch milliseconds), if known. */
  readonly retryAt: number | undefined
  /** The time of the rejection (epoch milliseconds). */
  readonly rejectedAt: number
}> {
  override get message(): string {
    if (this.status === "half-open" || this.retryAt === undefined) {
      return `circuit breaker for ${this.endpoint} is ${this.status} and its trial calls are in progress; ` +
        "use another endpoint or retry shortly"
    }
    return `circuit breaker for ${this.endpoint} is open after server faults; it lets a trial call through in ` +
      `${formatMillis(this.retryAt - this.rejectedAt)} (at ${new Date(this.retryAt).toISOString()}); ` +
      "use another endpoint until then"
  }
}

/**
 * Which calls the rate policies look at.
 *
 * @since 0.1.0
 * @category models
 */
export type Window =
  | { readonly _tag: "Count"; readonly size: number }
  | { readonly _tag: "Time"; readonly duration: Duration.Input }

/**
 * The last `size` calls.
 *
 * @since 0.1.0
 * @category windows
 */
export const countWindow = (size: number): Window => ({ _tag: "Count", size })

/**
 * The calls of the last `duration` (at least one second), counted in
 * one-second buckets (a call leaves the window up to one second early).
 *
 * @since 0.1.0
 * @category windows
 */
export const timeWindow = (duration: Duration.Input): Window => ({ _tag: "Time", duration })

/**
 * A rule for *when to open*, as a value: it is checked by {@link make}
 * (invalid parameters fail with `InvalidBreakerOptions`) and makes a fresh
 * mutable {@link PolicyTracker} for each breaker, which is fed the outcome of
 * every call made while closed. Build one with {@link consecutiveFailures},
 * {@link failureRate} or {@link slowCallRate}, or write your own.
 *
 * **Details**
 *
 * - `check` returns the first invalid parameter (`option`, `value`,
 *   `allowed`), or `undefined`.
 * - `timed`: whether the tracker needs the time of each outcome and each
 *   call's duration (reading the clock costs on every call; say `false`
 *   when you can).
 * - `slowCallMillis`: when set, a half-open trial at least that slow counts
 *   as a failed trial.
 *
 * @example
 * ```ts
 * import { CircuitBreaker } from "@tether/core"
 *
 * const options: CircuitBreaker.Options = {
 *   endpoint: "postgres://db1/app",
 *   policies: [
 *     CircuitBreaker.consecutiveFailures(10),
 *     CircuitBreaker.failureRate({ threshold: 0.5, window: CircuitBreaker.timeWindow("1 minute") })
 *   ]
 * }
 * ```
 *
 * @since 0.2.0
 * @category policies
 */
export type Policy = PolicyDescription

/**
 * The mutable state of one {@link Policy} in one breaker.
 *
 * @since 0.2.0
 * @category policies
 */
export type PolicyTracker = Tracker

/**
 * Open after `threshold` server faults in a row.
 *
 * @since 0.2.0
 * @category policies
 */
export const consecutiveFailures = (threshold: number): Policy => ConsecutiveFailures.make(threshold)

/**
 * Open when the share of server faults in the window reaches `threshold`
 * (0 < threshold ≤ 1), once the window holds at least `minimumCalls` calls
 * (default 20). Default window: the last 100 calls.
 *
 * @since 0.2.0
 * @category policies
 */
export const failureRate = (options: {
  readonly threshold: number
  readonly minimumCalls?: number | undefined
  readonly window?: Window | undefined
}): Policy =>
  FailureRate.make({
    threshold: options.threshold,
    minimumCalls: options.minimumCalls ?? 20,
    window: options.window ?? defaultWindow
  })

/**
 * Open when the share of calls at least `slowerThan` long in the window
 * reaches `threshold`, once the window holds at least `minimumCalls` calls
 * (default 20). A slow half-open trial counts as a failed trial.
 *
 * @since 0.2.0
 * @category policies
 */
export const slowCallRate = (options: {
  readonly slowerThan: Duration.Input
  readonly threshold: number
  readonly minimumCalls?: number | undefined
  readonly window?: Window | undefined
}): Policy =>
  SlowCallRate.make({
    slowerThan: options.slowerThan,
    threshold: options.threshold,
    minimumCalls: options.minimumCalls ?? 20,
    window: options.window ?? defaultWindow
  })

/**
 * Options of {@link make}.
 *
 * @since 0.1.0
 * @category models
 */
export interface Options {
  /** The endpoint protected; names it in errors, logs and metrics. */
  readonly endpoint: EndpointId
  /** Open after this many server faults in a row (default 5; `Infinity` disables). */
  readonly consecutiveFailures?: number | undefined
  /** Open when the share of server faults in the window reaches `threshold` (0 < threshold ≤ 1). Off by default. */
  readonly failureRate?: { readonly threshold: number } | undefined
  /**
   * Open when the share of calls slower than `slowerThan` in the window
   * reaches `threshold`. Off by default. A slow half-open trial counts as a
   * failed trial.
   */
  readonly slowCalls?: { readonly slowerThan: Duration.Input; readonly threshold: number } | undefined
  /** The window of the rate policies (default the last 100 calls). */
  readonly window?: Window | undefined
  /** The rate policies only judge a window holding at least this many calls (default 20). */
  readonly minimumCalls?: number | undefined
  /**
   * The policies, given explicitly instead of by the five options above
   * (giving both is an `InvalidBreakerOptions`). `[]` never opens.
   */
  readonly policies?: ReadonlyArray<Policy> | undefined
  /** How long to stay open (default: exponential from 5 seconds, doubling, jittered, at most 2 minutes). */
  readonly openDuration?: Schedule.Schedule<unknown, unknown> | undefined
  /** Concurrent trial calls allowed while half-open (default 1); others get {@link BreakerOpen}. */
  readonly halfOpenTrials?: number | undefined
  /** Successful trial calls needed to close (default 1). */
  readonly successesToClose?: number | undefined
  /** How failures are classified (default: every failure is an `unknown` fault, so it counts). */
  readonly classify?: Classifier | undefined
}

/**
 * A circuit breaker for one endpoint.
 *
 * @since 0.1.0
 * @category models
 */
export interface CircuitBreaker {
  readonly endpoint: EndpointId
  /** The published state: current value and a stream of transitions. */
  readonly state: SubscriptionRef.SubscriptionRef<BreakerState>
  /** The current status, read without waiting. */
  readonly status: Effect.Effect<Status>
  /**
   * Runs `effect` through the breaker: rejects it with {@link BreakerOpen}
   * when open, records its outcome otherwise. `classify` overrides the
   * breaker's classifier for this call. The state is checked when the
   * returned effect runs, so it can be built once and run many times.
   */
  readonly protect: <A, E, R>(
    effect: Effect.Effect<A, E, R>,
    classify?: Classifier
  ) => Effect.Effect<A, E | BreakerOpen, R>
  /** Closes the breaker by hand (an operator's override), clearing its statistics. */
  readonly reset: Effect.Effect<void>
  /**
   * Changes the thresholds while running (the classifier stays): the state
   * stays, the closed-state statistics start afresh. Fails, changing
   * nothing, on an invalid option.
   */
  readonly reconfigure: (options: Omit<Options, "endpoint" | "classify">) => Effect.Effect<void, InvalidBreakerOptions>
}

/**
 * Makes a circuit breaker. Its timers live in the current scope.
 *
 * Fails with `InvalidBreakerOptions` (an `InvalidPoolOptions`, see its doc)
 * naming the first invalid option: a threshold outside (0, 1], a count that
 * is not a positive integer, a window shorter than one second, shorthand
 * options mixed with `policies`.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { CircuitBreaker } from "@tether/core"
 *
 * const program = Effect.gen(function*() {
 *   const breaker = yield* CircuitBreaker.make({ endpoint: "postgres://db1/app", consecutiveFailures: 3 })
 *   yield* breaker.protect(Effect.succeed(1))
 *   return yield* breaker.status // "closed"
 * }).pipe(Effect.scoped)
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (options: Options): Effect.Effect<CircuitBreaker, InvalidBreakerOptions, Scope.Scope> =>
  Effect.gen(function*() {
    const settings = yield* BreakerOptions.check(options)
    const clock = yield* Clock.Clock
    const scope = yield* Effect.scope
    const state = yield* SubscriptionRef.make<BreakerState>({
      endpoint: options.endpoint,
      status: "closed",
      since: clock.currentTimeMillisUnsafe(),
      retryAt: undefined,
      openings: 0,
      reason: undefined
    })
    const breaker = new Machine(settings, state, clock, scope)
    yield* Metric.update(Metric.withAttributes(stateGauge, { endpoint: options.endpoint, state: "closed" }), 1)
    return breaker
  })
