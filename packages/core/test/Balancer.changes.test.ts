import { assert, describe, it } from "@effect/vitest"
import { Balancer, ServerSet } from "@tether/core"
import { Deferred, Effect, Fiber, Stream } from "effect"
import { TestClock } from "effect/testing"
import { makeFakeDriver } from "./fakeDriver.ts"

const A = "fake://a:1"
const B = "fake://b:1"

const settle = Effect.forEach(Array.from({ length: 50 }), () => Effect.yieldNow, { discard: true })

const view = (snapshot: Balancer.Snapshot) =>
  snapshot.endpoints.map((e) => `${e.id} ${e.health}${e.draining ? " draining" : ""}`).join(", ")

describe("Balancer changes (the published state in a SubscriptionRef)", () => {
  it.effect("streams the current snapshot, then each structural change; per-call counters and no-op changes publish nothing", () =>
    Effect.gen(function*() {
      const balancer = yield* Balancer.make({ strategy: "round-robin", endpoints: [{ id: "a" }, { id: "b" }] })
      const subscribed = yield* Deferred.make<void>()
      const fiber = yield* balancer.changes.pipe(
        Stream.tap(() => Deferred.succeed(subscribed, undefined)),
        Stream.take(4),
        Stream.runCollect,
        Effect.forkChild
      )
      yield* Deferred.await(subscribed)
      // None of these changes what the snapshot shows.
      yield* balancer.pick()
      yield* balancer.addInFlight("a", 1)
      yield* balancer.recordLatency("a", 5)
      yield* balancer.setHealth("b", "unknown")
      yield* balancer.setDraining("b", false)
      // These do.
      yield* balancer.setHealth("a", "healthy")
      yield* balancer.setHealth("a", "healthy")
      yield* balancer.setDraining("b", true)
      yield* balancer.setStrategy("least-connections")
      const snapshots = Array.from(yield* Fiber.join(fiber))
      assert.deepStrictEqual(snapshots.map(view), [
        "a unknown, b unknown",
        "a healthy, b unknown",
        "a healthy, b unknown draining",
        "a healthy, b unknown draining"
      ])
      assert.deepStrictEqual(snapshots.map((s) => s.strategy), [
        "round-robin",
        "round-robin",
        "round-robin",
        "least-connections"
      ])
      // The snapshot and the per-call state agree; the counters live only in the state.
      assert.deepStrictEqual(yield* balancer.snapshot, snapshots[3])
      const state = yield* balancer.state
      assert.strictEqual(state.endpoints[0]!.inFlight, 1)
      assert.strictEqual(state.endpoints[0]!.latency, 5)
      assert.isFalse("inFlight" in snapshots[3]!.endpoints[0]!)
    }))

  it.effect("publishes fences and their lifting", () =>
    Effect.gen(function*() {
      const balancer = yield* Balancer.make({ endpoints: [{ id: "a", role: "primary" }, { id: "b", role: "replica" }] })
      yield* balancer.observe("a", { role: "primary", timeline: 1 })
      yield* balancer.observe("b", { role: "primary", timeline: 2 })
      const fenced = yield* balancer.snapshot
      assert.deepStrictEqual(fenced.endpoints[0]!.fenced, { timeline: 1, highest: 2, sameTimeline: false })
      assert.strictEqual(fenced.highestTimeline, 2)
      // A probe that confirms what is known publishes nothing new: the same snapshot object.
      yield* balancer.observe("b", { role: "primary", timeline: 2 })
      assert.strictEqual(yield* balancer.snapshot, fenced)
      assert.isTrue(yield* balancer.unfence("a"))
      const lifted = yield* balancer.snapshot
      assert.strictEqual(lifted.endpoints[0]!.fenced, undefined)
      assert.strictEqual(lifted.highestTimeline, 1)
    }))

  it.effect("a server set's subscribers see a health change (probes on the TestClock) and a drain", () =>
    Effect.gen(function*() {
      const fake = makeFakeDriver()
      const set = yield* ServerSet.make({
        name: "watched",
        endpoints: [A, B],
        driver: fake.driver,
        health: { interval: "250 millis" },
        breaker: false
      })
      const seen: Array<string> = []
      yield* set.balancerChanges.pipe(
        Stream.runForEach((snapshot) => Effect.sync(() => seen.push(view(snapshot)))),
        Effect.forkChild
      )
      yield* settle
      yield* TestClock.adjust("250 millis")
      yield* settle
      assert.strictEqual(seen.at(-1), `${A} healthy, ${B} healthy`)
      fake.conditions.set(A, "down")
      yield* TestClock.adjust("5 seconds")
      yield* settle
      assert.strictEqual(seen.at(-1), `${A} unhealthy, ${B} healthy`)
      yield* set.reconfigure.drain(B)
      yield* settle
      assert.strictEqual(seen.at(-1), `${A} unhealthy, ${B} healthy draining`)
      // Only the changes were published, each once: the probes every 250 ms that confirmed them added nothing.
      // (The first probes may run before the subscription: it starts from the snapshot current then.)
      assert.deepStrictEqual(seen.slice(seen.indexOf(`${A} healthy, ${B} healthy`)), [
        `${A} healthy, ${B} healthy`,
        `${A} unhealthy, ${B} healthy`,
        `${A} unhealthy, ${B} healthy draining`
      ])
      const status = yield* set.status
      assert.deepStrictEqual(
        status.endpoints.map((e) => `${e.id} ${e.health}${e.draining === true ? " draining" : ""}`).join(", "),
        seen.at(-1)
      )
    }))
})
