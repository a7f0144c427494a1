/**
 * The `pg` suite: `@tether/pg` against raw postgres.js and `@effect/sql-pg` 4
 * on one real PostgreSQL server (from the testkit), 8 connections each.
 *
 * 1. `select 1` and a small indexed read (primary-key lookup in a 10,000-row
 *    table) at concurrency 1, 16 and 64: throughput and p99 latency, for
 *    Tether exclusive (one statement per connection at a time), Tether
 *    multiplexed (8 statements pipelined per connection), raw postgres.js
 *    (`max: 8`, its own pipelining) and `@effect/sql-pg` (`maxConnections: 8`).
 * 2. The ceiling: `pgbench -S` (select-only) with 8 clients on the same server.
 * 3. Cache hits: `cached` reads served from the result cache vs. the same read
 *    uncached.
 */
import { PgClient } from "@tether/pg"
import { Effect } from "effect"
import { effectLoop, promiseLoop, runScoped } from "../harness/loops.ts"
import * as PgBench from "../harness/postgres.ts"
import * as requirements from "../harness/requirements.ts"
import type { Measurement, Suite } from "../harness/types.ts"

export const pgSuite: Suite = {
  name: "pg",
  description: "@tether/pg vs raw postgres.js and @effect/sql-pg (8 connections), pgbench ceiling, cache hits",
  requires: [requirements.postgres, PgBench.pgbenchRequirement],
  run: async ({ quick, log }) => {
    const millis = quick ? 1_000 : 3_000
    const measurements: Array<Measurement> = []
    const notes: Array<string> = []

    const program = Effect.gen(function*() {
      const { effectSql: sqlPg, node, raw, url } = yield* PgBench.startPostgres(log, "pg")
      const common = {
        endpoints: [url],
        user: "postgres",
        readFrom: "any" as const,
        health: false as const,
        pool: { min: PgBench.CONNECTIONS, max: PgBench.CONNECTIONS },
        slowQueryThreshold: "1 minute" as const
      }
      const exclusive = yield* PgClient.make(common)
      const multiplexed = yield* PgClient.make({ ...common, multiplex: 8 })

      const workloads = [
        {
          name: "select 1",
          tether: (db: PgClient.PgClient) => () => db.read`select 1`,
          raw: () => raw`select 1`,
          effectSql: () => sqlPg`select 1`
        },
        {
          name: "indexed read",
          tether: (db: PgClient.PgClient) => (i: number) => db.read`select name from bench_items where id = ${PgBench.itemId(i)}`,
          raw: (i: number) => raw`select name from bench_items where id = ${PgBench.itemId(i)}`,
          effectSql: (i: number) => sqlPg`select name from bench_items where id = ${PgBench.itemId(i)}`
        }
      ]
      for (const workload of workloads) {
        for (const concurrency of [1, 16, 64]) {
          const ours = yield* effectLoop(workload.tether(exclusive), concurrency, millis, PgBench.measured)
          const mux = yield* effectLoop(workload.tether(multiplexed), concurrency, millis, PgBench.measured)
          const rawResult = yield* Effect.promise(() => promiseLoop(workload.raw, concurrency, millis, PgBench.measured))
          const effectSql = yield* effectLoop(workload.effectSql, concurrency, millis, PgBench.measured)
          const label = `${workload.name}, concurrency ${concurrency}`
          measurements.push(
            ...PgBench.throughputAndP99(label, ours, { "Tether multiplexed": mux, "postgres.js": rawResult, "@effect/sql-pg": effectSql })
          )
          log(
            `pg: ${label}: Tether ${Math.round(ours.opsPerSecond)}, multiplexed ${Math.round(mux.opsPerSecond)}, ` +
              `postgres.js ${Math.round(rawResult.opsPerSecond)}, @effect/sql-pg ${Math.round(effectSql.opsPerSecond)} ops/s`
          )
        }
      }

      // The ceiling: pgbench select-only, 8 clients.
      const { ours, row, tps } = yield* PgBench.versusPgbench(
        node,
        { quick, millis, peer: "pgbench -S (ceiling)" },
        (aid) => exclusive.read`select abalance from pgbench_accounts where aid = ${aid}`
      )
      measurements.push(row)
      log(`pg: pgbench -S ${Math.round(tps)} tps; Tether on the same query ${Math.round(ours)} ops/s`)

      // Cache hits.
      const cachedClient = yield* PgClient.make({ ...common, cache: { ttl: "1 hour", capacity: 100 } })
      const hit = yield* effectLoop(() => cachedClient.cached`select name from bench_items where id = ${1}`, 16, millis, PgBench.measured)
      const miss = yield* effectLoop(() => exclusive.read`select name from bench_items where id = ${1}`, 16, millis, PgBench.measured)
      measurements.push({
        case: "indexed read, concurrency 16",
        metric: "throughput, cache hit",
        unit: "ops/s",
        higherIsBetter: true,
        tether: hit.opsPerSecond,
        peers: { "Tether uncached": miss.opsPerSecond }
      })
      notes.push(`Cache: ${JSON.stringify(yield* cachedClient.cacheStats)}.`)
    })

    await runScoped(program)
    return {
      tetherLabel: "Tether",
      peers: ["Tether multiplexed", "postgres.js", "@effect/sql-pg", "pgbench -S (ceiling)", "Tether uncached"],
      measurements,
      notes: [
        `One PostgreSQL 15 server on loopback; every client holds ${PgBench.CONNECTIONS} connections. "Tether" is exclusive mode (a connection per statement in flight); "Tether multiplexed" pipelines up to 8 plain reads per connection.`,
        "Targets: Tether ≥ 0.9x of raw postgres.js and ≥ 1.0x of @effect/sql-pg at every concurrency.",
        "pgbench -S: its own select-only transactions (one primary-key lookup each) with 8 clients; Tether runs the same lookup.",
        ...notes
      ]
    }
  }
}
