import { describe, expect, layer } from "@effect/vitest"
import { ServerSet } from "@tether/core"
import { Effect, Schedule } from "effect"
import { FaultProxy, PostgresCluster } from "../src/index.ts"
import { attempt, bounded, pgDriver } from "./drivers.ts"

layer(PostgresCluster.layer({ replicas: 1 }), { excludeTestServices: true })("ServerSet through a FaultProxy", (it) => {
  describe("slow and black-holed networks", () => {
    it.effect("'fastest' moves traffic away from a slow link; with the link black-holed, every read is served by the other endpoint", () =>
      Effect.gen(function*() {
        const cluster = yield* PostgresCluster.PostgresCluster
        const replica = cluster.replicas[0]!
        const proxy = yield* FaultProxy.make({ target: replica })
        const direct = `postgres://${cluster.primary.host}:${cluster.primary.port}/postgres`
        const proxied = `postgres://${proxy.address}/postgres`
        const set = yield* ServerSet.make({
          name: "pg",
          endpoints: [direct, proxied],
          driver: pgDriver,
          strategy: "fastest",
          pool: { max: 4, connectTimeout: "500 millis", drainTimeout: "1 second" },
          health: { interval: "100 millis", timeout: "1 second" },
          breaker: { consecutiveFailures: 2, openDuration: Schedule.spaced("5 seconds") },
          retry: { schedule: Schedule.recurs(3) }
        })
        const read = set.as().use(
          (session, endpoint) => bounded(endpoint.id, attempt(() => session.sql`select 1`)).pipe(Effect.as(endpoint.id)),
          { idempotent: true }
        )
        yield* proxy.setLatency("40 millis")
        yield* Effect.sleep("600 millis") // a few probes measure both links
        const served = yield* Effect.forEach(Array.from({ length: 40 }), () => read)
        expect(served.filter((e) => e === direct).length).toBeGreaterThanOrEqual(36)
        // Black hole: requests on the proxied link hang; they time out, fail over, and its breaker opens.
        yield* proxy.heal
        yield* proxy.blackhole(true)
        const during = yield* Effect.forEach(Array.from({ length: 20 }), () => read, { concurrency: 4 })
        expect(during.every((e) => e === direct)).toBe(true)
        yield* proxy.heal
      }).pipe(Effect.scoped))
  })
})
