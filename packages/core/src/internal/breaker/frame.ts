/**
 * The closed-state fast path: observing a call's outcome with a frame pushed
 * straight onto the running fiber's stack, instead of wrapping the call in
 * `Effect.onExitPrimitive`.
 *
 * Why: on an async no-op, `onExitPrimitive` costs a wrapper object, two more
 * turns of the fiber's run loop and an `Exit` per call — about 20 % of
 * `Effect.promise`'s own cost (BENCHMARKS.md, circuit breaker). A frame
 * costs nothing measurable: on success the fiber calls its success
 * continuation, which records the outcome and passes the value straight on.
 *
 * How, and what it relies on: a frame is any object with Effect's
 * success/failure continuation keys, which this module reads off the
 * objects that the public `Effect.map` and `Effect.catchCause` build (they
 * are not hard-coded); and the fiber's `_stack` array and `succeedWith`
 * method. All of it is checked — at load time (the keys) and on every call
 * (the fiber) — and when anything is missing the breaker falls back to
 * `Effect.onExitPrimitive`, with the same behaviour, only slower. The test
 * `CircuitBreaker.test.ts` asserts that the fast path is in use, so an Effect
 * upgrade that changes these internals shows up as a failing test, not as a
 * silent slowdown.
 *
 * @internal
 */
import type * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import type { Classifier } from "../../Fault.ts"

const keyOf = (effect: object, suffix: string): string | undefined =>
  Object.keys(effect).find((key) => key.endsWith(suffix))

const successKey = keyOf(Effect.map(Effect.void, (value) => value), "/successCont")
const failureKey = keyOf(Effect.catchCause(Effect.void, () => Effect.void), "/failureCont")

interface FiberInternals {
  readonly _stack: Array<unknown>
  succeedWith(value: unknown): unknown
}

let enabled = successKey !== undefined && failureKey !== undefined

/** Whether frames can be pushed (the continuation keys were found, and not turned off). @internal */
export const isEnabled = (): boolean => enabled

/** Turns the fast path off or back on (for tests of the fallback). @internal */
export const setEnabled = (on: boolean): void => {
  enabled = on && successKey !== undefined && failureKey !== undefined
}

/** The fiber's internals, when they are what this module expects. @internal */
export const internalsOf = (fiber: unknown): FiberInternals | undefined => {
  if (!enabled) return undefined
  const f = fiber as Partial<FiberInternals>
  return Array.isArray(f._stack) && typeof f.succeedWith === "function" ? (fiber as FiberInternals) : undefined
}

/** What a frame reports to; each returns the transition to run, if any. @internal */
export interface Observer {
  onSuccess(frame: Frame): Effect.Effect<void> | undefined
  onFailure(frame: Frame, cause: Cause.Cause<unknown>): Effect.Effect<void> | undefined
}

/** One observed call (or, shared, every call without per-call data). @internal */
export interface Frame {
  readonly observer: Observer
  /** The per-call classifier, if any. */
  readonly classify: Classifier | undefined
  /** When the call started, for timed policies (0 otherwise). */
  readonly start: number
}

interface FrameCtor {
  new(observer: Observer, classify: Classifier | undefined, start: number): Frame
}

const FrameImpl = function(this: { observer: Observer; classify: unknown; start: number }, observer: Observer, classify: unknown, start: number) {
  this.observer = observer
  this.classify = classify
  this.start = start
} as unknown as FrameCtor

if (successKey !== undefined && failureKey !== undefined) {
  Object.defineProperty(FrameImpl.prototype, successKey, {
    value(this: Frame, value: unknown, fiber: FiberInternals) {
      const transition = this.observer.onSuccess(this)
      return transition === undefined ? fiber.succeedWith(value) : Effect.as(transition, value)
    }
  })
  Object.defineProperty(FrameImpl.prototype, failureKey, {
    value(this: Frame, cause: Cause.Cause<unknown>) {
      const transition = this.observer.onFailure(this, cause)
      return transition === undefined ? Effect.failCause(cause) : Effect.andThen(transition, Effect.failCause(cause))
    }
  })
}

/** @internal */
export const make = (observer: Observer, classify: Classifier | undefined, start: number): Frame =>
  new FrameImpl(observer, classify, start)

/** Pushes `frame` onto the fiber's stack: it sees the outcome of what the fiber runs next. @internal */
export const push = (fiber: FiberInternals, frame: Frame): void => {
  fiber._stack.push(frame)
}
