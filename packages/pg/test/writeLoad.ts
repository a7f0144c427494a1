/**
 * Writes under a failover, each accounted for: four writers insert increasing ids (pipelined on the
 * client's shared connections) and record each outcome — committed, failed, or outcome-unknown.
 * Also what the failover tests set up before it (`synchronous` replication).
 */
import { expect } from "@effect/vitest"
import { Effect, Fiber, Schedule } from "effect"
import * as SqlClient from "effect/sql/SqlClient"

export type Outcome = "committed" | "unknown" | "failed"

export const writeLoad = (client: SqlClient.SqlClient, table: string) =>
  Effect.gen(function*() {
    const outcomes = new Map<number, Outcome>()
    let running = true
    let marked = false
    let afterMark = 0
    const writer = (lane: number) =>
      Effect.gen(function*() {
        let id = lane
        while (running) {
          id += 4
          const result = yield* Effect.result(client`insert into ${client(table)} values (${id})`)
          if (result._tag === "Success") {
            outcomes.set(id, "committed")
            if (marked) afterMark++
          } else {
            const cause = result.failure.reason.cause as { _tag?: string } | undefined
            outcomes.set(id, cause?._tag === "PgOutcomeUnknown" ? "unknown" : "failed")
          }
          yield* Effect.sleep("2 millis")
        }
      })
    const fibers = yield* Effect.forEach([0, 1, 2, 3], (lane) => Effect.forkChild(writer(lane)))
    return {
      /** Outcomes so far. */
      size: Effect.sync(() => outcomes.size),
      /** From now on, committed writes are counted in `committedAfterMark` (e.g. after a promotion). */
      mark: Effect.sync(() => {
        marked = true
      }),
      committedAfterMark: Effect.sync(() => afterMark),
      /**
       * Stops the writers and compares each outcome with the table: `lost` (committed, not stored),
       * `phantom` (failed, yet stored), `duplicated` (rows beyond the distinct ids), and the counts.
       */
      stopAndAudit: Effect.gen(function*() {
        running = false
        yield* Fiber.joinAll(fibers)
        const rows = yield* client<{ id: number }>`select id from ${client(table)}`
        const stored = new Set(rows.map((r) => r.id))
        const counts = { committed: 0, unknown: 0, failed: 0 }
        for (const outcome of outcomes.values()) counts[outcome]++
        return {
          lost: [...outcomes].filter(([id, outcome]) => outcome === "committed" && !stored.has(id)),
          phantom: [...outcomes].filter(([id, outcome]) => outcome === "failed" && stored.has(id)),
          duplicated: rows.length - stored.size,
          counts
        }
      })
    }
  })

/** A running {@link writeLoad}. */
export type WriteLoad = Effect.Success<ReturnType<typeof writeLoad>>

/**
 * Stops `load` and expects its audit clean: no committed write lost, no failed write stored, no
 * duplicate; more than `committed` writes committed in all and more than `afterMark` after the
 * mark. Returns the counts.
 */
export const expectCleanAudit = (load: WriteLoad, least: { readonly committed: number; readonly afterMark: number }) =>
  Effect.gen(function*() {
    const { counts, duplicated, lost, phantom } = yield* load.stopAndAudit
    expect(lost).toEqual([])
    expect(phantom).toEqual([])
    expect(duplicated).toBe(0)
    expect(counts.committed).toBeGreaterThan(least.committed)
    expect(yield* load.committedAfterMark).toBeGreaterThan(least.afterMark)
    return counts
  })

/** Synchronous replication (remote_apply): a commit is acknowledged once the replica applied it. */
export const synchronous = Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  yield* sql`alter system set synchronous_standby_names = '*'`
  yield* sql`select pg_reload_conf()`
  yield* sql<{ n: number }>`select count(*)::int as n from pg_stat_replication where sync_state = 'sync'`.pipe(
    Effect.repeat({ until: (rows) => rows[0]!.n >= 1, schedule: Schedule.spaced("50 millis"), times: 200 })
  )
})
