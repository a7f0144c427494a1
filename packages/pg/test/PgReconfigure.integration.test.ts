import { expect, layer } from "@effect/vitest"
import { PgClient, PgSql } from "@tether/pg"
import { PostgresCluster, SteadyLoad } from "@tether/testkit"
import { Effect, Fiber, Schedule } from "effect"
import * as Reactivity from "effect/reactivity/Reactivity"
import { urlOf } from "./support.ts"

const requestsOf = (db: PgClient.PgClient) =>
  Effect.map(db.status, (s) => new Map(s.endpoints.map((e) => [e.id, e.requests])))

layer(PostgresCluster.layer({ replicas: 1 }), { excludeTestServices: true })("PgClient reconfigured under load", (it) => {
  it.effect(
    "add, weight, strategy, drain, enable, resize, breaker, apply and remove while 8 fibers read: 0 failed operations",
    () =>
      Effect.gen(function*() {
        const cluster = yield* PostgresCluster.PostgresCluster
        const primary = urlOf(cluster.primary)
        const replica = urlOf(cluster.replicas[0]!)
        const db = yield* PgClient.make({
          name: "reconfigured",
          endpoints: [{ url: urlOf(cluster.primary), role: "primary" }],
          user: "postgres",
          readFrom: "any",
          strategy: "weighted-round-robin",
          pool: { max: 4, acquireTimeout: "60 seconds", connectTimeout: "20 seconds" },
          health: { interval: "500 millis", timeout: "5 seconds" },
          queryTimeout: "30 seconds"
        })
        const traffic = yield* SteadyLoad.start(db.read`select pg_backend_pid() as pid`, { fibers: 8 })
        yield* traffic.progress(50)

        // Add the replica: traffic reaches it.
        yield* db.reconfigure.add({ url: urlOf(cluster.replicas[0]!), role: "replica" })
        let before = yield* requestsOf(db)
        yield* traffic.progress(200)
        let after = yield* requestsOf(db)
        expect(after.get(replica)! - (before.get(replica) ?? 0)).toBeGreaterThan(20)

        // Weight 3 on the replica: about three picks in four go there.
        yield* db.reconfigure.setWeight(replica, 3)
        before = yield* requestsOf(db)
        yield* traffic.progress(400)
        after = yield* requestsOf(db)
        const toReplica = after.get(replica)! - before.get(replica)!
        const toPrimary = after.get(primary)! - before.get(primary)!
        expect(toReplica).toBeGreaterThan(2 * toPrimary)
        expect((yield* db.status).endpoints.find((e) => e.id === replica)!.weight).toBe(3)

        // Drain the primary: listed as draining, no new work; enable: work again.
        yield* db.reconfigure.drain(primary)
        expect((yield* db.status).endpoints.find((e) => e.id === primary)!.draining).toBe(true)
        yield* traffic.progress(20) // ops picked before the drain finish
        before = yield* requestsOf(db)
        yield* traffic.progress(200)
        after = yield* requestsOf(db)
        expect(after.get(primary)).toBe(before.get(primary))
        yield* db.reconfigure.enable(primary)
        before = yield* requestsOf(db)
        yield* traffic.progress(200)
        after = yield* requestsOf(db)
        expect(after.get(primary)! - before.get(primary)!).toBeGreaterThan(10)

        // Shrink the pools to 2: open connections come down to it and stay there under load.
        const open = Effect.map(db.status, (s) => s.endpoints.map((e) => e.pool.open))
        expect(Math.max(...(yield* open))).toBeGreaterThan(2)
        yield* db.reconfigure.resizePool({ max: 2 })
        yield* open.pipe(
          Effect.repeat({ until: (o) => Math.max(...o) <= 2, schedule: Schedule.spaced("20 millis"), times: 3_000 })
        )
        for (let i = 0; i < 5; i++) {
          yield* traffic.progress(50)
          expect(Math.max(...(yield* open))).toBeLessThanOrEqual(2)
          expect((yield* db.status).endpoints.every((e) => e.pool.max === 2)).toBe(true)
        }
        // Grow to 6: the 8 readers' waiters are admitted, more connections open.
        yield* db.reconfigure.resizePool({ max: 6 })
        yield* open.pipe(
          Effect.repeat({ until: (o) => Math.max(...o) > 2, schedule: Schedule.spaced("20 millis"), times: 3_000 })
        )
        expect(Math.max(...(yield* open))).toBeGreaterThan(2)
        expect(Math.max(...(yield* open))).toBeLessThanOrEqual(6)

        // Breaker thresholds and strategy, live.
        yield* db.reconfigure.setBreaker({ consecutiveFailures: 3 })
        yield* db.reconfigure.setStrategy("least-connections")
        expect((yield* db.status).strategy).toBe("least-connections")
        yield* traffic.progress(200)
        expect((yield* db.status).endpoints.every((e) => e.breaker?.status === "closed")).toBe(true)

        // A bad change is a typed error and changes nothing.
        const bad = yield* Effect.flip(db.reconfigure.apply({ endpoints: [urlOf(cluster.primary)], pool: { max: 0 } }))
        expect(bad._tag).toBe("InvalidPoolOptions")
        expect((yield* db.status).endpoints.length).toBe(2)

        // Apply a whole new configuration: the replica goes, the primary's weight changes.
        const changes = yield* db.reconfigure.apply({
          endpoints: [{ url: urlOf(cluster.primary), role: "primary", weight: 2 }],
          strategy: "round-robin",
          pool: { max: 3 }
        })
        expect(changes.map((c) => c._tag).sort()).toEqual(
          ["EndpointRemoved", "EndpointUpdated", "PoolResized", "StrategyChanged"]
        )
        const final = yield* db.status
        expect(final.endpoints.map((e) => [e.id, e.weight])).toEqual([[primary, 2]])
        expect(final.strategy).toBe("round-robin")
        before = yield* requestsOf(db)
        yield* traffic.progress(100)
        after = yield* requestsOf(db)
        expect(after.get(primary)! - before.get(primary)!).toBeGreaterThanOrEqual(100)

        // Remove by hand, add back.
        yield* db.reconfigure.add({ url: urlOf(cluster.replicas[0]!), role: "replica" })
        yield* traffic.progress(100)
        yield* db.reconfigure.remove(replica)
        yield* traffic.progress(100)

        yield* traffic.stop
        expect(traffic.counts.errors).toEqual([])
        expect(traffic.counts.failed).toBe(0)
        expect(traffic.counts.ok).toBeGreaterThan(1_500)
      }).pipe(Effect.scoped),
    { timeout: 300_000 }
  )

  it.effect("PgSql: one handle steers the pipelined and the exclusive sets; reads under load never fail", () =>
    Effect.gen(function*() {
      const cluster = yield* PostgresCluster.PostgresCluster
      const replica = urlOf(cluster.replicas[0]!)
      const sql = yield* PgSql.make({
        endpoints: cluster.nodes.map((node) => ({ url: urlOf(node), role: node.role })),
        user: "postgres",
        readFrom: "any",
        health: { interval: "500 millis", timeout: "5 seconds" },
        queryTimeout: "30 seconds",
        pool: { max: 4, acquireTimeout: "60 seconds", connectTimeout: "20 seconds" }
      })
      const counts = { ok: 0, failed: 0 }
      let running = true
      const loop = Effect.gen(function*() {
        while (running) {
          const exit = yield* Effect.exit(sql`select 1 as one`)
          if (exit._tag === "Success") counts.ok++
          else counts.failed++
        }
      })
      const fibers = yield* Effect.forEach([1, 2, 3, 4], () => Effect.forkChild(loop))
      const progress = (n: number) =>
        Effect.suspend(() => {
          const target = counts.ok + n
          return Effect.sync(() => counts.ok).pipe(
            Effect.repeat({ until: (ok) => ok >= target, schedule: Schedule.spaced("10 millis"), times: 12_000 })
          )
        })
      yield* progress(50)
      yield* sql.reconfigure.drain(replica)
      const both = yield* sql.statusAll
      for (const status of [both.shared, both.exclusive]) {
        expect(status.endpoints.find((e) => e.id === replica)!.draining).toBe(true)
      }
      yield* progress(20)
      const before = (yield* sql.status).endpoints.find((e) => e.id === replica)!.requests
      yield* progress(100)
      expect((yield* sql.status).endpoints.find((e) => e.id === replica)!.requests).toBe(before)
      yield* sql.reconfigure.enable(replica)
      yield* sql.reconfigure.resizePool({ max: 2 })
      const after = yield* sql.statusAll
      for (const status of [after.shared, after.exclusive]) {
        expect(status.endpoints.every((e) => e.pool.max === 2 && e.draining === false)).toBe(true)
      }
      yield* progress(100)
      running = false
      yield* Fiber.joinAll(fibers)
      expect(counts.failed).toBe(0)
    }).pipe(Effect.scoped, Effect.provide(Reactivity.layer)), { timeout: 300_000 })
})
