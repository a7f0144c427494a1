/**
 * The breaker's state machine: admission (closed / open / half-open), the
 * policies' trackers, transitions and their publication, and the timer that
 * half-opens it.
 *
 * Hot path (closed): one `Effectable` primitive per call (no closure), a
 * frame pushed on the fiber's stack (`frame.ts`; else an `onExitPrimitive`
 * callback), and on a success one call to each tracker. The clock is only
 * read when a policy is timed. Transitions change `phase` synchronously in
 * the frame or callback, so a transition is never half done; publishing it
 * (SubscriptionRef, metrics, log) runs uninterruptibly right after.
 *
 * @internal
 */
import type * as Cause from "effect/Cause"
import type * as Clock from "effect/Clock"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Effectable from "effect/Effectable"
import type * as Exit from "effect/Exit"
import * as Metric from "effect/Metric"
import type * as Scope from "effect/Scope"
import * as SubscriptionRef from "effect/SubscriptionRef"
import { BreakerOpen, type BreakerState, type CircuitBreaker, type Options, type Status } from "../../CircuitBreaker.ts"
import type { EndpointId } from "../../Endpoint.ts"
import { type Classifier, isServerFault } from "../../Fault.ts"
import { describeError, formatMillis } from "../format.ts"
import * as ScheduleStep from "../scheduleStep.ts"
import * as Frame from "./frame.ts"
import type { InvalidBreakerOptions } from "../../PoolError.ts"
import { check, type Settings } from "./options.ts"
import type { Tracker } from "./policy.ts"
import * as State from "./state.ts"

const transitions = Metric.counter("tether_breaker_transitions_total", {
  description: "Circuit breaker state transitions",
  incremental: true
})
/** @internal */
export const stateGauge = Metric.gauge("tether_breaker_state", {
  description: "Circuit breaker state: 1 for the current state of each endpoint's breaker, 0 for the others"
})
const rejections = Metric.counter("tether_breaker_rejections_total", {
  description: "Calls rejected by an open or saturated half-open circuit breaker",
  incremental: true
})

const statuses: ReadonlyArray<Status> = ["closed", "open", "half-open"]

/**
 * Whether a failed call is a server fault; `undefined` when it is not
 * counted (an interruption). Authentication and semantic failures count as
 * successes: the server answered.
 */
const isFailure = (cause: Cause.Cause<unknown>, classify: Classifier): boolean | undefined => {
  let died = false
  for (const reason of cause.reasons) {
    if (reason._tag === "Fail") return isServerFault(classify(reason.error))
    if (reason._tag === "Die") died = true
  }
  return died ? true : undefined
}

const lastErrorOf = (cause: Cause.Cause<unknown> | undefined): string | undefined => {
  const reason = cause?.reasons.find((r) => r._tag === "Fail" || r._tag === "Die")
  if (reason === undefined) return undefined
  return describeError(reason._tag === "Fail" ? reason.error : reason._tag === "Die" ? reason.defect : undefined)
}

/** One `protect` call: checks the state when run, not when built (no closure allocated). */
interface Protect<A, E, R> extends Effect.Effect<A, E | BreakerOpen, R> {
  readonly breaker: Machine
  readonly effect: Effect.Effect<A, E, R>
  readonly classify: Classifier | undefined
}

const ProtectProto = Effectable.Prototype<Protect<unknown, unknown, unknown>>({
  label: "CircuitBreaker.protect",
  evaluate(fiber) {
    return this.breaker.admit(this.effect, this.classify, fiber)
  }
})

interface ProtectCtor {
  new<A, E, R>(breaker: Machine, effect: Effect.Effect<A, E, R>, classify: Classifier | undefined): Protect<A, E, R>
}

const ProtectImpl = function(
  this: { breaker: Machine; effect: unknown; classify: unknown },
  breaker: Machine,
  effect: unknown,
  classify: unknown
) {
  this.breaker = breaker
  this.effect = effect
  this.classify = classify
} as unknown as ProtectCtor
ProtectImpl.prototype = ProtectProto

/** @internal */
export class Machine implements CircuitBreaker, Frame.Observer {
  readonly endpoint: EndpointId
  readonly status: Effect.Effect<Status>
  readonly reset: Effect.Effect<void>

  private phase: State.State = State.closed
  /** Bumped on every transition: an outcome of an earlier half-open period is ignored. */
  private generation = 0
  private since: number
  private reason: string | undefined = undefined
  private step: ScheduleStep.Stepper<unknown> | undefined = undefined
  private lastDelay = 0

  // Replaced by `reconfigure`.
  private trackers: ReadonlyArray<Tracker>
  /** Whether closed-state outcomes need the clock (a time window or the slow-call policy). */
  private timed: boolean
  private slowCallMillis: number | undefined
  private readonly rejectionCounter: Metric.Metric<number, unknown>
  private readonly gauges: ReadonlyArray<Metric.Metric<number, unknown>>
  private readonly onClosedExit: (exit: Exit.Exit<unknown, unknown>) => Effect.Effect<void> | undefined
  /** The frame of every closed-state call without a per-call classifier (untimed policies). */
  private readonly sharedFrame: Frame.Frame

  constructor(
    private settings: Settings,
    readonly state: SubscriptionRef.SubscriptionRef<BreakerState>,
    private readonly clock: Clock.Clock,
    private readonly scope: Scope.Scope
  ) {
    this.endpoint = settings.endpoint
    this.trackers = settings.policies.map((policy) => policy.makeTracker())
    this.timed = settings.policies.some((policy) => policy.timed)
    const slow = settings.policies.map((p) => p.slowCallMillis).filter((m): m is number => m !== undefined)
    this.slowCallMillis = slow.length === 0 ? undefined : Math.min(...slow)
    this.since = clock.currentTimeMillisUnsafe()
    const attributes = { endpoint: this.endpoint }
    this.rejectionCounter = Metric.withAttributes(rejections, attributes)
    this.gauges = statuses.map((state) => Metric.withAttributes(stateGauge, { ...attributes, state }))
    const classify = settings.classify
    this.onClosedExit = (exit) => this.recordClosed(exit, classify, 0)
    this.sharedFrame = Frame.make(this, undefined, 0)
    this.status = Effect.sync(() => State.status(this.phase))
    this.reset = Effect.suspend(() => {
      if (this.phase._tag !== "Closed") return this.close("reset by hand")
      for (const tracker of this.trackers) tracker.reset()
      return Effect.void
    })
  }

  /**
   * New thresholds from the next call on; the state (closed, open, half-open)
   * stays, the closed-state statistics start afresh. The classifier stays.
   */
  reconfigure(options: Omit<Options, "endpoint" | "classify">): Effect.Effect<void, InvalidBreakerOptions> {
    return Effect.map(
      check({ ...options, endpoint: this.endpoint, classify: this.settings.classify }),
      (settings) => {
        this.settings = settings
        this.trackers = settings.policies.map((policy) => policy.makeTracker())
        this.timed = settings.policies.some((policy) => policy.timed)
        const slow = settings.policies.map((p) => p.slowCallMillis).filter((m): m is number => m !== undefined)
        this.slowCallMillis = slow.length === 0 ? undefined : Math.min(...slow)
      }
    )
  }

  protect<A, E, R>(effect: Effect.Effect<A, E, R>, classify?: Classifier): Effect.Effect<A, E | BreakerOpen, R> {
    return new ProtectImpl(this, effect, classify)
  }

  /** Runs when a `protect` effect is evaluated. */
  admit<A, E, R>(
    effect: Effect.Effect<A, E, R>,
    classify: Classifier | undefined,
    fiber: unknown
  ): Effect.Effect<A, E | BreakerOpen, R> {
    if (this.phase === State.closed) {
      const internals = Frame.internalsOf(fiber)
      if (internals !== undefined) {
        // The fast path (see frame.ts): a frame on the fiber's stack sees the outcome.
        Frame.push(
          internals,
          classify === undefined && !this.timed
            ? this.sharedFrame
            : Frame.make(this, classify, this.timed ? this.clock.currentTimeMillisUnsafe() : 0)
        )
        return effect
      }
      if (!this.timed) {
        // Interruptible callback: it is synchronous, and the transition
        // effect it may return is made uninterruptible itself.
        return Effect.onExitPrimitive(
          effect,
          classify === undefined ? this.onClosedExit : (exit) => this.recordClosed(exit, classify, 0),
          true
        )
      }
      const start = this.clock.currentTimeMillisUnsafe()
      const by = classify ?? this.settings.classify
      return Effect.onExitPrimitive(effect, (exit) => this.recordClosed(exit, by, start), true)
    }
    return this.admitNotClosed(effect, classify ?? this.settings.classify)
  }

  /** A closed-state call succeeded (fast path). */
  onSuccess(frame: Frame.Frame): Effect.Effect<void> | undefined {
    return this.recordOutcome(false, frame.start, undefined)
  }

  /** A closed-state call failed or was interrupted (fast path). */
  onFailure(frame: Frame.Frame, cause: Cause.Cause<unknown>): Effect.Effect<void> | undefined {
    const failure = isFailure(cause, frame.classify ?? this.settings.classify)
    return failure === undefined ? undefined : this.recordOutcome(failure, frame.start, cause)
  }

  private admitNotClosed<A, E, R>(effect: Effect.Effect<A, E, R>, classify: Classifier): Effect.Effect<A, E | BreakerOpen, R> {
    const now = this.clock.currentTimeMillisUnsafe()
    let toHalfOpen: Effect.Effect<void> | undefined
    let state = this.phase
    if (state._tag === "Open") {
      // Due, but the timer fiber has not run yet: half-open now.
      if (now < state.until) return this.reject(now, state)
      toHalfOpen = this.halfOpen(state)
      state = this.phase
    }
    if (state._tag !== "HalfOpen") return this.reject(now, state)
    if (state.trials >= this.settings.halfOpenTrials) return this.reject(now, state)
    this.phase = State.halfOpen(state.attempt, state.trials + 1, state.successes)
    const generation = this.generation
    // The exit callback covers the publication too, so an interruption
    // anywhere after this point gives the trial slot back.
    return Effect.onExitPrimitive(
      toHalfOpen === undefined ? effect : Effect.andThen(toHalfOpen, effect),
      (exit) => this.recordTrial(exit, classify, generation, now)
    )
  }

  private reject(now: number, state: State.State): Effect.Effect<never, BreakerOpen> {
    const error = new BreakerOpen({
      endpoint: this.endpoint,
      status: state._tag === "Open" ? "open" : "half-open",
      retryAt: state._tag === "Open" && state.until !== Infinity ? state.until : undefined,
      rejectedAt: now
    })
    return Effect.andThen(Metric.update(this.rejectionCounter, 1), Effect.fail(error))
  }

  private recordClosed(
    exit: Exit.Exit<unknown, unknown>,
    classify: Classifier,
    start: number
  ): Effect.Effect<void> | undefined {
    if (exit._tag === "Success") return this.recordOutcome(false, start, undefined)
    const failure = isFailure(exit.cause, classify)
    return failure === undefined ? undefined : this.recordOutcome(failure, start, exit.cause)
  }

  /** Feeds one counted closed-state outcome to the policies; opens when one trips. */
  private recordOutcome(
    failure: boolean,
    start: number,
    cause: Cause.Cause<unknown> | undefined
  ): Effect.Effect<void> | undefined {
    if (this.phase !== State.closed) return undefined
    const now = this.timed ? this.clock.currentTimeMillisUnsafe() : 0
    const elapsed = now - start
    const trackers = this.trackers
    for (let i = 0; i < trackers.length; i++) {
      const reason = trackers[i]!.record(failure, now, elapsed)
      if (reason !== undefined) return this.open(reason, cause)
    }
    return undefined
  }

  private recordTrial(
    exit: Exit.Exit<unknown, unknown>,
    classify: Classifier,
    generation: number,
    start: number
  ): Effect.Effect<void> | undefined {
    const state = this.phase
    if (generation !== this.generation || state._tag !== "HalfOpen") return undefined
    const failure = exit._tag === "Success" ? false : isFailure(exit.cause, classify)
    if (failure === undefined) {
      this.phase = State.halfOpen(state.attempt, state.trials - 1, state.successes)
      return undefined
    }
    if (failure) return this.open("a half-open trial call failed", exit._tag === "Failure" ? exit.cause : undefined)
    if (this.slowCallMillis !== undefined) {
      const elapsed = this.clock.currentTimeMillisUnsafe() - start
      if (elapsed >= this.slowCallMillis) return this.open(`a half-open trial call was slow (${formatMillis(elapsed)})`, undefined)
    }
    const successes = state.successes + 1
    if (successes >= this.settings.successesToClose) {
      return this.close(`${successes} successful trial call${successes === 1 ? "" : "s"}`)
    }
    this.phase = State.halfOpen(state.attempt, state.trials - 1, successes)
    return undefined
  }

  /** Replaces the state (a transition); returns the status it left. */
  private enter(to: State.State): Status {
    const from = State.status(this.phase)
    this.phase = to
    this.generation++
    this.since = this.clock.currentTimeMillisUnsafe()
    for (const tracker of this.trackers) tracker.reset()
    return from
  }

  private open(reason: string, cause: Cause.Cause<unknown> | undefined): Effect.Effect<void> {
    const attempt = this.phase._tag === "HalfOpen" ? this.phase.attempt + 1 : 1
    // Rejecting from now on; `until` is known once the schedule has stepped.
    const opening = State.open(Infinity, attempt)
    const from = this.enter(opening)
    this.reason = reason
    const detail = lastErrorOf(cause)
    return Effect.uninterruptible(Effect.flatMap(this.nextDelay(), (delay) => {
      if (this.phase !== opening) return Effect.void
      const opened = State.open(this.since + delay, attempt)
      this.phase = opened
      return Effect.andThen(
        this.publish(
          from,
          "open",
          Effect.logWarning(`circuit breaker opened: ${reason}; next trial call in ${formatMillis(delay)}`).pipe(
            Effect.annotateLogs(detail === undefined ? {} : { lastError: detail })
          )
        ),
        // The timer: a fiber supervised by the breaker's scope.
        Effect.asVoid(Effect.forkIn(
          Effect.andThen(
            Effect.sleep(Duration.millis(delay)),
            Effect.suspend(() => this.phase === opened ? this.halfOpen(opened) : Effect.void)
          ),
          this.scope
        ))
      )
    }))
  }

  /** The open duration's next delay; when the schedule is done, its last delay again. */
  private nextDelay(): Effect.Effect<number> {
    return Effect.suspend(() => {
      const step = this.step
      if (step === undefined) {
        return Effect.flatMap(ScheduleStep.start(this.settings.openDuration), (step) => {
          this.step = step
          return this.nextDelay()
        })
      }
      return Effect.map(step(this.since, this.reason), (delay) => {
        if (delay !== undefined) this.lastDelay = delay
        return this.lastDelay
      })
    })
  }

  private halfOpen(from: State.Open): Effect.Effect<void> {
    this.enter(State.halfOpen(from.attempt, 0, 0))
    return this.publish(
      "open",
      "half-open",
      Effect.logInfo(`circuit breaker half-open: letting up to ${this.settings.halfOpenTrials} trial call(s) through`)
    )
  }

  private close(reason: string): Effect.Effect<void> {
    const from = this.enter(State.closed)
    this.reason = undefined
    this.step = undefined
    return this.publish(from, "closed", Effect.logInfo(`circuit breaker closed: ${reason}`))
  }

  private snapshot(): BreakerState {
    const state = this.phase
    return {
      endpoint: this.endpoint,
      status: State.status(state),
      since: this.since,
      retryAt: state._tag === "Open" && state.until !== Infinity ? state.until : undefined,
      openings: state._tag === "Closed" ? 0 : state.attempt,
      reason: this.reason
    }
  }

  private publish(from: Status, to: Status, log: Effect.Effect<void>): Effect.Effect<void> {
    const attributes = { endpoint: this.endpoint, from, to }
    return Effect.uninterruptible(Effect.all([
      SubscriptionRef.set(this.state, this.snapshot()),
      Metric.update(Metric.withAttributes(transitions, attributes), 1),
      Metric.update(this.gauges[statuses.indexOf(from)]!, 0),
      Metric.update(this.gauges[statuses.indexOf(to)]!, 1),
      Effect.annotateLogs(log, attributes)
    ], { discard: true }))
  }
}
