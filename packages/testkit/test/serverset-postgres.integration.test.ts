import { describe, expect, layer } from "@effect/vitest"
import { ServerSet } from "@tether/core"
import { Effect, Fiber, Schedule } from "effect"
import { PostgresCluster } from "../src/index.ts"
import { attempt, bounded, endpointUrl, pgDriver } from "./drivers.ts"

/** A read through the set: returns the endpoint that served it. */
const read = (set: ServerSet.ServerSet<any, any>) =>
  set.as().use(
    (session, endpoint) =>
      bounded(endpoint.id, attempt(() => session.sql`select 1`)).pipe(Effect.as(endpoint.id)),
    { mode: "read", idempotent: true }
  )

/** Runs `n` workers reading in a loop until `stop` says so; collects [time, endpoint] and failures. */
const load = (set: ServerSet.ServerSet<any, any>, workers: number) =>
  Effect.gen(function*() {
    const served: Array<{ at: number; endpoint: string }> = []
    const failures: Array<unknown> = []
    let running = true
    const fibers = yield* Effect.forEach(Array.from({ length: workers }), () =>
      Effect.forkChild(Effect.gen(function*() {
        while (running) {
          const result = yield* Effect.result(read(set))
          if (result._tag === "Success") served.push({ at: Date.now(), endpoint: result.success })
          else failures.push(result.failure)
          yield* Effect.sleep("2 millis")
        }
      })))
    const stop = Effect.andThen(Effect.sync(() => {
      running = false
    }), Fiber.joinAll(fibers))
    return { served, failures, stop }
  })

layer(PostgresCluster.layer({ replicas: 2 }), { excludeTestServices: true })("ServerSet on a real PostgreSQL cluster", (it) => {
  describe("failover", () => {
    it.effect("a replica killed mid-load: no read fails, and traffic leaves it at once", () =>
      Effect.gen(function*() {
        const cluster = yield* PostgresCluster.PostgresCluster
        const set = yield* ServerSet.make({
          name: "pg",
          endpoints: cluster.nodes.map(endpointUrl),
          driver: pgDriver,
          strategy: "round-robin",
          pool: { min: 1, max: 4, validationWindow: "50 millis" },
          health: { interval: "250 millis", timeout: "500 millis" },
          retry: { schedule: Schedule.spaced("20 millis").pipe(Schedule.upTo({ times: 5 })) }
        })
        const victim = cluster.replicas[1]!
        const victimId = `postgres://127.0.0.1:${victim.port}/postgres`
        const run = yield* load(set, 8)
        yield* Effect.sleep("300 millis")
        expect(run.served.some((s) => s.endpoint === victimId)).toBe(true)
        const requestsTo = (st: ServerSet.Status) => st.endpoints.find((e) => e.id === victimId)!.requests
        yield* cluster.kill(victim)
        const killedAt = Date.now()
        const routedBefore = requestsTo(yield* set.status)
        yield* Effect.sleep("1 second")
        const status = yield* set.status
        yield* run.stop
        expect(run.failures).toEqual([])
        const afterKill = run.served.filter((s) => s.at > killedAt)
        expect(afterKill.length).toBeGreaterThan(50)
        expect(afterKill.filter((s) => s.endpoint === victimId)).toEqual([])
        // The first failure there marks it: at most the workers then in flight were routed to it.
        expect(requestsTo(status) - routedBefore).toBeLessThanOrEqual(8)
        const victimStatus = status.endpoints.find((e) => e.id === victimId)!
        expect(victimStatus.health).toBe("unhealthy")
        expect(victimStatus.monitor!.lastError).toBeDefined()
        yield* cluster.restart(victim)
      }).pipe(Effect.scoped))

    it.effect("a hung (SIGSTOPped) replica opens its breaker and traffic moves away; SIGCONT brings it back", () =>
      Effect.gen(function*() {
        const cluster = yield* PostgresCluster.PostgresCluster
        const set = yield* ServerSet.make({
          name: "pg",
          endpoints: cluster.nodes.map(endpointUrl),
          driver: pgDriver,
          strategy: "round-robin",
          pool: { min: 1, max: 4, connectTimeout: "500 millis", drainTimeout: "1 second" },
          // Probes slow enough that the breaker, not the monitor, moves the traffic.
          health: { interval: "5 seconds", timeout: "500 millis", unhealthyAfter: 3 },
          breaker: { consecutiveFailures: 2, openDuration: Schedule.spaced("1 second") },
          retry: { schedule: Schedule.recurs(4) }
        })
        const victim = cluster.replicas[0]!
        const victimId = `postgres://127.0.0.1:${victim.port}/postgres`
        yield* Effect.forEach(Array.from({ length: 6 }), () => read(set), { discard: true })
        yield* cluster.stop(victim)
        const results = yield* Effect.forEach(Array.from({ length: 30 }), () => read(set), { concurrency: 3 })
        expect(results.every((r) => r !== victimId)).toBe(true)
        const opened = (yield* set.status).endpoints.find((e) => e.id === victimId)!
        expect(opened.breaker!.status).toBe("open")
        yield* cluster.cont(victim)
        // After the open duration a trial call goes through, succeeds, and closes the breaker.
        // Counted, not timed: up to 400 reads 50 ms apart (a loaded machine may need a while
        // for the resumed server to answer the trial call).
        let back = false
        for (let i = 0; i < 400 && !back; i++) {
          yield* Effect.sleep("50 millis")
          back = (yield* read(set)) === victimId
        }
        expect(back).toBe(true)
        expect((yield* set.status).endpoints.find((e) => e.id === victimId)!.breaker!.status).toBe("closed")
      }).pipe(Effect.scoped))
  })

  describe("topology", () => {
    it.effect("writes go to the primary only; a promoted replica is detected by the probes", () =>
      Effect.gen(function*() {
        const cluster = yield* PostgresCluster.PostgresCluster
        const set = yield* ServerSet.make({
          name: "pg",
          endpoints: cluster.nodes.map((n) => ({ url: endpointUrl(n), role: n.role })),
          driver: pgDriver,
          pool: { max: 2 },
          health: { interval: "100 millis" },
          retry: { schedule: Schedule.spaced("50 millis").pipe(Schedule.upTo({ times: 40 })) }
        })
        const write = set.as().use(
          (session, endpoint) =>
            attempt(() => session.sql`create table if not exists t_serverset (id int)`).pipe(
              Effect.as(endpoint.id)
            ),
          { mode: "write", idempotent: true }
        )
        const primary = yield* cluster.currentPrimary
        expect(yield* write).toBe(`postgres://127.0.0.1:${primary.port}/postgres`)
        // Fail over: kill the primary, promote a replica; the set finds the new primary by itself.
        const next = cluster.nodes.find((n) => n.role === "replica" && n.state === "running")!
        yield* cluster.kill(primary)
        yield* cluster.promote(next)
        expect(yield* write).toBe(`postgres://127.0.0.1:${next.port}/postgres`)
      }).pipe(Effect.scoped))
  })
})
