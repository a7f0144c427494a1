/**
 * `NoEndpointAvailable` with several endpoints, all refusing connections:
 * the error carries each endpoint's own last cause.
 */
import { assert, describe, it } from "@effect/vitest"
import { Balancer, Fault, ServerSet } from "@tether/core"
import type { Driver } from "@tether/core"
import { Effect, Schedule } from "effect"

/** Every connect is refused, with a message naming the endpoint (as a socket error would). */
const refusing: Driver.Driver<unknown, Error> = {
  connect: (endpoint) => Effect.fail(new Error(`connect ECONNREFUSED ${new URL(endpoint.url).host}`)),
  classify: () => Fault.make("connection")
}

describe("NoEndpointAvailable", () => {
  it.effect("with every endpoint refusing, carries each endpoint's last cause", () =>
    Effect.gen(function*() {
      const set = yield* ServerSet.make({
        name: "refusing",
        endpoints: ["fake://a:1", "fake://b:2", "fake://c:3"],
        driver: refusing,
        health: false,
        // Each refusal opens its endpoint's breaker: once all three are open, no endpoint is left.
        breaker: { consecutiveFailures: 1 },
        retry: { schedule: Schedule.recurs(10) }
      })
      // The first call meets each refusal in turn and opens the three breakers …
      yield* Effect.flip(set.as().use(() => Effect.void, { idempotent: true }))
      for (let i = 0; i < 10; i++) yield* Effect.yieldNow
      // … the next finds no endpoint left (the test clock stands still: the breakers stay open).
      const error = yield* Effect.flip(set.as().use(() => Effect.void, { idempotent: true }))
      assert.instanceOf(error, Balancer.NoEndpointAvailable, String(error))
      if (!(error instanceof Balancer.NoEndpointAvailable)) return
      assert.strictEqual(error.exclusions.length, 3, error.message)
      for (const [endpoint, host] of [["fake://a:1", "a:1"], ["fake://b:2", "b:2"], ["fake://c:3", "c:3"]] as const) {
        const exclusion: Balancer.Exclusion | undefined = error.exclusions.find((e) => e.endpoint === endpoint)
        assert.isDefined(exclusion, `${endpoint} missing from ${error.message}`)
        assert.include(exclusion?.lastError ?? "", `ECONNREFUSED ${host}`, error.message)
        assert.include(error.message, `ECONNREFUSED ${host}`)
      }
    }))
})
