/**
 * Statement deadlines run on Effect's Clock: under TestClock a deadline
 * expires only when the test moves the clock past it (at most one sweep tick
 * late), never before, and never by itself.
 */
import { describe, expect, it } from "@effect/vitest"
import { Clock, Effect } from "effect"
import { TestClock } from "effect/testing"
import * as fc from "fast-check"
import * as Deadlines from "../src/internal/deadlines.ts"

/** Lets promise reactions run (the sweep rejects in its own fiber). */
const settle = Effect.promise(() => new Promise<void>((resolve) => setImmediate(resolve)))

/** A promise that never settles, watched: whether the deadline rejected it. */
const watch = (deadlines: Deadlines.Deadlines, millis: number, now: () => number = () => 0) => {
  const state = { expired: false, at: -1, other: undefined as unknown }
  deadlines.bounded(new Promise<never>(() => undefined), millis).catch((cause) => {
    if (cause === Deadlines.TIMED_OUT) {
      state.expired = true
      state.at = now()
    } else state.other = cause
  })
  return state
}

describe("statement deadlines on the Clock", () => {
  it.effect("a hung statement fails when the TestClock passes its deadline, not before", () =>
    Effect.gen(function*() {
      const deadlines = yield* Deadlines.current
      const hung = watch(deadlines, 1_000)
      yield* TestClock.adjust("999 millis")
      yield* settle
      expect(hung.expired).toBe(false)
      yield* TestClock.adjust(`${Deadlines.TICK_MILLIS} millis`)
      yield* settle
      expect(hung.expired).toBe(true)
      expect(hung.other).toBeUndefined()
      expect(deadlines.pending()).toBe(0)
    }))

  it.effect("a statement that answers in time keeps its answer; its duration is read on the clock", () =>
    Effect.gen(function*() {
      const deadlines = yield* Deadlines.current
      let answer!: (value: string) => void
      const elapsed: Array<number> = []
      const result = deadlines.bounded(new Promise<string>((resolve) => (answer = resolve)), 1_000, (ms) => elapsed.push(ms))
      yield* TestClock.adjust("300 millis")
      answer("rows")
      expect(yield* Effect.promise(() => result)).toBe("rows")
      expect(elapsed).toEqual([300])
      expect(deadlines.pending()).toBe(0)
    }))

  it.effect("arm/disarm (PgSql's statement path): an armed deadline expires on the TestClock, not before; a disarmed one never, and disarm reads the elapsed time", () =>
    Effect.gen(function*() {
      const deadlines = yield* Deadlines.current
      let expired = 0
      deadlines.arm(1_000, () => expired++)
      const answered = deadlines.arm(1_000, () => expired += 100)
      yield* TestClock.adjust("300 millis")
      expect(deadlines.disarm(answered)).toBe(300)
      yield* TestClock.adjust("699 millis")
      yield* settle
      expect(expired).toBe(0)
      expect(deadlines.pending()).toBe(1)
      yield* TestClock.adjust(`${Deadlines.TICK_MILLIS} millis`)
      yield* settle
      expect(expired).toBe(1)
      expect(deadlines.pending()).toBe(0)
    }))

  it.effect("property: under random deadlines and clock steps, a deadline never expires early and at most one tick late", () =>
    Effect.promise(() =>
        fc.assert(
          fc.asyncProperty(
            // Some deadlines fall just after a sweep tick: expiring even 1 ms early is seen.
            fc.array(
              fc.oneof(fc.integer({ min: 1, max: 2_000 }), fc.integer({ min: 1, max: 39 }).map((k) => k * Deadlines.TICK_MILLIS + 1)),
              { minLength: 1, maxLength: 12 }
            ),
            fc.array(fc.integer({ min: 1, max: 400 }), { minLength: 1, maxLength: 20 }),
            async (limits, steps) => {
              const run = Effect.gen(function*() {
                const deadlines = yield* Deadlines.current
                const clock = yield* Clock.Clock
                const watched = limits.map((millis) => ({
                  millis,
                  state: watch(deadlines, millis, () => clock.currentTimeMillisUnsafe())
                }))
                let now = 0
                for (const step of [...steps, 2_000 + Deadlines.TICK_MILLIS]) {
                  yield* TestClock.adjust(`${step} millis`)
                  yield* settle
                  now += step
                  for (const { millis, state } of watched) {
                    expect(state.other).toBeUndefined()
                    if (now < millis) expect(state.expired).toBe(false)
                    if (now >= millis + Deadlines.TICK_MILLIS) expect(state.expired).toBe(true)
                  }
                }
                for (const { millis, state } of watched) {
                  // Expired on the clock at or after its deadline, less than one tick late.
                  expect(state.at).toBeGreaterThanOrEqual(millis)
                  expect(state.at).toBeLessThan(millis + Deadlines.TICK_MILLIS)
                }
                expect(deadlines.pending()).toBe(0)
              })
              await Effect.runPromise(run.pipe(Effect.provide(TestClock.layer())))
            }
          ),
          { numRuns: 40 }
        )
      ), 60_000)
})
