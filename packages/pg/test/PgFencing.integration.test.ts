/**
 * Split brain: after a failover, the old primary is restarted outside recovery, so two
 * servers claim the primary role. Under a steady write load, no write may land on the old
 * (stale) one, and `status` must show it fenced.
 */
import { expect, layer } from "@effect/vitest"
import { PostgresCluster } from "@tether/testkit"
import { Effect, Fiber, Schedule } from "effect"
import postgres from "postgres"
import { PgClient } from "../src/index.ts"

const urlOf = (node: PostgresCluster.Node) => `postgres://${node.host}:${node.port}/postgres`

/** Rows of `fence_w` on one server, read directly (not through Tether). */
const idsOn = (node: PostgresCluster.Node) =>
  Effect.promise(async () => {
    const sql = postgres(node.url, { max: 1, onnotice: () => undefined })
    try {
      const rows = await sql<Array<{ id: number }>>`select id from fence_w`
      return rows.map((r) => r.id)
    } finally {
      await sql.end({ timeout: 1 })
    }
  })

layer(PostgresCluster.layer({ replicas: 1 }), { excludeTestServices: true })("fencing on a real cluster", (it) => {
  it.effect("the old primary restarted outside recovery gets no write and shows as stale-primary", () =>
    Effect.gen(function*() {
      const cluster = yield* PostgresCluster.PostgresCluster
      const oldPrimary = cluster.primary
      const replica = cluster.replicas[0]!
      const db = yield* PgClient.make({
        endpoints: cluster.nodes.map((node) => ({ url: urlOf(node), role: node.role })),
        user: "postgres",
        health: { interval: "100 millis", timeout: "500 millis" },
        queryTimeout: "2 seconds",
        pool: { max: 4 }
      })
      yield* db.write`create table fence_w (id int primary key)`
      yield* cluster.awaitStreaming(replica)
      // Let the table reach the replica before the failover (polled: replay may lag on a loaded machine).
      yield* db.read`select 1 from fence_w`.pipe(Effect.retry({ times: 400, schedule: Schedule.spaced("25 millis") }))

      let next = 0
      let running = true
      const acked: Array<number> = []
      const failures: Array<string> = []
      const writer = Effect.gen(function*() {
        while (running) {
          const id = next++
          const result = yield* Effect.result(db.write`insert into fence_w (id) values (${id})`)
          if (result._tag === "Success") acked.push(id)
          else failures.push(result.failure._tag)
          yield* Effect.sleep("3 millis")
        }
      })
      const fibers = yield* Effect.forEach([1, 2, 3, 4], () => Effect.forkChild(writer))
      yield* Effect.sleep("300 millis")

      yield* cluster.kill(oldPrimary)
      const killedAt = next
      yield* cluster.promote(replica)
      // Writes resume on the promoted replica.
      const resumed = acked.length
      while (!acked.some((id) => id >= killedAt)) yield* Effect.sleep("20 millis")
      expect(acked.length).toBeGreaterThan(resumed - 1)

      // The old primary comes back outside recovery: a second server claims `primary`.
      yield* cluster.restart(oldPrimary)
      const restartedAt = next
      // Many probe rounds and a few hundred writes with both servers up.
      while (next < restartedAt + 600) yield* Effect.sleep("20 millis")
      yield* Effect.sleep("500 millis")
      const status = yield* db.status
      running = false
      yield* Fiber.joinAll(fibers)

      const onOld = (yield* idsOn(oldPrimary)).filter((id) => id >= killedAt)
      const onNew = new Set(yield* idsOn(replica))
      expect(onOld).toEqual([])
      // Every acknowledged write after the restart is on the new primary.
      const ackedAfter = acked.filter((id) => id >= restartedAt)
      expect(ackedAfter.length).toBeGreaterThan(100)
      expect(ackedAfter.filter((id) => !onNew.has(id))).toEqual([])

      const old = status.endpoints.find((e) => e.url === urlOf(oldPrimary))!
      const current = status.endpoints.find((e) => e.url === urlOf(replica))!
      expect(old.role).toBe("stale-primary")
      expect(current.role).toBe("primary")
      expect(old.fenced).toEqual({ timeline: 1, highest: 2, sameTimeline: false })
      expect(current.timeline).toBe(2)
      // Only a fenced endpoint can be unfenced.
      expect(yield* db.unfence(current.id)).toBe(false)
    }).pipe(Effect.scoped))
})
