/**
 * The closed-state fast path: observing a call's outcome with a frame pushed
 * straight onto the running fiber's stack (`../fiberStack.ts`), instead of
 * wrapping the call in `Effect.onExitPrimitive`.
 *
 * Why: on an async no-op, `onExitPrimitive` costs a wrapper object, two more
 * turns of the fiber's run loop and an `Exit` per call — about 20 % of
 * `Effect.promise`'s own cost (BENCHMARKS.md, circuit breaker). A frame
 * costs nothing measurable: on success the fiber calls its success
 * continuation, which records the outcome and passes the value straight on.
 * When Effect's internals are not what `fiberStack.ts` expects, the breaker
 * falls back to `Effect.onExitPrimitive`, with the same behaviour, only slower.
 *
 * @internal
 */
import type * as Cause from "effect/Cause"
import type * as Effect from "effect/Effect"
import type { Classifier } from "../../Fault.ts"
import * as FiberStack from "../fiberStack.ts"

export { internalsOf, isEnabled, push, setEnabled } from "../fiberStack.ts"

/** What a frame reports to; each returns the transition to run, if any. @internal */
export interface Observer {
  onSuccess(frame: Frame): Effect.Effect<void> | undefined
  onFailure(frame: Frame, cause: Cause.Cause<unknown>): Effect.Effect<void> | undefined
}

/** One observed call (or, shared, every call without per-call data). @internal */
export class Frame {
  constructor(
    readonly observer: Observer,
    /** The per-call classifier, if any. */
    readonly classify: Classifier | undefined,
    /** When the call started, for timed policies (0 otherwise). */
    readonly start: number
  ) {}
}

FiberStack.defineFrame(Frame, {
  onExit: (frame, failure) =>
    failure === undefined ? frame.observer.onSuccess(frame) : frame.observer.onFailure(frame, failure)
})

/** @internal */
export const make = (observer: Observer, classify: Classifier | undefined, start: number): Frame =>
  new Frame(observer, classify, start)
