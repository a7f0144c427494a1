import { assert, describe, it } from "@effect/vitest"
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Schedule from "effect/Schedule"
import { TestClock } from "effect/testing"
import * as Balancer from "../src/Balancer.ts"
import * as CircuitBreaker from "../src/CircuitBreaker.ts"
import * as Fault from "../src/Fault.ts"
import { InvalidRetryOptions } from "../src/PoolError.ts"
import * as Retry from "../src/Retry.ts"

class DriverError {
  readonly _tag = "DriverError"
  constructor(readonly fault: Fault.Fault, readonly message = `driver error (${fault.kind})`) {}
}
const classify: Fault.Classifier = (error) =>
  error instanceof DriverError ? error.fault : Fault.make("unknown")

const refused = new DriverError(Fault.make("connection", { mayHaveReachedServer: false }))
const reset = new DriverError(Fault.make("connection", { mayHaveReachedServer: true }))
const badPassword = new DriverError(Fault.make("authentication"))
const noSuchObject = new DriverError(Fault.make("semantic"))

/** An operation that fails on the endpoints listed in `failures` (each entry once) and records its attempts. */
const recorder = (failures: Record<string, ReadonlyArray<DriverError>>) => {
  const attempts: Array<{ endpoint: string; at: number; attempt: number }> = []
  const remaining = Object.fromEntries(Object.entries(failures).map(([k, v]) => [k, [...v]]))
  const operation = (endpoint: string, attempt: number) =>
    Effect.gen(function*() {
      attempts.push({ endpoint, at: yield* Clock.currentTimeMillis, attempt })
      const next = remaining[endpoint]?.shift()
      if (next !== undefined) return yield* Effect.fail(next)
      return `result from ${endpoint}`
    })
  return { operation, attempts }
}

const noJitter = (options: Parameters<typeof Retry.backoff>[0] = {}) => Retry.backoff({ jitter: false, ...options })

describe("Retry.failover", () => {
  it.effect("retries a connection fault on another endpoint after the backoff delay", () =>
    Effect.gen(function*() {
      const balancer = yield* Balancer.make({
        strategy: "priority",
        endpoints: [{ id: "ldap://a", priority: 0 }, { id: "ldap://b", priority: 1 }]
      })
      const { operation, attempts } = recorder({ "ldap://a": [refused] })
      const marked: Array<string> = []
      const fiber = yield* Effect.forkChild(Retry.failover({
        operation,
        pick: ({ mode, avoid }) => balancer.pick(mode, { avoid }),
        classify,
        schedule: noJitter(),
        onRetryableFailure: ({ endpoint, fault }) =>
          Effect.sync(() => marked.push(`${endpoint}: ${fault.kind}`))
      }))
      yield* Effect.yieldNow
      assert.deepStrictEqual(attempts.map((a) => a.endpoint), ["ldap://a"])
      assert.deepStrictEqual(marked, ["ldap://a: connection"])
      yield* TestClock.adjust("99 millis")
      assert.strictEqual(attempts.length, 1)
      yield* TestClock.adjust("1 millis")
      assert.strictEqual(yield* Fiber.join(fiber), "result from ldap://b")
      assert.deepStrictEqual(attempts, [
        { endpoint: "ldap://a", at: 0, attempt: 1 },
        { endpoint: "ldap://b", at: 100, attempt: 2 }
      ])
    }))

  it.effect("never retries authentication or semantic failures", () =>
    Effect.gen(function*() {
      for (const error of [badPassword, noSuchObject]) {
        const { operation, attempts } = recorder({ a: [error] })
        const exit = yield* Effect.exit(Retry.failover({
          operation,
          pick: Effect.succeed("a"),
          classify,
          idempotent: true,
          schedule: noJitter()
        }))
        assert.deepStrictEqual(exit, Exit.fail(error))
        assert.strictEqual(attempts.length, 1)
      }
    }))

  it.effect("never retries an unknown fault", () =>
    Effect.gen(function*() {
      const { operation, attempts } = recorder({ a: [new DriverError(Fault.make("unknown"))] })
      const exit = yield* Effect.exit(Retry.failover({ operation, pick: Effect.succeed("a"), classify, idempotent: true }))
      assert.isTrue(Exit.isFailure(exit))
      assert.strictEqual(attempts.length, 1)
    }))

  it.effect("never replays a non-idempotent operation that may have reached the server", () =>
    Effect.gen(function*() {
      const { operation, attempts } = recorder({ a: [reset] })
      const exit = yield* Effect.exit(Retry.failover({
        operation,
        pick: Effect.succeed("a"),
        classify,
        mode: "write",
        schedule: noJitter()
      }))
      assert.deepStrictEqual(exit, Exit.fail(reset))
      assert.strictEqual(attempts.length, 1)

      // …but replays it when declared idempotent
      const idempotent = recorder({ a: [reset] })
      const fiber = yield* Effect.forkChild(Retry.failover({
        operation: idempotent.operation,
        pick: Effect.succeed("a"),
        classify,
        mode: "write",
        idempotent: true,
        schedule: noJitter()
      }))
      yield* TestClock.adjust("100 millis")
      assert.strictEqual(yield* Fiber.join(fiber), "result from a")
      assert.strictEqual(idempotent.attempts.length, 2)
    }))

  it.effect("a write that failed before reaching the server is retried", () =>
    Effect.gen(function*() {
      const { operation, attempts } = recorder({ p: [refused] })
      const fiber = yield* Effect.forkChild(Retry.failover({
        operation,
        pick: Effect.succeed("p"),
        classify,
        mode: "write",
        schedule: noJitter()
      }))
      yield* TestClock.adjust("100 millis")
      assert.strictEqual(yield* Fiber.join(fiber), "result from p")
      assert.strictEqual(attempts.length, 2)
    }))

  it.effect("respects max attempts and the exponential delays, then fails with the last error", () =>
    Effect.gen(function*() {
      const errors = [refused, refused, refused, new DriverError(Fault.make("overload"), "too busy")]
      const { operation, attempts } = recorder({ a: errors })
      const fiber = yield* Effect.forkChild(Retry.failover({
        operation,
        pick: Effect.succeed("a"),
        classify,
        schedule: noJitter({ base: "100 millis", maxAttempts: 4 })
      }))
      yield* TestClock.adjust("10 seconds")
      const exit = yield* Fiber.await(fiber)
      assert.deepStrictEqual(exit, Exit.fail(errors[3]))
      assert.deepStrictEqual(attempts.map((a) => a.at), [0, 100, 300, 700])
    }))

  it.effect("stops retrying once the elapsed-time bound is passed", () =>
    Effect.gen(function*() {
      const { operation, attempts } = recorder({ a: [refused, refused, refused, refused] })
      const fiber = yield* Effect.forkChild(Retry.failover({
        operation,
        pick: Effect.succeed("a"),
        classify,
        schedule: noJitter({ base: "100 millis", maxAttempts: 10, maxElapsed: "250 millis" })
      }))
      yield* TestClock.adjust("10 seconds")
      assert.isTrue(Exit.isFailure(yield* Fiber.await(fiber)))
      assert.deepStrictEqual(attempts.map((a) => a.at), [0, 100, 300])
    }))

  it.effect("the delays are capped by maxDelay", () =>
    Effect.gen(function*() {
      const { operation, attempts } = recorder({ a: [refused, refused, refused, refused] })
      const fiber = yield* Effect.forkChild(Retry.failover({
        operation,
        pick: Effect.succeed("a"),
        classify,
        schedule: noJitter({ base: "100 millis", maxDelay: "150 millis", maxAttempts: 5 })
      }))
      yield* TestClock.adjust("10 seconds")
      yield* Fiber.join(fiber)
      assert.deepStrictEqual(attempts.map((a) => a.at), [0, 100, 250, 400, 550])
    }))

  it.effect("waits out NoEndpointAvailable on the schedule", () =>
    Effect.gen(function*() {
      const balancer = yield* Balancer.make({ endpoints: [{ id: "p", role: "primary" }] })
      yield* balancer.setHealth("p", "unhealthy")
      const { operation } = recorder({})
      const fiber = yield* Effect.forkChild(Retry.failover({
        operation,
        pick: ({ mode }) => balancer.pick(mode),
        classify,
        mode: "write",
        schedule: noJitter()
      }))
      yield* TestClock.adjust("100 millis")
      yield* balancer.setHealth("p", "healthy") // the primary is back
      yield* TestClock.adjust("200 millis")
      assert.strictEqual(yield* Fiber.join(fiber), "result from p")

      // and fails with it when the schedule is exhausted
      yield* balancer.setHealth("p", "unhealthy")
      const exhausted = yield* Effect.forkChild(Retry.failover({
        operation,
        pick: ({ mode }) => balancer.pick(mode),
        classify,
        mode: "write",
        schedule: noJitter({ maxAttempts: 2 })
      }))
      yield* TestClock.adjust("1 second")
      const exit = yield* Fiber.await(exhausted)
      assert.isTrue(Exit.isFailure(exit))
      assert.strictEqual(
        (Exit.findErrorOption(exit) as { value: { _tag: string } }).value._tag,
        "NoEndpointAvailable"
      )
    }))

  it.effect("an open breaker is a fault that never reached the server: failover even for writes", () =>
    Effect.gen(function*() {
      const breakerA = yield* CircuitBreaker.make({ endpoint: "a", consecutiveFailures: 1, classify })
      yield* Effect.exit(breakerA.protect(Effect.fail(refused)))
      const picks = ["a", "b"]
      const fiber = yield* Effect.forkChild(Retry.failover({
        operation: (endpoint) =>
          endpoint === "a" ? breakerA.protect(Effect.succeed("from a")) : Effect.succeed(`from ${endpoint}`),
        pick: Effect.sync(() => picks.shift()!),
        classify,
        mode: "write",
        schedule: noJitter()
      }))
      yield* TestClock.adjust("100 millis")
      assert.strictEqual(yield* Fiber.join(fiber), "from b")
    }))

  it.effect("tells the picker the mode, the attempt and the endpoints to avoid", () =>
    Effect.gen(function*() {
      const contexts: Array<Retry.PickContext> = []
      const endpoints = ["a", "b", "c"]
      const { operation } = recorder({ a: [refused], b: [refused] })
      const fiber = yield* Effect.forkChild(Retry.failover({
        operation,
        pick: (context) =>
          Effect.sync(() => {
            contexts.push({ ...context, avoid: new Set(context.avoid) })
            return endpoints[context.attempt - 1]!
          }),
        classify,
        mode: "write",
        schedule: Schedule.spaced("1 second")
      }))
      yield* TestClock.adjust("2 seconds")
      assert.strictEqual(yield* Fiber.join(fiber), "result from c")
      assert.deepStrictEqual(contexts, [
        { mode: "write", attempt: 1, avoid: new Set<string>() },
        { mode: "write", attempt: 2, avoid: new Set(["a"]) },
        { mode: "write", attempt: 3, avoid: new Set(["a", "b"]) }
      ])
    }))

  it.effect("the default schedule makes 4 attempts with jittered exponential delays", () =>
    Effect.gen(function*() {
      const { operation, attempts } = recorder({ a: [refused, refused, refused, refused] })
      const fiber = yield* Effect.forkChild(Retry.failover({ operation, pick: Effect.succeed("a"), classify }))
      yield* TestClock.adjust("10 seconds")
      assert.isTrue(Exit.isFailure(yield* Fiber.await(fiber)))
      assert.strictEqual(attempts.length, 4)
      const gaps = attempts.slice(1).map((a, i) => a.at - attempts[i]!.at)
      gaps.forEach((gap, i) => {
        const nominal = 100 * 2 ** i
        assert.isAtLeast(gap, nominal * 0.8 - 1)
        assert.isAtMost(gap, nominal * 1.2 + 1)
      })
    }))

  it.effect("a BreakerOpen is recognised by its class: a look-alike object is left to the classifier", () =>
    Effect.gen(function*() {
      const lookAlike = { _tag: "BreakerOpen", message: "not really" }
      const { attempts } = recorder({})
      const exit = yield* Effect.exit(Retry.failover({
        operation: (endpoint, attempt) => {
          attempts.push({ endpoint, at: 0, attempt })
          return Effect.fail(lookAlike)
        },
        pick: Effect.succeed("a"),
        classify, // an unknown fault: never retried
        mode: "write",
        schedule: noJitter()
      }))
      assert.deepStrictEqual(exit, Exit.fail(lookAlike))
      assert.strictEqual(attempts.length, 1)
    }))
})

describe("Retry.makeBackoff", () => {
  const bad: ReadonlyArray<readonly [Retry.BackoffOptions, option: string, value: unknown, allowed: string]> = [
    [{ maxAttempts: 0 }, "maxAttempts", 0, "a positive integer (attempts in all, the first included) or Infinity"],
    [{ maxAttempts: -2 }, "maxAttempts", -2, "a positive integer (attempts in all, the first included) or Infinity"],
    [{ maxAttempts: 1.5 }, "maxAttempts", 1.5, "a positive integer (attempts in all, the first included) or Infinity"],
    [{ factor: 0.5 }, "factor", 0.5, "a finite number ≥ 1"],
    [{ factor: NaN }, "factor", NaN, "a finite number ≥ 1"],
    [{ base: -5 }, "base", -5, "a finite duration ≥ 0"],
    [{ base: "Infinity" }, "base", "Infinity", "a finite duration ≥ 0"],
    [{ maxDelay: 0 }, "maxDelay", 0, "a duration > 0"],
    [{ maxElapsed: -1 }, "maxElapsed", -1, "a duration ≥ 0"]
  ]

  it.effect("invalid options fail with InvalidRetryOptions naming the option, the value and what is allowed", () =>
    Effect.gen(function*() {
      for (const [options, option, value, allowed] of bad) {
        const error = yield* Effect.flip(Retry.makeBackoff(options))
        assert.instanceOf(error, InvalidRetryOptions)
        assert.strictEqual(error._tag, "InvalidRetryOptions")
        assert.strictEqual(error.option, option)
        assert.deepStrictEqual(error.value, value)
        assert.strictEqual(error.allowed, allowed)
        assert.include(error.message, `invalid option ${option}`)
      }
    }))

  it.effect("valid options give the documented schedule", () =>
    Effect.gen(function*() {
      const schedule = yield* Retry.makeBackoff({ base: "100 millis", maxAttempts: 3, jitter: false })
      const { operation, attempts } = recorder({ a: [refused, refused, refused] })
      const fiber = yield* Effect.forkChild(Retry.failover({ operation, pick: Effect.succeed("a"), classify, schedule }))
      yield* TestClock.adjust("10 seconds")
      assert.isTrue(Exit.isFailure(yield* Fiber.await(fiber)))
      assert.deepStrictEqual(attempts.map((a) => a.at), [0, 100, 300])
    }))

  it.effect("backoff never throws: an invalid option falls back to its default", () =>
    Effect.gen(function*() {
      const schedule = Retry.backoff({ base: "100 millis", maxAttempts: 0, jitter: false }) // 0 → default 4
      const { operation, attempts } = recorder({ a: [refused, refused, refused, refused] })
      const fiber = yield* Effect.forkChild(Retry.failover({ operation, pick: Effect.succeed("a"), classify, schedule }))
      yield* TestClock.adjust("10 seconds")
      assert.isTrue(Exit.isFailure(yield* Fiber.await(fiber)))
      assert.deepStrictEqual(attempts.map((a) => a.at), [0, 100, 300, 700])
    }))
})
