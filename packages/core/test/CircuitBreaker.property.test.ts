import { assert, describe, it } from "@effect/vitest"
import { Effect, Exit, Fiber, References, Schedule, SubscriptionRef } from "effect"
import { TestClock } from "effect/testing"
import * as fc from "fast-check"
import * as CircuitBreaker from "../src/CircuitBreaker.ts"
import * as Fault from "../src/Fault.ts"
import * as Frame from "../src/internal/breaker/frame.ts"

/**
 * The breaker against a reference model written from its documentation:
 * random configurations, and random sequences of calls (success, server
 * fault, authentication failure, each taking some time) and clock advances.
 * After every step the breaker's published state must equal the model's.
 */

type Kind = "success" | "fault" | "auth"
type Op =
  | { readonly _tag: "Call"; readonly kind: Kind; readonly millis: number }
  | { readonly _tag: "Advance"; readonly millis: number }

interface Config {
  readonly consecutiveFailures: number
  readonly failureRate: { readonly threshold: number; readonly size: number; readonly minimumCalls: number } | undefined
  readonly slowerThan: number | undefined
  readonly successesToClose: number
  readonly baseDelay: number
}

const config: fc.Arbitrary<Config> = fc.record({
  consecutiveFailures: fc.oneof(fc.integer({ min: 1, max: 4 }), fc.constant(Infinity)),
  failureRate: fc.option(
    fc.record({
      threshold: fc.constantFrom(0.25, 0.5, 0.75, 1),
      size: fc.integer({ min: 1, max: 6 }),
      minimumCalls: fc.integer({ min: 1, max: 6 })
    }),
    { nil: undefined }
  ),
  slowerThan: fc.option(fc.constantFrom(100, 500), { nil: undefined }),
  successesToClose: fc.integer({ min: 1, max: 3 }),
  baseDelay: fc.constantFrom(200, 1000)
})

const op: fc.Arbitrary<Op> = fc.oneof(
  { weight: 4, arbitrary: fc.record({ _tag: fc.constant("Call" as const), kind: fc.constantFrom<Kind>("success", "fault", "auth"), millis: fc.constantFrom(0, 0, 50, 150, 600) }) },
  { weight: 1, arbitrary: fc.record({ _tag: fc.constant("Advance" as const), millis: fc.constantFrom(50, 199, 200, 1000, 4000) }) }
)

interface Observed {
  readonly status: CircuitBreaker.Status
  readonly openings: number
  readonly retryAt: number | undefined
}

/** The reference model: sequential calls, plain numbers, no Effect. */
class Model {
  now = 0
  status: CircuitBreaker.Status = "closed"
  openings = 0
  until = 0
  successes = 0
  consecutive = 0
  window: Array<boolean> = []
  windowSlow: Array<boolean> = []

  constructor(readonly c: Config) {}

  observed(): Observed {
    return { status: this.status, openings: this.openings, retryAt: this.status === "open" ? this.until : undefined }
  }

  private forget() {
    this.consecutive = 0
    this.window = []
    this.windowSlow = []
    this.successes = 0
  }

  private open() {
    this.openings++
    // Schedule.exponential(base): base · 2^(n-1) for the n-th opening since closed.
    this.until = this.now + this.c.baseDelay * 2 ** (this.openings - 1)
    this.status = "open"
    this.forget()
  }

  /** Time passes: the timer half-opens it when due. */
  advance(millis: number) {
    this.now += millis
    if (this.status === "open" && this.now >= this.until) {
      this.status = "half-open"
      this.forget()
    }
  }

  call(kind: Kind, millis: number): "rejected" | "ran" {
    if (this.status === "open") {
      this.advance(millis)
      return "rejected"
    }
    this.now += millis
    const failure = kind === "fault"
    const slow = this.c.slowerThan !== undefined && millis >= this.c.slowerThan
    if (this.status === "half-open") {
      if (failure || slow) return this.open(), "ran"
      if (++this.successes >= this.c.successesToClose) {
        this.status = "closed"
        this.openings = 0
        this.forget()
      }
      return "ran"
    }
    this.consecutive = failure ? this.consecutive + 1 : 0
    if (this.consecutive >= this.c.consecutiveFailures) return this.open(), "ran"
    const rate = this.c.failureRate
    // Each rate policy has a count window of the same size.
    const windowSize = rate?.size ?? 100
    const minimumCalls = rate?.minimumCalls ?? 20
    if (rate !== undefined) {
      this.window.push(failure)
      if (this.window.length > windowSize) this.window.shift()
      const failures = this.window.filter(Boolean).length
      if (failures > 0 && this.window.length >= minimumCalls && failures / this.window.length >= rate.threshold) {
        return this.open(), "ran"
      }
    }
    if (this.c.slowerThan !== undefined) {
      this.windowSlow.push(slow)
      if (this.windowSlow.length > windowSize) this.windowSlow.shift()
      const slowCalls = this.windowSlow.filter(Boolean).length
      // The slow-call policy's threshold is fixed at 50% in these runs.
      if (slowCalls > 0 && this.windowSlow.length >= minimumCalls && slowCalls / this.windowSlow.length >= 0.5) {
        return this.open(), "ran"
      }
    }
    return "ran"
  }
}

class ServerDown {
  readonly _tag = "ServerDown"
}
class BadPassword {
  readonly _tag = "BadPassword"
}
const classify: Fault.Classifier = (error) =>
  error instanceof BadPassword ? Fault.make("authentication") : Fault.make("connection")

const body = (kind: Kind, millis: number) => {
  const outcome = kind === "success"
    ? Effect.succeed("ok")
    : Effect.fail(kind === "fault" ? new ServerDown() : new BadPassword())
  return millis === 0 ? outcome : Effect.andThen(Effect.sleep(`${millis} millis`), outcome)
}

const check = (c: Config, ops: ReadonlyArray<Op>) =>
  Effect.gen(function*() {
    const window = c.failureRate === undefined && c.slowerThan === undefined
      ? undefined
      : CircuitBreaker.countWindow(c.failureRate?.size ?? 100)
    const breaker = yield* CircuitBreaker.make({
      endpoint: "ldap://model",
      classify,
      consecutiveFailures: c.consecutiveFailures,
      failureRate: c.failureRate === undefined ? undefined : { threshold: c.failureRate.threshold },
      slowCalls: c.slowerThan === undefined ? undefined : { slowerThan: c.slowerThan, threshold: 0.5 },
      minimumCalls: c.failureRate?.minimumCalls,
      window,
      successesToClose: c.successesToClose,
      openDuration: Schedule.exponential(`${c.baseDelay} millis`)
    })
    const model = new Model(c)
    const history: Array<string> = []
    for (const o of ops) {
      let ran: boolean | undefined
      if (o._tag === "Advance") {
        yield* TestClock.adjust(`${o.millis} millis`)
        model.advance(o.millis)
      } else {
        let started = false
        const fiber = yield* Effect.forkChild(
          Effect.exit(breaker.protect(Effect.andThen(Effect.sync(() => (started = true)), body(o.kind, o.millis))))
        )
        yield* Effect.yieldNow
        if (o.millis > 0) yield* TestClock.adjust(`${o.millis} millis`)
        yield* Fiber.await(fiber)
        ran = started
        const expected = model.call(o.kind, o.millis)
        if ((expected === "ran") !== ran) {
          return [...history, `${JSON.stringify(o)}: model ${expected}, breaker ${ran ? "ran it" : "rejected it"}`]
        }
      }
      const state = yield* SubscriptionRef.get(breaker.state)
      const actual: Observed = { status: state.status, openings: state.openings, retryAt: state.retryAt }
      history.push(`${JSON.stringify(o)} → ${JSON.stringify(actual)}`)
      const expected = model.observed()
      if (JSON.stringify(actual) !== JSON.stringify(expected)) {
        return [...history, `expected ${JSON.stringify(expected)} at t=${model.now}`]
      }
    }
    return []
  })

describe("CircuitBreaker properties", () => {
  it("the closed-state fast path (a frame on the fiber's stack) is available with this Effect version", () => {
    assert.isTrue(Frame.isEnabled(), "Effect's continuation keys were not found: the breaker runs on its slower fallback")
  })

  for (const fastPath of [true, false]) {
    it.effect(`its state always equals the reference model's, under random calls, outcomes, durations and clock advances (${fastPath ? "fast path" : "onExit fallback"})`, () =>
      Effect.acquireUseRelease(
        Effect.sync(() => Frame.setEnabled(fastPath)),
        () => Effect.promise(() =>
      fc.assert(
        fc.asyncProperty(config, fc.array(op, { minLength: 1, maxLength: 60 }), (c, ops) =>
          Effect.runPromise(check(c, ops).pipe(
            Effect.scoped,
            Effect.provide(TestClock.layer()),
            Effect.provideService(References.MinimumLogLevel, "None")
          )).then((failure) => {
            assert.deepStrictEqual(failure, [], failure.join("\n"))
          })),
        { numRuns: 200 }
      )
    ),
        () => Effect.sync(() => Frame.setEnabled(true))
      ))
  }

  it.effect("an interrupted call never counts and never leaks a trial slot", () =>
    Effect.gen(function*() {
      const breaker = yield* CircuitBreaker.make({
        endpoint: "ldap://model",
        classify,
        consecutiveFailures: 1,
        openDuration: Schedule.spaced("1 second")
      })
      yield* Effect.exit(breaker.protect(Effect.fail(new ServerDown())))
      yield* TestClock.adjust("1 second")
      for (let i = 0; i < 20; i++) {
        const fiber = yield* Effect.forkChild(breaker.protect(Effect.never))
        yield* Effect.yieldNow
        yield* Fiber.interrupt(fiber)
        assert.strictEqual(yield* breaker.status, "half-open")
      }
      assert.deepStrictEqual(yield* Effect.exit(breaker.protect(Effect.succeed(1))), Exit.succeed(1))
      assert.strictEqual(yield* breaker.status, "closed")
    }))
})
