/**
 * A wrong service-account password (the health probe's bind is rejected)
 * must not take a working server out of service, for any backend.
 */
import { assert, describe, it } from "@effect/vitest"
import { ServerSet } from "@tether/core"
import { Effect } from "effect"
import { TestClock } from "effect/testing"
import { FakeError, makeFakeDriver } from "./fakeDriver.ts"

const A = "fake://a:1"

const settle = Effect.forEach(Array.from({ length: 50 }), () => Effect.yieldNow, { discard: true })

describe("ServerSet health probes with rejected credentials", () => {
  it.effect("the endpoint stays usable; status shows the probe's auth failure until it binds again", () =>
    Effect.gen(function*() {
      const fake = makeFakeDriver()
      let probeAuth: "rejected" | "ok" = "rejected"
      const set = yield* ServerSet.make({
        name: "s",
        endpoints: [A],
        driver: {
          ...fake.driver,
          probe: (endpoint) =>
            Effect.suspend(() =>
              probeAuth === "rejected" ? Effect.fail(new FakeError({ kind: "auth", endpoint: endpoint.url })) : Effect.void
            )
        },
        health: { interval: "1 second", unhealthyAfter: 1 }
      })
      yield* settle
      for (let i = 0; i < 3; i++) {
        yield* TestClock.adjust("1 second")
        assert.strictEqual(yield* set.as().use((c) => fake.operation(c)), A)
      }
      let status = (yield* set.status).endpoints[0]!
      assert.strictEqual(status.health, "healthy")
      assert.include(status.probeAuthFailure, "FakeError")
      assert.isAtLeast(status.monitor!.probeAuthFailures, 3)
      probeAuth = "ok"
      yield* TestClock.adjust("2 seconds") // the probe interval is jittered
      status = (yield* set.status).endpoints[0]!
      assert.isUndefined(status.probeAuthFailure)
      assert.strictEqual(status.health, "healthy")
    }))

  it.effect("a server that is down is still unhealthy", () =>
    Effect.gen(function*() {
      const fake = makeFakeDriver()
      const set = yield* ServerSet.make({
        name: "s",
        endpoints: [A],
        driver: { ...fake.driver, probe: (endpoint) => Effect.fail(new FakeError({ kind: "refused", endpoint: endpoint.url })) },
        health: { interval: "1 second", unhealthyAfter: 1 }
      })
      yield* settle
      yield* TestClock.adjust("1 second")
      const status = (yield* set.status).endpoints[0]!
      assert.strictEqual(status.health, "unhealthy")
      assert.isUndefined(status.probeAuthFailure)
    }))
})
