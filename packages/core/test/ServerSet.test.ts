import { assert, describe, it } from "@effect/vitest"
import { ServerSet } from "@tether/core"
import { Deferred, Effect, Fiber, Logger, Metric, Schedule } from "effect"
import type { Driver } from "@tether/core"
import { TestClock } from "effect/testing"
import { FakeError, makeFakeDriver } from "./fakeDriver.ts"

const A = "fake://a:1"
const B = "fake://b:1"
const C = "fake://c:1"

const count = (calls: ReadonlyArray<string>) => {
  const counts: Record<string, number> = {}
  for (const c of calls) counts[c] = (counts[c] ?? 0) + 1
  return counts
}

const settle = Effect.forEach(Array.from({ length: 50 }), () => Effect.yieldNow, { discard: true })

describe("ServerSet", () => {
  it.effect("spreads work by weight across healthy endpoints", () =>
    Effect.gen(function*() {
      const fake = makeFakeDriver()
      const set = yield* ServerSet.make({
        name: "s",
        endpoints: [{ url: A, weight: 3 }, B, C],
        driver: fake.driver,
        health: { interval: "1 second" }
      })
      yield* settle
      for (let i = 0; i < 50; i++) yield* set.as().use((c) => fake.operation(c))
      assert.deepStrictEqual(count(fake.calls), { [A]: 30, [B]: 10, [C]: 10 })
    }))

  it.effect("OperationObserver hears every use once: the endpoint of its last attempt, its operation and outcome; unset, nothing", () =>
    Effect.gen(function*() {
      const fake = makeFakeDriver()
      const set = yield* ServerSet.make({
        name: "observed",
        endpoints: [A, B],
        driver: fake.driver,
        strategy: "round-robin",
        health: false,
        retry: { schedule: Schedule.recurs(3) }
      })
      const heard: Array<ServerSet.Observation> = []
      const observed = <X, E>(effect: Effect.Effect<X, E>) =>
        Effect.provideService(effect, ServerSet.OperationObserver, (o) => heard.push(o))
      yield* set.as().use((c) => fake.operation(c))
      assert.strictEqual(heard.length, 0)
      yield* observed(set.as().use((c) => fake.operation(c), { operation: "search" }))
      fake.conditions.set(A, "down")
      for (let i = 0; i < 4; i++) yield* observed(set.as().use((c) => fake.operation(c), { idempotent: true }))
      yield* Effect.flip(observed(set.as().use((c) => Effect.fail(new FakeError({ kind: "semantic", endpoint: c.endpoint })))))
      assert.strictEqual(heard.length, 6)
      assert.deepStrictEqual(heard.map((o) => o.set), Array(6).fill("observed"))
      assert.strictEqual(heard[0]!.operation, "search")
      assert.strictEqual(heard[1]!.operation, "use")
      // Failed over from the dead endpoint: the observation names the one that answered.
      assert.deepStrictEqual(heard.slice(1, 5).map((o) => `${o.endpoint} ${o.outcome}`), Array(4).fill(`${B} success`))
      assert.strictEqual(heard[5]!.outcome, "failure")
      assert.isTrue(heard.every((o) => o.seconds >= 0))
    }))

  it.effect("fails reads over from a dead endpoint and stops routing to it; traffic returns when it recovers", () =>
    Effect.gen(function*() {
      const fake = makeFakeDriver()
      const set = yield* ServerSet.make({
        name: "s",
        endpoints: [A, B, C],
        driver: fake.driver,
        strategy: "round-robin",
        health: { interval: "250 millis" },
        retry: { schedule: Schedule.recurs(3) }
      })
      yield* settle
      yield* Effect.forEach([1, 2, 3], () => set.as().use((c) => fake.operation(c)), { discard: true })
      fake.conditions.set(A, "down")
      fake.calls.length = 0
      // Every read succeeds, with retries on the surviving endpoints.
      const results = yield* Effect.forEach(
        Array.from({ length: 30 }),
        () => set.as().use((c) => fake.operation(c), { idempotent: true })
      )
      assert.isTrue(results.every((r) => r === B || r === C))
      const routedToA = fake.calls.filter((c) => c === A).length
      assert.isAtMost(routedToA, 1, "the first failure marks A; no more work goes there")
      yield* TestClock.adjust("500 millis")
      const status = yield* set.status
      assert.strictEqual(status.endpoints.find((e) => e.id === A)!.health, "unhealthy")
      fake.conditions.set(A, "up")
      yield* TestClock.adjust("500 millis")
      fake.calls.length = 0
      yield* Effect.forEach(Array.from({ length: 9 }), () => set.as().use((c) => fake.operation(c)), { discard: true })
      assert.strictEqual(count(fake.calls)[A], 3, "A is back in rotation")
    }))

  it.effect("never replays a non-idempotent operation that may have reached the server", () =>
    Effect.gen(function*() {
      const fake = makeFakeDriver()
      const set = yield* ServerSet.make({
        name: "s",
        endpoints: [A, B],
        driver: fake.driver,
        health: false,
        retry: { schedule: Schedule.recurs(3) }
      })
      // Both endpoints get a pooled connection, then A fails mid-operation (a reset).
      yield* set.as().use((c) => fake.operation(c))
      yield* set.as().use((c) => fake.operation(c))
      fake.conditions.set(A, "down")
      fake.calls.length = 0
      const outcomes = yield* Effect.forEach([1, 2], () => Effect.result(set.as().use((c) => fake.operation(c))))
      assert.deepStrictEqual(outcomes.map((o) => o._tag), ["Failure", "Success"])
      assert.deepStrictEqual(fake.calls, [A, B], "the failed write on A was not replayed anywhere")
      // Declared idempotent, the same failure is retried on B.
      fake.calls.length = 0
      const retried = yield* set.as().use((c) => fake.operation(c), { idempotent: true })
      assert.strictEqual(retried, B)
    }))

  it.effect("writes go only to endpoints whose role accepts them", () =>
    Effect.gen(function*() {
      const fake = makeFakeDriver()
      const set = yield* ServerSet.make({
        name: "s",
        endpoints: [{ url: A, role: "primary" }, { url: B, role: "replica" }, { url: C, role: "replica" }],
        driver: fake.driver,
        health: false,
        retry: { schedule: Schedule.recurs(3) }
      })
      for (let i = 0; i < 10; i++) yield* set.as().use((c) => fake.operation(c), { mode: "write" })
      assert.deepStrictEqual(count(fake.calls), { [A]: 10 })
      fake.conditions.set(A, "down")
      const error = yield* Effect.flip(set.as().use((c) => fake.operation(c), { mode: "write", idempotent: true }))
      assert.include(["FakeError", "NoEndpointAvailable"], error._tag)
      assert.notInclude(fake.calls.slice(10), B)
      assert.notInclude(fake.calls.slice(10), C)
    }))

  it.effect("a busy endpoint's breaker opens, traffic moves away, and half-open trials bring it back", () =>
    Effect.gen(function*() {
      const fake = makeFakeDriver()
      const set = yield* ServerSet.make({
        name: "s",
        endpoints: [A, B],
        driver: fake.driver,
        strategy: "round-robin",
        health: false,
        breaker: { consecutiveFailures: 3, openDuration: Schedule.spaced("10 seconds") },
        retry: { schedule: Schedule.recurs(2) }
      })
      fake.conditions.set(A, "busy")
      const results = yield* Effect.forEach(Array.from({ length: 12 }), () => set.as().use((c) => fake.operation(c)))
      assert.isTrue(results.every((r) => r === B), "overload is retried elsewhere")
      const status = yield* set.status
      assert.strictEqual(status.endpoints.find((e) => e.id === A)!.breaker!.status, "open")
      const tries = fake.calls.filter((c) => c === A).length
      assert.strictEqual(tries, 3, "no more calls to A once its breaker opened")
      fake.conditions.set(A, "up")
      yield* TestClock.adjust("11 seconds")
      fake.calls.length = 0
      yield* Effect.forEach(Array.from({ length: 6 }), () => set.as().use((c) => fake.operation(c)), { discard: true })
      assert.isAtLeast(count(fake.calls)[A] ?? 0, 2, "the trial succeeded and A takes traffic again")
      assert.strictEqual((yield* set.status).endpoints.find((e) => e.id === A)!.breaker!.status, "closed")
    }))

  it.effect("authentication failures are returned at once: no retry, no breaker", () =>
    Effect.gen(function*() {
      const fake = makeFakeDriver()
      const set = yield* ServerSet.make({
        name: "s",
        endpoints: [A, B],
        driver: fake.driver,
        health: false,
        breaker: { consecutiveFailures: 1 }
      })
      let attempts = 0
      for (let i = 0; i < 4; i++) {
        const error = yield* Effect.flip(
          set.as().use((c) => Effect.suspend(() => {
            attempts++
            return Effect.fail(new FakeError({ kind: "auth", endpoint: c.endpoint }))
          }), { idempotent: true })
        )
        assert.strictEqual(error._tag, "FakeError")
      }
      assert.strictEqual(attempts, 4)
      const status = yield* set.status
      assert.isTrue(status.endpoints.every((e) => e.breaker!.status === "closed"))
    }))

  it.effect("with every endpoint down, fails with NoEndpointAvailable naming why each was excluded", () =>
    Effect.gen(function*() {
      const fake = makeFakeDriver()
      fake.conditions.set(A, "down")
      fake.conditions.set(B, "down")
      const set = yield* ServerSet.make({
        name: "s",
        endpoints: [A, B],
        driver: fake.driver,
        health: { interval: "1 second" },
        retry: { schedule: Schedule.recurs(1) }
      })
      yield* TestClock.adjust("100 millis")
      const error = yield* Effect.flip(set.as().use((c) => fake.operation(c), { idempotent: true }))
      assert.strictEqual(error._tag, "NoEndpointAvailable")
      assert.include(error.message, "fake://a:1: unhealthy")
      assert.include(error.message, "fake://b:1: unhealthy")
    }))

  it.effect("hot reconfiguration: an added endpoint takes traffic; a removed one finishes its work first", () =>
    Effect.gen(function*() {
      const fake = makeFakeDriver()
      const set = yield* ServerSet.make({
        name: "s",
        endpoints: [A, B],
        driver: fake.driver,
        strategy: "round-robin",
        health: false
      })
      yield* set.add(C)
      for (let i = 0; i < 6; i++) yield* set.as().use((c) => fake.operation(c))
      assert.deepStrictEqual(count(fake.calls), { [A]: 2, [B]: 2, [C]: 2 })
      // Work in flight on B …
      const slow = yield* Effect.forkChild(set.as().use((c) => fake.operation(c, 5_000)))
      yield* settle
      const slowEndpoint = fake.calls[fake.calls.length - 1]
      const removing = yield* Effect.forkChild(set.remove(slowEndpoint!))
      yield* settle
      fake.calls.length = 0
      for (let i = 0; i < 6; i++) yield* set.as().use((c) => fake.operation(c))
      assert.notInclude(fake.calls, slowEndpoint, "no new work for a removed endpoint")
      yield* TestClock.adjust("5 seconds")
      assert.strictEqual(yield* Fiber.join(slow), slowEndpoint, "work in flight finished")
      yield* Fiber.join(removing)
      assert.deepStrictEqual((yield* set.endpoints).map((e) => e.id).includes(slowEndpoint!), false)
      const duplicate = yield* Effect.flip(set.add((yield* set.endpoints)[0]!.url))
      assert.strictEqual(duplicate._tag, "InvalidEndpoint")
    }))

  it.effect("hedged reads: a slow endpoint's read is also sent elsewhere and the first answer wins", () =>
    Effect.gen(function*() {
      const fake = makeFakeDriver()
      const set = yield* ServerSet.make({
        name: "s",
        endpoints: [A, B],
        driver: fake.driver,
        strategy: "round-robin",
        health: false,
        hedge: { delay: "100 millis" }
      })
      const latency = new Map([[A, 2_000], [B, 10]])
      const fiber = yield* Effect.forkChild(
        set.as().use((c) => fake.operation(c, latency.get(c.endpoint)!), { idempotent: true })
      )
      yield* TestClock.adjust("200 millis")
      assert.strictEqual(yield* Fiber.join(fiber), B)
      const status = yield* set.status
      assert.strictEqual(status.endpoints.find((e) => e.id === A)!.pool.inUse, 0, "the loser was interrupted")
    }))

  it.effect("counts requests per endpoint and outcome in tether_serverset_requests_total", () =>
    Effect.gen(function*() {
      const fake = makeFakeDriver()
      const set = yield* ServerSet.make({ name: "metrics", endpoints: [A], driver: fake.driver, health: false })
      for (let i = 0; i < 5; i++) yield* set.as().use((c) => fake.operation(c))
      yield* Effect.flip(set.as().use((c) => Effect.fail(new FakeError({ kind: "semantic", endpoint: c.endpoint }))))
      yield* TestClock.adjust("1 second")
      const series = (yield* Metric.snapshot).filter((m) =>
        m.id === "tether_serverset_requests_total" && m.attributes?.["set"] === "metrics"
      )
      const count = (outcome: string) =>
        (series.find((m) => m.attributes?.["outcome"] === outcome)?.state as { count?: number } | undefined)?.count
      assert.strictEqual(count("success"), 5)
      assert.strictEqual(count("failure"), 1)
    }))

  it.effect("rejects bad endpoints with a typed error naming the field", () =>
    Effect.gen(function*() {
      const fake = makeFakeDriver()
      const error = yield* Effect.flip(
        ServerSet.make({ name: "s", endpoints: ["ldap//nope"], driver: fake.driver })
      )
      assert.strictEqual(error._tag, "InvalidEndpoint")
      assert.include(error.message, "url")
    }))

  describe("fencing", () => {
    /** The fake driver with probes that report what `probes` says for each endpoint. */
    const withProbes = (fake: ReturnType<typeof makeFakeDriver>, probes: Map<string, Driver.Probe>) => ({
      ...fake.driver,
      probe: (endpoint: { readonly url: string }) =>
        Effect.suspend(() =>
          fake.conditions.get(endpoint.url) === "down"
            ? Effect.fail(new FakeError({ kind: "refused", endpoint: endpoint.url }))
            : Effect.succeed(probes.get(endpoint.url) ?? {})
        )
    })

    it.effect("two primaries: writes go only to the newest timeline; the other shows stale-primary, is logged once and counted", () =>
      Effect.gen(function*() {
        const lines: Array<string> = []
        const logger = Logger.make<unknown, void>((options) => {
          lines.push(`${options.logLevel} ${String(options.message)}`)
        })
        yield* Effect.gen(function*() {
          const fake = makeFakeDriver()
          const probes = new Map<string, Driver.Probe>([
            [A, { role: "primary", timeline: 1 }],
            [B, { role: "replica", timeline: 1 }]
          ])
          const set = yield* ServerSet.make({
            name: "fence",
            endpoints: [{ url: A, role: "primary" }, { url: B, role: "replica" }],
            driver: withProbes(fake, probes),
            strategy: "round-robin",
            health: { interval: "100 millis" },
            retry: { schedule: Schedule.spaced("50 millis").pipe(Schedule.upTo({ times: 10 })) }
          })
          yield* TestClock.adjust("200 millis")
          for (let i = 0; i < 4; i++) yield* set.as().use((c) => fake.operation(c), { mode: "write" })
          assert.deepStrictEqual(count(fake.calls), { [A]: 4 })
          // Failover: A dies, B is promoted to timeline 2; then A comes back outside recovery, on timeline 1.
          fake.conditions.set(A, "down")
          probes.set(B, { role: "primary", timeline: 2 })
          yield* TestClock.adjust("300 millis")
          fake.conditions.set(A, "up")
          yield* TestClock.adjust("300 millis")
          fake.calls.length = 0
          for (let i = 0; i < 20; i++) yield* set.as().use((c) => fake.operation(c), { mode: "write" })
          for (let i = 0; i < 20; i++) yield* set.as().use((c) => fake.operation(c), { mode: "read" })
          assert.deepStrictEqual(count(fake.calls), { [B]: 40 })
          const status = yield* set.status
          const a = status.endpoints.find((e) => e.id === A)!
          assert.strictEqual(a.role, "stale-primary")
          assert.strictEqual(a.health, "healthy")
          assert.deepStrictEqual(a.fenced, { timeline: 1, highest: 2, sameTimeline: false })
          assert.strictEqual(status.endpoints.find((e) => e.id === B)!.role, "primary")
          assert.strictEqual(status.endpoints.find((e) => e.id === B)!.timeline, 2)
          // Many probes later: one warning, one count.
          yield* TestClock.adjust("2 seconds")
          const warnings = lines.filter((l) => l.includes("stale primary"))
          assert.strictEqual(warnings.length, 1)
          assert.match(warnings[0]!, /^Warn .*fake:\/\/a:1 claims the primary role on timeline 1 but the newest timeline is 2/)
          const fencedCount = (yield* Metric.snapshot).find((m) =>
            m.id === "tether_fenced_endpoints_total" && m.attributes?.["set"] === "fence"
          )?.state as { count?: number } | undefined
          assert.strictEqual(fencedCount?.count, 1)

          // It rejoins as a replica: reads again, still no writes.
          probes.set(A, { role: "replica", timeline: 2 })
          yield* TestClock.adjust("300 millis")
          fake.calls.length = 0
          for (let i = 0; i < 10; i++) yield* set.as().use((c) => fake.operation(c), { mode: "write" })
          for (let i = 0; i < 10; i++) yield* set.as().use((c) => fake.operation(c), { mode: "read" })
          assert.deepStrictEqual(count(fake.calls), { [A]: 5, [B]: 15 })
          assert.strictEqual((yield* set.status).endpoints.find((e) => e.id === A)!.role, "replica")
        }).pipe(Effect.provide(Logger.layer([logger])))
      }))

    it.effect("an old primary back before the promoted one was probed again gets no write in between", () =>
      Effect.gen(function*() {
        const fake = makeFakeDriver()
        const probes = new Map<string, Driver.Probe>([
          [A, { role: "primary", timeline: 1 }],
          [B, { role: "replica", timeline: 1 }]
        ])
        // B's probes can be held (a slow probe), so that A is seen back first.
        let holdB = false
        const gate = yield* Deferred.make<void>()
        const driver = {
          ...fake.driver,
          probe: (endpoint: { readonly url: string }) =>
            Effect.suspend(() => {
              if (fake.conditions.get(endpoint.url) === "down") {
                return Effect.fail(new FakeError({ kind: "refused", endpoint: endpoint.url }))
              }
              const wait = endpoint.url === B && holdB ? Deferred.await(gate) : Effect.void
              return Effect.andThen(wait, Effect.sync(() => probes.get(endpoint.url) ?? {}))
            })
        }
        const set = yield* ServerSet.make({
          name: "window",
          endpoints: [{ url: A, role: "primary" }, { url: B, role: "replica" }],
          driver,
          health: { interval: "100 millis", timeout: "1 minute" },
          retry: { schedule: Schedule.spaced("50 millis").pipe(Schedule.upTo({ times: 100 })) }
        })
        yield* TestClock.adjust("300 millis")
        assert.strictEqual(yield* set.as().use((c) => fake.operation(c), { mode: "write" }), A)
        holdB = true
        yield* TestClock.adjust("300 millis")
        // A crashes; B is promoted, but its probe is slow; A comes back (outside recovery) and is probed first.
        fake.conditions.set(A, "down")
        yield* TestClock.adjust("300 millis")
        probes.set(B, { role: "primary", timeline: 2 })
        fake.conditions.set(A, "up")
        yield* TestClock.adjust("300 millis")
        assert.strictEqual((yield* set.status).endpoints.find((e) => e.id === A)!.health, "healthy")
        fake.calls.length = 0
        const write = yield* Effect.forkChild(set.as().use((c) => fake.operation(c), { mode: "write" }))
        yield* TestClock.adjust("500 millis")
        assert.deepStrictEqual(fake.calls, [], "no write while B's claim is unknown")
        // B's probe answers: A is fenced, the write goes to B.
        yield* Deferred.succeed(gate, undefined)
        yield* TestClock.adjust("200 millis")
        assert.strictEqual(yield* Fiber.join(write), B)
        assert.deepStrictEqual(fake.calls, [B])
        assert.strictEqual((yield* set.status).endpoints.find((e) => e.id === A)!.role, "stale-primary")
      }))

    it.effect("with no other primary left, a write waits rather than go to the stale one; unfence lets it through", () =>
      Effect.gen(function*() {
        const fake = makeFakeDriver()
        const probes = new Map<string, Driver.Probe>([
          [A, { role: "primary", timeline: 1 }],
          [B, { role: "primary", timeline: 2 }]
        ])
        const set = yield* ServerSet.make({
          name: "unfence",
          endpoints: [{ url: A, role: "primary" }, { url: B, role: "replica" }],
          driver: withProbes(fake, probes),
          health: { interval: "100 millis" },
          retry: false
        })
        yield* TestClock.adjust("200 millis")
        // The new primary B is rebuilt as a replica of A (on A's timeline): A stays fenced until the operator says so.
        probes.set(B, { role: "replica", timeline: 1 })
        yield* TestClock.adjust("300 millis")
        const refused = yield* Effect.flip(set.as().use((c) => fake.operation(c), { mode: "write" }))
        assert.strictEqual(refused._tag, "NoEndpointAvailable")
        assert.match(refused.message, /fake:\/\/a:1: stale primary: fenced \(timeline 1, the newest is 2\)/)
        assert.isFalse(yield* set.unfence(B))
        assert.isTrue(yield* set.unfence(A))
        yield* TestClock.adjust("300 millis")
        assert.strictEqual(yield* set.as().use((c) => fake.operation(c), { mode: "write" }), A)
        assert.strictEqual((yield* set.status).endpoints.find((e) => e.id === A)!.role, "primary")
      }))
  })
})
