import { assert, describe, it } from "@effect/vitest"
import type { Driver } from "@tether/core"
import { Fault, ServerSet } from "@tether/core"
import { Data, Effect, Exit, Scope, Stream } from "effect"
import { TestClock } from "effect/testing"
import { Monitor, type Snapshot } from "../src/index.ts"

class Refused extends Data.TaggedError("Refused")<{ readonly url: string }> {}

const A = "fake://a:1"
const B = "fake://b:1"

/** Connections are plain objects; an endpoint marked down refuses to connect, so its probes fail. */
const makeDriver = () => {
  const down = new Set<string>()
  const driver: Driver.Driver<{ readonly url: string }, Refused> = {
    connect: (endpoint) =>
      Effect.suspend(() => down.has(endpoint.url) ? Effect.fail(new Refused({ url: endpoint.url })) : Effect.succeed({ url: endpoint.url })),
    validate: (connection) =>
      Effect.suspend(() => down.has(connection.url) ? Effect.fail(new Refused({ url: connection.url })) : Effect.void),
    classify: (error) => error instanceof Refused ? Fault.make("connection", { mayHaveReachedServer: false }) : Fault.make("unknown")
  }
  return { driver, down }
}

const settle = Effect.forEach(Array.from({ length: 50 }), () => Effect.yieldNow, { discard: true })

/** What the dashboard shows of the structure of each set: health, usable, draining. */
const view = (snapshot: Snapshot.Snapshot) =>
  snapshot.sets.map((set) =>
    `${set.name}: ` +
    set.endpoints.map((e) => `${e.id} ${e.health}${e.usable ? "" : " unusable"}${e.pool.draining ? " draining" : ""}`).join(", ")
  ).join("; ")

// One sample an hour: anything seen within the test came from the set's published changes.
const monitorLayer = Monitor.layer({ sampleInterval: "1 hour" })

describe("Monitor", () => {
  it.effect("publishes a set's health and drain changes as the set publishes them, not on the next sample", () =>
    Effect.gen(function*() {
      const monitor = yield* Monitor.Monitor
      const { driver, down } = makeDriver()
      const set = yield* ServerSet.make({
        name: "watched",
        endpoints: [A, B],
        driver,
        health: { interval: "250 millis" },
        breaker: false
      })
      const seen: Array<string> = []
      yield* monitor.changes.pipe(
        Stream.runForEach((snapshot) => Effect.sync(() => seen.push(view(snapshot)))),
        Effect.forkChild
      )
      yield* settle
      const watchScope = yield* Scope.make()
      yield* monitor.watch("watched", set).pipe(Scope.provide(watchScope))
      yield* settle
      // Watched: published at once (the sample's next turn is an hour away).
      assert.match(seen.at(-1)!, /^watched: /)

      yield* TestClock.adjust("250 millis")
      yield* settle
      assert.strictEqual(seen.at(-1), `watched: ${A} healthy, ${B} healthy`)

      // Drained through the set's reconfiguration handle: no clock moves.
      yield* set.reconfigure.drain(B)
      yield* settle
      assert.strictEqual(seen.at(-1), `watched: ${A} healthy, ${B} healthy draining`)

      // A failing probe (probes every 250 ms; far less than the sample interval).
      down.add(A)
      yield* TestClock.adjust("5 seconds")
      yield* settle
      assert.strictEqual(seen.at(-1), `watched: ${A} unhealthy unusable, ${B} healthy draining`)

      yield* set.reconfigure.enable(B)
      yield* settle
      assert.strictEqual(seen.at(-1), `watched: ${A} unhealthy unusable, ${B} healthy`)

      // The readiness view (the live snapshot) agrees with what was published.
      assert.strictEqual(view(yield* monitor.snapshot), seen.at(-1))

      // Unwatched: the set leaves the published snapshot at once.
      yield* Scope.close(watchScope, Exit.void)
      yield* settle
      assert.strictEqual(seen.at(-1), "")
    }).pipe(Effect.provide(monitorLayer)))

  it.effect("the counters (traffic per second) still come from the periodic sample", () =>
    Effect.gen(function*() {
      const monitor = yield* Monitor.Monitor
      const { driver } = makeDriver()
      const set = yield* ServerSet.make({ name: "counted", endpoints: [A], driver, health: false, breaker: false })
      yield* monitor.watch("counted", set)
      let latest: Snapshot.Snapshot | undefined
      let published = 0
      yield* monitor.changes.pipe(
        Stream.runForEach((snapshot) =>
          Effect.sync(() => {
            latest = snapshot
            published++
          })
        ),
        Effect.forkChild
      )
      yield* settle
      const before = published
      for (let i = 0; i < 5; i++) yield* set.as().use((c) => Effect.succeed(c.url))
      yield* settle
      // Operations change no structure: nothing new is published before the sample.
      assert.strictEqual(published, before)
      yield* TestClock.adjust("1 hour")
      yield* settle
      assert.isAbove(published, before)
      const endpoint = latest!.sets[0]!.endpoints[0]!
      assert.strictEqual(endpoint.requests, 5)
      assert.isAtLeast(endpoint.series.length, 1)
    }).pipe(Effect.provide(monitorLayer)))
})
