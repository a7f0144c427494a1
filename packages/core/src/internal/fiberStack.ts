/**
 * Frames pushed straight onto the running fiber's stack: the cheap way to
 * see the outcome of what the fiber runs next, used on the hot paths of the
 * circuit breaker (`breaker/frame.ts`) and of the pool's borrow
 * (`pool/single/lease.ts`).
 *
 * Why: `Effect.onExitPrimitive` and `Effect.catchCause` each allocate a
 * primitive and cost the fiber a turn of its run loop to evaluate it, and
 * `onExitPrimitive` also an `Exit` and one more turn to hand it back —
 * together about a third of a `Pool.use` (BENCHMARKS.md, pool and breaker
 * sections). A frame is an object with Effect's continuation methods, pushed
 * from inside a `withFiber` the fiber is already evaluating; on success the
 * fiber calls its success continuation, which passes the value straight on.
 * `Pool.use` itself installs its release this way (`onExitUnsafe`, internal
 * to Effect).
 *
 * What it relies on, all checked at load time (and the fiber on every use),
 * with each caller falling back to the public combinators when anything is
 * missing:
 * - the continuation keys, read off objects that the public `Effect.map`,
 *   `Effect.catchCause` build (never hard-coded);
 * - the fiber's `_stack` array, `succeedWith` method and `interruptible` flag;
 * - the frame that restores interruptibility, taken from the stack inside a
 *   public `Effect.uninterruptible`.
 * Tests assert the fast path is in use (`isEnabled`), so an Effect upgrade
 * that changes these internals fails a test instead of slowing down silently.
 *
 * @internal
 */
import type * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"

const keyOf = (effect: object, suffix: string): string | undefined =>
  Object.keys(effect).find((key) => key.endsWith(suffix))

const successKey = keyOf(Effect.map(Effect.void, (value) => value), "/successCont")
const failureKey = keyOf(Effect.catchCause(Effect.void, () => Effect.void), "/failureCont")
const ensureKey = successKey?.replace(/\/successCont$/, "/ensureCont")

/** What a frame may use of the fiber running it. @internal */
export interface FiberInternals {
  readonly _stack: Array<unknown>
  interruptible: boolean
  succeedWith(value: unknown): unknown
}

const isInternals = (fiber: unknown): fiber is FiberInternals => {
  const f = fiber as Partial<FiberInternals>
  return Array.isArray(f._stack) && typeof f.succeedWith === "function" && typeof f.interruptible === "boolean"
}

/** The frame `Effect.uninterruptible` pushes to make the fiber interruptible again once its region ends. */
const restoreInterruptible: unknown = (() => {
  if (ensureKey === undefined) return undefined
  let found: unknown
  Effect.runSync(Effect.uninterruptible(Effect.withFiber((fiber) => {
    if (isInternals(fiber)) found = fiber._stack[fiber._stack.length - 1]
    return Effect.void
  })))
  return typeof (found as Record<string, unknown> | undefined)?.[ensureKey] === "function" ? found : undefined
})()

const available = successKey !== undefined && failureKey !== undefined && restoreInterruptible !== undefined
let enabled = available

/** Whether frames can be pushed (Effect's internals were found, and not turned off). @internal */
export const isEnabled = (): boolean => enabled

/** Turns the fast paths off or back on (for tests of the fallbacks). @internal */
export const setEnabled = (on: boolean): void => {
  enabled = on && available
}

/** The fiber's internals, when frames can be pushed onto it. @internal */
export const internalsOf = (fiber: unknown): FiberInternals | undefined =>
  enabled && isInternals(fiber) ? fiber : undefined

/** Pushes `frame` onto the fiber's stack: it sees the outcome of what the fiber runs next. @internal */
export const push = (fiber: FiberInternals, frame: object): void => {
  fiber._stack.push(frame)
}

/**
 * Makes the fiber uninterruptible until the effect a continuation returns
 * has run (as `Effect.onExitPrimitive` does for its finalizer); an
 * interruption that arrives meanwhile is delivered after it. @internal
 */
export const mask = (fiber: FiberInternals): void => {
  if (!fiber.interruptible) return
  fiber.interruptible = false
  fiber._stack.push(restoreInterruptible)
}

/** What a frame does with the outcome of what the fiber ran after it was pushed. @internal */
export interface Observer<F> {
  /** Called when the frame is popped, before `onExit` (e.g. `mask`). */
  readonly onPop?: ((frame: F, fiber: FiberInternals) => void) | undefined
  /**
   * Sees the outcome (`failure` undefined: a success); returns an effect to run before the outcome
   * is passed on, or `undefined` (the common case: the fiber takes no further step).
   */
  readonly onExit: (frame: F, failure: Cause.Cause<unknown> | undefined) => Effect.Effect<void> | undefined
  /** What to run instead of passing a failure on (after `onExit`), if anything. */
  readonly recover?: ((frame: F, cause: Cause.Cause<unknown>) => Effect.Effect<unknown, unknown, unknown> | undefined) | undefined
}

/**
 * Gives a class's instances Effect's continuation methods, so they can be
 * pushed as frames. Does nothing when the keys were not found (`isEnabled`
 * is then false, and callers never push). @internal
 */
export const defineFrame = <F extends object>(
  ctor: abstract new(...args: Array<never>) => F,
  observer: Observer<F>
): void => {
  if (successKey === undefined || failureKey === undefined || ensureKey === undefined) return
  const { onExit, onPop, recover } = observer
  Object.defineProperty(ctor.prototype, successKey, {
    value(this: F, value: unknown, fiber: FiberInternals) {
      const next = onExit(this, undefined)
      return next === undefined ? fiber.succeedWith(value) : Effect.as(next, value)
    }
  })
  Object.defineProperty(ctor.prototype, failureKey, {
    value(this: F, cause: Cause.Cause<unknown>) {
      const next = onExit(this, cause)
      const instead = recover?.(this, cause)
      const then = instead ?? Effect.failCause(cause)
      return next === undefined ? then : Effect.andThen(next, then)
    }
  })
  if (onPop !== undefined) {
    Object.defineProperty(ctor.prototype, ensureKey, {
      value(this: F, fiber: FiberInternals) {
        onPop(this, fiber)
      }
    })
  }
}
