/**
 * A circuit breaker for one endpoint: `closed` (calls go through), `open`
 * (calls are rejected at once with {@link BreakerOpen}) and `half-open` (a
 * bounded number of trial calls go through; enough successes close it, one
 * failure opens it again for longer).
 *
 * What opens it (any enabled policy):
 * - `consecutiveFailures`: that many server faults in a row (default 5);
 * - `failureRate`: the share of server faults among the calls in the sliding
 *   `window`, once it holds at least `minimumCalls` calls;
 * - `slowCalls`: the share of calls slower than `slowerThan` in the window.
 *
 * Only failures that the classifier calls server faults count
 * (`Fault.isServerFault`: connection, overload, unknown). Authentication and
 * semantic failures count as *successful* calls: the server answered, so they
 * reset the consecutive-failure count, dilute the failure rate, and pass a
 * half-open trial. Defects count as server faults; interrupted calls are not
 * counted at all.
 *
 * How long it stays open is a `Schedule`: the first opening waits the
 * schedule's first delay, and each failed half-open trial moves to the next
 * delay (when the schedule ends, its last delay is reused). Closing starts
 * the schedule over.
 *
 * Every transition is published in {@link CircuitBreaker.state} (a
 * `SubscriptionRef`), counted in `tether_breaker_transitions_total{endpoint,
 * from, to}`, reflected in the `tether_breaker_state{endpoint, state}` gauge
 * (1 for the current state, 0 for the others) and logged. Rejections are
 * counted in `tether_breaker_rejections_total{endpoint}`.
 *
 * Time comes from Effect's `Clock`, so `TestClock` drives it in tests.
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
 *     failureRate: { threshold: 0.5, minimumCalls: 20 },
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
import type * as Cause from "effect/Cause"
import * as Clock from "effect/Clock"
import * as Data from "effect/Data"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import type * as Exit from "effect/Exit"
import * as Metric from "effect/Metric"
import * as Schedule from "effect/Schedule"
import type * as Scope from "effect/Scope"
import * as SubscriptionRef from "effect/SubscriptionRef"
import type { EndpointId } from "./Endpoint.ts"
import type { Classifier } from "./Fault.ts"
import { isServerFault } from "./Fault.ts"
import { describeError, formatMillis } from "./internal/format.ts"
import { CountWindow, type SlidingWindow, TimeWindow } from "./internal/slidingWindow.ts"

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
 * The calls of the last `duration`, counted in one-second buckets (a call
 * leaves the window up to one second early).
 *
 * @since 0.1.0
 * @category windows
 */
export const timeWindow = (duration: Duration.Input): Window => ({ _tag: "Time", duration })

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
   * breaker's classifier for this call.
   */
  readonly protect: <A, E, R>(
    effect: Effect.Effect<A, E, R>,
    classify?: Classifier
  ) => Effect.Effect<A, E | BreakerOpen, R>
  /** Closes the breaker by hand (an operator's override), clearing its statistics. */
  readonly reset: Effect.Effect<void>
}

const unknownFault: Classifier = () => ({ kind: "unknown", mayHaveReachedServer: true })

const transitions = Metric.counter("tether_breaker_transitions_total", {
  description: "Circuit breaker state transitions",
  incremental: true
})
const stateGauge = Metric.gauge("tether_breaker_state", {
  description: "Circuit breaker state: 1 for the current state of each endpoint's breaker, 0 for the others"
})
const rejections = Metric.counter("tether_breaker_rejections_total", {
  description: "Calls rejected by an open or saturated half-open circuit breaker",
  incremental: true
})

const CLOSED = 0
const OPEN = 1
const HALF_OPEN = 2
const statusNames: ReadonlyArray<Status> = ["closed", "open", "half-open"]

type Step = (now: number, input: unknown) => Effect.Effect<readonly [unknown, Duration.Duration], Cause.Done<unknown>>

const positiveInt = (name: string, value: number | undefined, fallback: number): number => {
  const n = value ?? fallback
  if (!(n === Infinity || (Number.isInteger(n) && n > 0))) {
    throw new RangeError(`CircuitBreaker.make: ${name} must be a positive integer, got ${n}`)
  }
  return n
}

const rate = (name: string, value: number): number => {
  if (!(value > 0 && value <= 1)) {
    throw new RangeError(`CircuitBreaker.make: ${name} must be a share between 0 (excluded) and 1, got ${value}`)
  }
  return value
}

const percent = (n: number): string => `${Math.round(n * 1000) / 10}%`

class BreakerImpl implements CircuitBreaker {
  readonly endpoint: EndpointId
  readonly status: Effect.Effect<Status>
  readonly reset: Effect.Effect<void>

  private readonly consecutiveThreshold: number
  private readonly failureRateThreshold: number | undefined
  private readonly slowRateThreshold: number | undefined
  private readonly slowMillis: number | undefined
  private readonly minimumCalls: number
  private readonly window: SlidingWindow | undefined
  /** Whether recording an outcome needs the time (time window or slow-call policy). */
  private readonly needsTime: boolean
  private readonly maxTrials: number
  private readonly successesToClose: number
  private readonly classify: Classifier
  private readonly openDuration: Schedule.Schedule<unknown, unknown>

  private current = CLOSED
  /** Bumped on every transition, so that late outcomes of an earlier state are ignored. */
  private generation = 0
  private consecutiveFailures = 0
  private trialsInFlight = 0
  private trialSuccesses = 0
  private openings = 0
  private since: number
  private retryAt: number | undefined = undefined
  private reason: string | undefined = undefined
  private step: Step | undefined = undefined
  private lastDelay = 0

  private readonly rejectionCounter: Metric.Metric<number, unknown>
  private readonly gauges: ReadonlyArray<Metric.Metric<number, unknown>>
  private readonly onClosedExit: (exit: Exit.Exit<unknown, unknown>) => Effect.Effect<void> | undefined

  constructor(
    options: Options,
    readonly state: SubscriptionRef.SubscriptionRef<BreakerState>,
    private readonly clock: Clock.Clock,
    private readonly scope: Scope.Scope
  ) {
    this.endpoint = options.endpoint
    this.consecutiveThreshold = positiveInt("consecutiveFailures", options.consecutiveFailures, 5)
    this.failureRateThreshold = options.failureRate === undefined
      ? undefined
      : rate("failureRate.threshold", options.failureRate.threshold)
    this.slowRateThreshold = options.slowCalls === undefined
      ? undefined
      : rate("slowCalls.threshold", options.slowCalls.threshold)
    this.slowMillis = options.slowCalls === undefined
      ? undefined
      : Duration.toMillis(Duration.fromInputUnsafe(options.slowCalls.slowerThan))
    this.minimumCalls = positiveInt("minimumCalls", options.minimumCalls, 20)
    if (this.failureRateThreshold !== undefined || this.slowRateThreshold !== undefined) {
      const window = options.window ?? countWindow(100)
      this.window = window._tag === "Count"
        ? new CountWindow(positiveInt("window size", window.size, 100))
        : new TimeWindow(Duration.toMillis(Duration.fromInputUnsafe(window.duration)))
    }
    this.needsTime = this.slowMillis !== undefined || this.window instanceof TimeWindow
    this.maxTrials = positiveInt("halfOpenTrials", options.halfOpenTrials, 1)
    this.successesToClose = positiveInt("successesToClose", options.successesToClose, 1)
    this.classify = options.classify ?? unknownFault
    this.openDuration = options.openDuration ??
      Schedule.exponential("5 seconds").pipe(
        Schedule.modifyDelay(({ duration }) => Effect.succeed(Duration.min(duration, Duration.minutes(2)))),
        Schedule.jittered
      )
    this.since = clock.currentTimeMillisUnsafe()
    const attributes = { endpoint: this.endpoint }
    this.rejectionCounter = Metric.withAttributes(rejections, attributes)
    this.gauges = statusNames.map((state) => Metric.withAttributes(stateGauge, { ...attributes, state }))
    this.onClosedExit = (exit) => this.recordClosed(exit, this.classify, 0)
    this.status = Effect.sync(() => statusNames[this.current]!)
    this.reset = Effect.suspend(() =>
      this.current === CLOSED && this.consecutiveFailures === 0 && (this.window?.calls ?? 0) === 0
        ? Effect.void
        : this.close("reset by hand")
    )
  }

  protect<A, E, R>(effect: Effect.Effect<A, E, R>, classify?: Classifier): Effect.Effect<A, E | BreakerOpen, R> {
    return Effect.suspend(() => {
      if (this.current === CLOSED) {
        if (this.slowMillis === undefined) {
          // The callback (and the transition it may return) runs uninterruptibly,
          // so that a transition is never left half done.
          return Effect.onExitPrimitive(
            effect,
            classify === undefined ? this.onClosedExit : (exit) => this.recordClosed(exit, classify, 0)
          )
        }
        const start = this.clock.currentTimeMillisUnsafe()
        return Effect.onExitPrimitive(effect, (exit) => this.recordClosed(exit, classify ?? this.classify, start))
      }
      return this.protectNotClosed(effect, classify ?? this.classify)
    })
  }

  private protectNotClosed<A, E, R>(
    effect: Effect.Effect<A, E, R>,
    classify: Classifier
  ): Effect.Effect<A, E | BreakerOpen, R> {
    const now = this.clock.currentTimeMillisUnsafe()
    let toHalfOpen: Effect.Effect<void> | undefined
    if (this.current === OPEN) {
      // Past the delay but the timer has not fired yet: half-open now.
      if (this.retryAt === undefined || now < this.retryAt) return this.reject(now)
      toHalfOpen = this.halfOpen(this.generation)
    }
    if (this.trialsInFlight >= this.maxTrials) return this.reject(now)
    this.trialsInFlight++
    const generation = this.generation
    // The exit callback covers the publication too, so an interruption
    // anywhere after this point gives the trial slot back.
    return Effect.onExitPrimitive(
      toHalfOpen === undefined ? effect : Effect.andThen(toHalfOpen, effect),
      (exit) => this.recordTrial(exit, classify, generation, now)
    )
  }

  private reject(now: number): Effect.Effect<never, BreakerOpen> {
    const error = new BreakerOpen({
      endpoint: this.endpoint,
      status: this.current === OPEN ? "open" : "half-open",
      retryAt: this.current === OPEN ? this.retryAt : undefined,
      rejectedAt: now
    })
    return Effect.andThen(Metric.update(this.rejectionCounter, 1), Effect.fail(error))
  }

  /** Whether the exit is a server fault; `undefined` when it should not be counted (interruption). */
  private isFailure(exit: Exit.Exit<unknown, unknown>, classify: Classifier): boolean | undefined {
    if (exit._tag === "Success") return false
    let died = false
    for (const reason of exit.cause.reasons) {
      if (reason._tag === "Fail") return isServerFault(classify(reason.error))
      if (reason._tag === "Die") died = true
    }
    return died ? true : undefined
  }

  private recordClosed(
    exit: Exit.Exit<unknown, unknown>,
    classify: Classifier,
    start: number
  ): Effect.Effect<void> | undefined {
    if (this.current !== CLOSED) return undefined
    const failure = this.isFailure(exit, classify)
    if (failure === undefined) return undefined
    if (failure) {
      const n = ++this.consecutiveFailures
      if (n >= this.consecutiveThreshold) {
        return this.open(`${n} consecutive server fault${n === 1 ? "" : "s"}`, exit)
      }
    } else {
      this.consecutiveFailures = 0
    }
    const window = this.window
    if (window === undefined) return undefined
    const now = this.needsTime ? this.clock.currentTimeMillisUnsafe() : 0
    const slow = this.slowMillis !== undefined && now - start >= this.slowMillis
    window.record(now, failure, slow)
    if (window.calls < this.minimumCalls) return undefined
    if (this.failureRateThreshold !== undefined && window.failures > 0) {
      const observed = window.failures / window.calls
      if (observed >= this.failureRateThreshold) {
        return this.open(
          `failure rate ${percent(observed)} ≥ ${percent(this.failureRateThreshold)} over ${window.calls} calls`,
          exit
        )
      }
    }
    if (this.slowRateThreshold !== undefined && window.slow > 0) {
      const observed = window.slow / window.calls
      if (observed >= this.slowRateThreshold) {
        return this.open(
          `slow-call rate ${percent(observed)} ≥ ${percent(this.slowRateThreshold)} over ${window.calls} calls ` +
            `(slower than ${formatMillis(this.slowMillis!)})`,
          undefined
        )
      }
    }
    return undefined
  }

  private recordTrial(
    exit: Exit.Exit<unknown, unknown>,
    classify: Classifier,
    generation: number,
    start: number
  ): Effect.Effect<void> | undefined {
    if (generation !== this.generation) return undefined
    this.trialsInFlight--
    const failure = this.isFailure(exit, classify)
    if (failure === undefined) return undefined
    if (failure) return this.open("a half-open trial call failed", exit)
    if (this.slowMillis !== undefined) {
      const elapsed = this.clock.currentTimeMillisUnsafe() - start
      if (elapsed >= this.slowMillis) {
        return this.open(`a half-open trial call was slow (${formatMillis(elapsed)})`, undefined)
      }
    }
    if (++this.trialSuccesses >= this.successesToClose) {
      return this.close(`${this.trialSuccesses} successful trial call${this.trialSuccesses === 1 ? "" : "s"}`)
    }
    return undefined
  }

  /** Moves to a new status synchronously; returns the status it left. */
  private enter(to: number): number {
    const from = this.current
    this.current = to
    this.generation++
    this.since = this.clock.currentTimeMillisUnsafe()
    this.trialsInFlight = 0
    this.trialSuccesses = 0
    return from
  }

  private open(reason: string, exit: Exit.Exit<unknown, unknown> | undefined): Effect.Effect<void> {
    const from = this.enter(OPEN)
    const generation = this.generation
    this.openings++
    this.reason = reason
    this.retryAt = undefined
    this.consecutiveFailures = 0
    this.window?.reset()
    const lastError = exit !== undefined && exit._tag === "Failure"
      ? exit.cause.reasons.find((r) => r._tag === "Fail" || r._tag === "Die")
      : undefined
    const detail = lastError === undefined
      ? undefined
      : describeError(lastError._tag === "Fail" ? lastError.error : lastError.defect)
    return Effect.uninterruptible(Effect.flatMap(this.nextDelay(), (delay) => {
      if (generation !== this.generation) return Effect.void
      this.retryAt = this.since + delay
      return Effect.andThen(
        this.publish(from, OPEN, Effect.logWarning(
          `circuit breaker opened: ${reason}; next trial call in ${formatMillis(delay)}`
        ).pipe(Effect.annotateLogs(detail === undefined ? {} : { lastError: detail }))),
        Effect.asVoid(Effect.forkIn(
          Effect.andThen(Effect.sleep(Duration.millis(delay)), Effect.suspend(() => this.halfOpen(generation))),
          this.scope
        ))
      )
    }))
  }

  private nextDelay(): Effect.Effect<number> {
    return Effect.suspend(() => {
      const step = this.step
      if (step === undefined) {
        return Effect.flatMap(Schedule.toStep(this.openDuration), (step) => {
          this.step = step as unknown as Step
          return this.nextDelay()
        })
      }
      return Effect.map(Effect.result(step(this.since, this.reason)), (result) => {
        if (result._tag === "Success") this.lastDelay = Math.max(0, Duration.toMillis(result.success[1]))
        return this.lastDelay
      })
    })
  }

  private halfOpen(generation: number): Effect.Effect<void> {
    if (generation !== this.generation || this.current !== OPEN) return Effect.void
    const from = this.enter(HALF_OPEN)
    this.retryAt = undefined
    return this.publish(
      from,
      HALF_OPEN,
      Effect.logInfo(`circuit breaker half-open: letting up to ${this.maxTrials} trial call(s) through`)
    )
  }

  private close(reason: string): Effect.Effect<void> {
    const from = this.enter(CLOSED)
    this.openings = 0
    this.reason = undefined
    this.retryAt = undefined
    this.consecutiveFailures = 0
    this.step = undefined
    this.window?.reset()
    return this.publish(from, CLOSED, Effect.logInfo(`circuit breaker closed: ${reason}`))
  }

  private snapshot(): BreakerState {
    return {
      endpoint: this.endpoint,
      status: statusNames[this.current]!,
      since: this.since,
      retryAt: this.retryAt,
      openings: this.openings,
      reason: this.reason
    }
  }

  private publish(from: number, to: number, log: Effect.Effect<void>): Effect.Effect<void> {
    const attributes = { endpoint: this.endpoint, from: statusNames[from]!, to: statusNames[to]! }
    return Effect.uninterruptible(Effect.all([
      SubscriptionRef.set(this.state, this.snapshot()),
      Metric.update(Metric.withAttributes(transitions, attributes), 1),
      Metric.update(this.gauges[from]!, 0),
      Metric.update(this.gauges[to]!, 1),
      Effect.annotateLogs(log, attributes)
    ], { discard: true }))
  }
}

/**
 * Makes a circuit breaker. Its timers live in the current scope.
 *
 * Invalid options (a threshold outside (0, 1], a non-positive count) are
 * defects: they are programming errors, reported with a `RangeError` naming
 * the option.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (options: Options): Effect.Effect<CircuitBreaker, never, Scope.Scope> =>
  Effect.gen(function*() {
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
    const breaker = new BreakerImpl(options, state, clock, scope)
    yield* Metric.update(Metric.withAttributes(stateGauge, { endpoint: options.endpoint, state: "closed" }), 1)
    return breaker
  })
