import { assert, describe, it } from "@effect/vitest"
import * as Clock from "effect/Clock"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Metric from "effect/Metric"
import * as Option from "effect/Option"
import * as Result from "effect/Result"
import * as Schedule from "effect/Schedule"
import * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import * as SubscriptionRef from "effect/SubscriptionRef"
import { TestClock } from "effect/testing"
import * as CircuitBreaker from "../src/CircuitBreaker.ts"
import * as Fault from "../src/Fault.ts"
import * as ServerSet from "../src/ServerSet.ts"
import { CountWindow, TimeWindow } from "../src/internal/slidingWindow.ts"
import { InvalidBreakerOptions, InvalidPoolOptions } from "../src/PoolError.ts"
import { makeFakeDriver } from "./fakeDriver.ts"

class ServerDown {
  readonly _tag = "ServerDown"
  readonly message = "connection refused"
}
class BadPassword {
  readonly _tag = "BadPassword"
  readonly message = "invalid credentials"
}
const classify: Fault.Classifier = (error) =>
  error instanceof BadPassword ? Fault.make("authentication") : Fault.make("connection")

const fail = Effect.fail(new ServerDown())
const succeed = Effect.succeed("ok")

let endpoints = 0
/** A fresh endpoint name per breaker, so that metrics do not mix across tests. */
const endpoint = () => `ldap://test-${++endpoints}:389`

const make = (options: Partial<CircuitBreaker.Options> = {}) =>
  CircuitBreaker.make({
    endpoint: endpoint(),
    classify,
    openDuration: Schedule.exponential("1 second"),
    ...options
  })

const status = (breaker: CircuitBreaker.CircuitBreaker) =>
  Effect.map(SubscriptionRef.get(breaker.state), (s) => s.status)

const run = <A, E>(breaker: CircuitBreaker.CircuitBreaker, effect: Effect.Effect<A, E>, times = 1) =>
  Effect.forEach(Array.from({ length: times }), () => Effect.exit(breaker.protect(effect)), { discard: true })

const expectBreakerOpen = <A, E>(breaker: CircuitBreaker.CircuitBreaker, effect: Effect.Effect<A, E>) =>
  Effect.gen(function*() {
    const exit = yield* Effect.exit(breaker.protect(effect))
    assert.isTrue(Exit.isFailure(exit))
    const error = Exit.findErrorOption(exit)
    assert.isTrue(error._tag === "Some" && (error.value as { _tag?: string })._tag === "BreakerOpen")
    return (error as { value: CircuitBreaker.BreakerOpen }).value
  })

const counterValue = (id: string, attributes: Record<string, string>) =>
  Effect.map(Metric.snapshot, (snapshots) => {
    const found = snapshots.find((s) =>
      s.id === id && Object.entries(attributes).every(([k, v]) => s.attributes?.[k] === v)
    )
    return found === undefined ? 0 : Number((found.state as { count?: number; value?: number }).count ??
      (found.state as { value?: number }).value)
  })

describe("CircuitBreaker", () => {
  it.effect("opens after N consecutive server faults; a success resets the count", () =>
    Effect.gen(function*() {
      const breaker = yield* make({ consecutiveFailures: 3 })
      yield* run(breaker, fail, 2)
      yield* run(breaker, succeed)
      yield* run(breaker, fail, 2)
      assert.strictEqual(yield* status(breaker), "closed")
      yield* run(breaker, fail)
      const state = yield* SubscriptionRef.get(breaker.state)
      assert.strictEqual(state.status, "open")
      assert.strictEqual(state.reason, "3 consecutive server faults")
      assert.strictEqual(state.retryAt, 1000)
      assert.strictEqual(state.openings, 1)

      // Rejected at once, without running the effect.
      let ran = false
      const error = yield* expectBreakerOpen(breaker, Effect.sync(() => (ran = true)))
      assert.isFalse(ran)
      assert.strictEqual(error.endpoint, breaker.endpoint)
      assert.strictEqual(error.retryAt, 1000)
      assert.strictEqual(
        error.message,
        `circuit breaker for ${breaker.endpoint} is open after server faults; it lets a trial call through in 1s ` +
          "(at 1970-01-01T00:00:01.000Z); use another endpoint until then"
      )
    }))

  it.effect("opens on the failure rate once the window holds the minimum number of calls", () =>
    Effect.gen(function*() {
      const breaker = yield* make({
        consecutiveFailures: Infinity,
        failureRate: { threshold: 0.5 },
        minimumCalls: 4,
        window: CircuitBreaker.countWindow(4)
      })
      yield* run(breaker, fail)
      yield* run(breaker, succeed)
      yield* run(breaker, fail) // 2 of 3 failed, but fewer than 4 calls
      assert.strictEqual(yield* status(breaker), "closed")
      yield* run(breaker, succeed) // 2 of 4: 50%
      const state = yield* SubscriptionRef.get(breaker.state)
      assert.strictEqual(state.status, "open")
      assert.strictEqual(state.reason, "failure rate 50% ≥ 50% over 4 calls")
    }))

  it.effect("the count window forgets the oldest calls", () =>
    Effect.gen(function*() {
      const breaker = yield* make({
        consecutiveFailures: Infinity,
        failureRate: { threshold: 0.75 },
        minimumCalls: 4,
        window: CircuitBreaker.countWindow(4)
      })
      yield* run(breaker, fail, 2)
      yield* run(breaker, succeed, 4) // window: S S S S
      yield* run(breaker, fail, 2) // window: S S F F → 50%
      assert.strictEqual(yield* status(breaker), "closed")
      yield* run(breaker, fail) // S F F F → 75%
      assert.strictEqual(yield* status(breaker), "open")
    }))

  it.effect("the time window forgets calls older than its duration", () =>
    Effect.gen(function*() {
      const breaker = yield* make({
        consecutiveFailures: Infinity,
        failureRate: { threshold: 0.5 },
        minimumCalls: 3,
        window: CircuitBreaker.timeWindow("10 seconds")
      })
      yield* run(breaker, fail, 2)
      yield* TestClock.adjust("10 seconds") // both failures leave the window
      yield* run(breaker, succeed, 2)
      yield* run(breaker, fail) // 1 of 3
      assert.strictEqual(yield* status(breaker), "closed")
      yield* run(breaker, fail) // 2 of 4
      assert.strictEqual(yield* status(breaker), "open")
    }))

  it.effect("opens on the slow-call rate", () =>
    Effect.gen(function*() {
      const breaker = yield* make({
        consecutiveFailures: Infinity,
        slowCalls: { slowerThan: "1 second", threshold: 0.5 },
        minimumCalls: 4
      })
      const slow = (millis: number) =>
        Effect.gen(function*() {
          const fiber = yield* Effect.forkChild(breaker.protect(Effect.sleep(`${millis} millis`)))
          yield* TestClock.adjust(`${millis} millis`)
          yield* Fiber.join(fiber)
        })
      yield* slow(999)
      yield* slow(1500)
      yield* slow(10)
      assert.strictEqual(yield* status(breaker), "closed")
      yield* slow(1000) // 2 of 4 slow
      const state = yield* SubscriptionRef.get(breaker.state)
      assert.strictEqual(state.status, "open")
      assert.strictEqual(state.reason, "slow-call rate 50% ≥ 50% over 4 calls (slower than 1s)")
    }))

  it.effect("open → half-open after the schedule's delay → closed after N successful trials", () =>
    Effect.gen(function*() {
      const breaker = yield* make({ consecutiveFailures: 1, successesToClose: 2 })
      const changes = yield* Effect.forkChild(Stream.runCollect(Stream.take(SubscriptionRef.changes(breaker.state), 4)))
      yield* Effect.yieldNow
      yield* run(breaker, fail)
      assert.strictEqual(yield* status(breaker), "open")
      yield* TestClock.adjust("999 millis")
      assert.strictEqual(yield* status(breaker), "open")
      yield* TestClock.adjust("1 millis")
      assert.strictEqual(yield* status(breaker), "half-open")
      assert.strictEqual(yield* breaker.protect(succeed), "ok")
      assert.strictEqual(yield* status(breaker), "half-open")
      assert.strictEqual(yield* breaker.protect(succeed), "ok")
      const closed = yield* SubscriptionRef.get(breaker.state)
      assert.deepStrictEqual(closed, {
        endpoint: breaker.endpoint,
        status: "closed",
        since: 1000,
        retryAt: undefined,
        openings: 0,
        reason: undefined
      })
      const published = yield* Fiber.join(changes)
      assert.deepStrictEqual(published.map((s) => s.status), ["closed", "open", "half-open", "closed"])
      assert.strictEqual(
        yield* counterValue("tether_breaker_transitions_total", { endpoint: breaker.endpoint, from: "open", to: "half-open" }),
        1
      )
      assert.strictEqual(
        yield* counterValue("tether_breaker_state", { endpoint: breaker.endpoint, state: "closed" }),
        1
      )
      assert.strictEqual(
        yield* counterValue("tether_breaker_state", { endpoint: breaker.endpoint, state: "open" }),
        0
      )
    }))

  it.effect("a failed trial reopens it for the schedule's next, longer delay; closing starts the schedule over", () =>
    Effect.gen(function*() {
      const breaker = yield* make({ consecutiveFailures: 1 })
      yield* run(breaker, fail) // open at 0 for 1s
      yield* TestClock.adjust("1 second")
      yield* run(breaker, fail) // trial fails at 1000: open for 2s
      let state = yield* SubscriptionRef.get(breaker.state)
      assert.strictEqual(state.status, "open")
      assert.strictEqual(state.reason, "a half-open trial call failed")
      assert.strictEqual(state.openings, 2)
      assert.strictEqual(state.retryAt, 3000)
      yield* TestClock.adjust("1999 millis")
      assert.strictEqual(yield* status(breaker), "open")
      yield* TestClock.adjust("1 millis")
      yield* run(breaker, fail) // trial fails at 3000: open for 4s
      state = yield* SubscriptionRef.get(breaker.state)
      assert.strictEqual(state.retryAt, 7000)
      yield* TestClock.adjust("4 seconds")
      yield* run(breaker, succeed) // closes
      assert.strictEqual(yield* status(breaker), "closed")
      yield* run(breaker, fail) // opens again: back to the first delay
      state = yield* SubscriptionRef.get(breaker.state)
      assert.strictEqual(state.retryAt, 7000 + 1000)
      assert.strictEqual(state.openings, 1)
    }))

  it.effect("lets a bounded number of trial calls through; the others get BreakerOpen", () =>
    Effect.gen(function*() {
      const breaker = yield* make({ consecutiveFailures: 1, halfOpenTrials: 2, successesToClose: 2 })
      yield* run(breaker, fail)
      yield* TestClock.adjust("1 second")
      const gate = yield* Deferred.make<void>()
      const trial1 = yield* Effect.forkChild(breaker.protect(Deferred.await(gate)))
      const trial2 = yield* Effect.forkChild(breaker.protect(Deferred.await(gate)))
      yield* Effect.yieldNow
      const rejected = yield* expectBreakerOpen(breaker, succeed)
      assert.strictEqual(rejected.status, "half-open")
      assert.strictEqual(
        rejected.message,
        `circuit breaker for ${breaker.endpoint} is half-open and its trial calls are in progress; ` +
          "use another endpoint or retry shortly"
      )
      yield* Deferred.succeed(gate, undefined)
      yield* Fiber.join(trial1)
      yield* Fiber.join(trial2)
      assert.strictEqual(yield* status(breaker), "closed")
      assert.isAtLeast(yield* counterValue("tether_breaker_rejections_total", { endpoint: breaker.endpoint }), 1)
    }))

  it.effect("an interrupted trial frees its slot without counting", () =>
    Effect.gen(function*() {
      const breaker = yield* make({ consecutiveFailures: 1 })
      yield* run(breaker, fail)
      yield* TestClock.adjust("1 second")
      const trial = yield* Effect.forkChild(breaker.protect(Effect.never))
      yield* Effect.yieldNow
      yield* Fiber.interrupt(trial)
      assert.strictEqual(yield* status(breaker), "half-open")
      yield* run(breaker, succeed)
      assert.strictEqual(yield* status(breaker), "closed")
    }))

  it.effect("authentication failures never open it, and pass a half-open trial", () =>
    Effect.gen(function*() {
      const breaker = yield* make({
        consecutiveFailures: 2,
        failureRate: { threshold: 0.1 },
        minimumCalls: 2
      })
      yield* run(breaker, Effect.fail(new BadPassword()), 50)
      assert.strictEqual(yield* status(breaker), "closed")
      // and they reset the consecutive count
      yield* run(breaker, fail)
      yield* run(breaker, Effect.fail(new BadPassword()))
      yield* run(breaker, fail)
      yield* run(breaker, fail)
      assert.strictEqual(yield* status(breaker), "open")
      yield* TestClock.adjust("1 second")
      const exit = yield* Effect.exit(breaker.protect(Effect.fail(new BadPassword())))
      assert.isTrue(Exit.isFailure(exit)) // the caller still gets its error
      assert.strictEqual(yield* status(breaker), "closed")
    }))

  it.effect("a per-call classifier overrides the breaker's", () =>
    Effect.gen(function*() {
      const breaker = yield* make({ consecutiveFailures: 1 })
      yield* Effect.exit(breaker.protect(fail, () => Fault.make("semantic")))
      assert.strictEqual(yield* status(breaker), "closed")
      yield* Effect.exit(breaker.protect(fail))
      assert.strictEqual(yield* status(breaker), "open")
    }))

  it.effect("defects count as server faults, interruptions are not counted", () =>
    Effect.gen(function*() {
      const breaker = yield* make({ consecutiveFailures: 2 })
      yield* run(breaker, Effect.die(new Error("socket exploded")))
      const fiber = yield* Effect.forkChild(breaker.protect(Effect.never))
      yield* Effect.yieldNow
      yield* Fiber.interrupt(fiber)
      assert.strictEqual(yield* status(breaker), "closed")
      yield* run(breaker, Effect.die(new Error("socket exploded")))
      assert.strictEqual(yield* status(breaker), "open")
    }))

  it.effect("outcomes of calls started before it opened are ignored", () =>
    Effect.gen(function*() {
      const breaker = yield* make({ consecutiveFailures: 1, successesToClose: 1 })
      const gate = yield* Deferred.make<void>()
      const late = yield* Effect.forkChild(breaker.protect(Deferred.await(gate)))
      yield* Effect.yieldNow
      yield* run(breaker, fail)
      yield* TestClock.adjust("1 second")
      assert.strictEqual(yield* status(breaker), "half-open")
      yield* Deferred.succeed(gate, undefined)
      yield* Fiber.join(late)
      // the late success was not a trial: still half-open
      assert.strictEqual(yield* status(breaker), "half-open")
    }))

  it.effect("a schedule that ends keeps its last delay", () =>
    Effect.gen(function*() {
      const breaker = yield* make({
        consecutiveFailures: 1,
        openDuration: Schedule.exponential("1 second").pipe(Schedule.upTo({ times: 2 }))
      })
      yield* run(breaker, fail) // 1s
      yield* TestClock.adjust("1 second")
      yield* run(breaker, fail) // 2s
      yield* TestClock.adjust("2 seconds")
      yield* run(breaker, fail) // schedule done: 2s again
      const state = yield* SubscriptionRef.get(breaker.state)
      assert.strictEqual(state.retryAt, 3000 + 2000)
    }))

  it.effect("reset closes it by hand", () =>
    Effect.gen(function*() {
      const breaker = yield* make({ consecutiveFailures: 1 })
      yield* run(breaker, fail)
      assert.strictEqual(yield* breaker.status, "open")
      yield* breaker.reset
      assert.strictEqual(yield* breaker.status, "closed")
      assert.strictEqual(yield* breaker.protect(succeed), "ok")
    }))

  it.effect("the timer fiber half-opens it without any call, and subscribers see it", () =>
    Effect.gen(function*() {
      const breaker = yield* make({ consecutiveFailures: 1, openDuration: Schedule.spaced("30 seconds") })
      const changes = yield* Effect.forkChild(Stream.runCollect(Stream.take(SubscriptionRef.changes(breaker.state), 3)))
      yield* Effect.yieldNow
      yield* run(breaker, fail)
      yield* TestClock.adjust("29999 millis")
      assert.strictEqual(yield* status(breaker), "open")
      yield* TestClock.adjust("1 millis")
      // no call was made: the supervised timer did it
      const published = yield* Fiber.join(changes)
      assert.deepStrictEqual(published.map((s) => [s.status, s.since, s.retryAt]), [
        ["closed", 0, undefined],
        ["open", 0, 30000],
        ["half-open", 30000, undefined]
      ])
    }))

  it.effect("a call that arrives once the delay is over half-opens it even if the timer has not run", () => {
    // A clock whose sleeps never end: only the lazy check can half-open.
    let now = 0
    const frozenTimers: Clock.Clock = {
      currentTimeMillisUnsafe: () => now,
      currentTimeMillis: Effect.sync(() => now),
      currentTimeNanosUnsafe: () => BigInt(now) * 1_000_000n,
      currentTimeNanos: Effect.sync(() => BigInt(now) * 1_000_000n),
      monotonicTimeNanosUnsafe: () => BigInt(now) * 1_000_000n,
      monotonicTimeNanos: Effect.sync(() => BigInt(now) * 1_000_000n),
      sleep: () => Effect.never
    }
    return Effect.gen(function*() {
      const breaker = yield* make({ consecutiveFailures: 1, openDuration: Schedule.spaced("1 second") })
      yield* run(breaker, fail)
      now = 999
      const early = yield* expectBreakerOpen(breaker, succeed)
      assert.strictEqual(early.retryAt, 1000)
      now = 1000
      assert.strictEqual(yield* status(breaker), "open") // the timer never fired
      assert.strictEqual(yield* breaker.protect(succeed), "ok") // the trial, let through lazily
      assert.strictEqual(yield* status(breaker), "closed")
    }).pipe(Effect.provideService(Clock.Clock, frozenTimers))
  })

  it.effect("the timer fiber lives in the breaker's scope: closing it stops the timer", () =>
    Effect.gen(function*() {
      const scope = yield* Scope.make()
      const breaker = yield* make({ consecutiveFailures: 1 }).pipe(Scope.provide(scope))
      yield* run(breaker, fail)
      yield* Scope.close(scope, Exit.void)
      yield* TestClock.adjust("1 minute")
      assert.strictEqual(yield* status(breaker), "open")
    }))

  it.effect("a reset while open is not undone by the old timer", () =>
    Effect.gen(function*() {
      const breaker = yield* make({ consecutiveFailures: 1 })
      yield* run(breaker, fail)
      yield* breaker.reset
      yield* run(breaker, succeed)
      yield* TestClock.adjust("5 seconds")
      assert.strictEqual(yield* status(breaker), "closed")
      yield* run(breaker, fail) // opens again, for the schedule's first delay
      assert.strictEqual((yield* SubscriptionRef.get(breaker.state)).retryAt, 5000 + 1000)
    }))

  it.effect("explicit policies: consecutive failures and a failure rate over a time window", () =>
    Effect.gen(function*() {
      const breaker = yield* make({
        policies: [
          CircuitBreaker.consecutiveFailures(10),
          CircuitBreaker.failureRate({ threshold: 0.5, minimumCalls: 4, window: CircuitBreaker.timeWindow("10 seconds") })
        ]
      })
      yield* run(breaker, fail)
      yield* run(breaker, succeed, 2)
      assert.strictEqual(yield* status(breaker), "closed")
      yield* run(breaker, fail)
      assert.strictEqual((yield* SubscriptionRef.get(breaker.state)).reason, "failure rate 50% ≥ 50% over 4 calls")

      const never = yield* make({ policies: [] })
      yield* run(never, fail, 50)
      assert.strictEqual(yield* status(never), "closed")
    }))

  it.effect("a custom policy plugs in", () =>
    Effect.gen(function*() {
      // Opens on the third failure in all, successes or not.
      const thirdFailure: CircuitBreaker.Policy = {
        _tag: "ThirdFailure",
        check: () => undefined,
        timed: false,
        slowCallMillis: undefined,
        makeTracker: () => {
          let failures = 0
          return {
            record: (failure) => (failure && ++failures >= 3 ? "third failure" : undefined),
            reset: () => {
              failures = 0
            }
          }
        }
      }
      const breaker = yield* make({ policies: [thirdFailure] })
      yield* run(breaker, fail)
      yield* run(breaker, succeed)
      yield* run(breaker, fail)
      yield* run(breaker, succeed)
      assert.strictEqual(yield* status(breaker), "closed")
      yield* run(breaker, fail)
      assert.strictEqual((yield* SubscriptionRef.get(breaker.state)).reason, "third failure")
    }))

  const badOptions: ReadonlyArray<
    readonly [Partial<CircuitBreaker.Options>, option: string, value: unknown, allowed: string]
  > = [
    [{ consecutiveFailures: -1 }, "consecutiveFailures", -1, "a positive integer or Infinity"],
    [{ consecutiveFailures: 0 }, "consecutiveFailures", 0, "a positive integer or Infinity"],
    [{ consecutiveFailures: 2.5 }, "consecutiveFailures", 2.5, "a positive integer or Infinity"],
    [{ consecutiveFailures: NaN }, "consecutiveFailures", NaN, "a positive integer or Infinity"],
    [{ failureRate: { threshold: 50 } }, "failureRate.threshold", 50, "a share in (0, 1], e.g. 0.5 for 50%"],
    [{ failureRate: { threshold: 0 } }, "failureRate.threshold", 0, "a share in (0, 1], e.g. 0.5 for 50%"],
    [
      { slowCalls: { slowerThan: "1 second", threshold: -0.1 } },
      "slowCalls.threshold",
      -0.1,
      "a share in (0, 1], e.g. 0.5 for 50%"
    ],
    [{ slowCalls: { slowerThan: 0, threshold: 0.5 } }, "slowCalls.slowerThan", 0, "a positive finite duration"],
    [
      { failureRate: { threshold: 0.5 }, window: CircuitBreaker.countWindow(0) },
      "window.size",
      0,
      "a positive integer"
    ],
    [
      { failureRate: { threshold: 0.5 }, window: CircuitBreaker.timeWindow("10 millis") },
      "window.duration",
      "10 millis",
      "a finite duration of at least 1 second"
    ],
    [{ failureRate: { threshold: 0.5 }, minimumCalls: 0 }, "minimumCalls", 0, "a positive integer"],
    [{ minimumCalls: -3 }, "minimumCalls", -3, "a positive integer"],
    [{ halfOpenTrials: 0 }, "halfOpenTrials", 0, "a positive integer or Infinity"],
    [{ successesToClose: Infinity }, "successesToClose", Infinity, "a positive integer"],
    [
      { consecutiveFailures: 3, policies: [CircuitBreaker.consecutiveFailures(3)] },
      "consecutiveFailures",
      3,
      "nothing when `policies` is given (give either `policies` or the shorthand options)"
    ],
    [{ policies: [CircuitBreaker.consecutiveFailures(0)] }, "consecutiveFailures", 0, "a positive integer or Infinity"]
  ]

  it.effect("invalid options fail with InvalidBreakerOptions naming the option, the value and what is allowed", () =>
    Effect.gen(function*() {
      for (const [options, option, value, allowed] of badOptions) {
        const exit = yield* Effect.exit(make(options))
        assert.isTrue(Exit.isFailure(exit), `${option} = ${String(value)} was accepted`)
        assert.isTrue(Result.isFailure(Exit.findDefect(exit)), "reported as a defect")
        const error = Exit.findErrorOption(exit)
        assert.isTrue(Option.isSome(error))
        const e = (error as Option.Some<InvalidBreakerOptions>).value
        assert.instanceOf(e, InvalidBreakerOptions)
        assert.instanceOf(e, InvalidPoolOptions) // what ServerSet, PgClient and LdapClient already declare
        assert.strictEqual(e._tag, "InvalidPoolOptions")
        assert.strictEqual(e.component, "breaker")
        assert.strictEqual(e.option, option)
        assert.deepStrictEqual(e.value, value)
        assert.strictEqual(e.allowed, allowed)
        assert.include(e.message, `invalid option ${option}`)
        assert.include(e.message, allowed)
      }
    }))

  it.effect("ServerSet reports invalid breaker options through the error it already declares", () =>
    Effect.gen(function*() {
      const fake = makeFakeDriver()
      const error = yield* Effect.flip(ServerSet.make({
        name: "s",
        endpoints: ["ldap://a:389"],
        driver: fake.driver,
        health: false,
        breaker: { consecutiveFailures: -1 }
      }))
      assert.strictEqual(error._tag, "InvalidPoolOptions")
      assert.instanceOf(error, InvalidBreakerOptions)
      assert.include(error.message, "invalid option consecutiveFailures: got -1; expected a positive integer or Infinity")
    }))

  it.effect("valid edge values are accepted", () =>
    Effect.gen(function*() {
      yield* make({ consecutiveFailures: Infinity, halfOpenTrials: Infinity })
      yield* make({ failureRate: { threshold: 1 }, window: CircuitBreaker.timeWindow("1 second"), minimumCalls: 1 })
      yield* make({ slowCalls: { slowerThan: "1 millis", threshold: 1 }, window: CircuitBreaker.countWindow(1) })
    }))
})

describe("sliding windows", () => {
  it("CountWindow keeps the last N outcomes", () => {
    const w = new CountWindow(3)
    w.record(0, true, false)
    w.record(0, true, true)
    w.record(0, false, true)
    assert.deepStrictEqual([w.calls, w.failures, w.slow], [3, 2, 2])
    w.record(0, false, false) // evicts the first failure
    assert.deepStrictEqual([w.calls, w.failures, w.slow], [3, 1, 2])
    w.reset()
    assert.deepStrictEqual([w.calls, w.failures, w.slow], [0, 0, 0])
  })

  it("TimeWindow drops whole buckets as time passes", () => {
    const w = new TimeWindow(3000)
    w.record(0, true, false)
    w.record(1500, true, true)
    w.record(2999, false, false)
    assert.deepStrictEqual([w.calls, w.failures, w.slow], [3, 2, 1])
    w.advance(3000) // bucket 0 leaves
    assert.deepStrictEqual([w.calls, w.failures, w.slow], [2, 1, 1])
    w.advance(100_000) // everything leaves
    assert.deepStrictEqual([w.calls, w.failures, w.slow], [0, 0, 0])
    w.record(100_500, true, false)
    assert.deepStrictEqual([w.calls, w.failures, w.slow], [1, 1, 0])
  })
})
