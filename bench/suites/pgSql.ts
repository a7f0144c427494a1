/**
 * The `pg-sql` suite: `@tether/pg`'s effect/sql client (`PgSql`, default
 * configuration: pipelined) against raw postgres.js and `@effect/sql-pg` 4,
 * on one real PostgreSQL server (from the testkit), 8 connections each.
 *
 * 1. `select 1` and a small indexed read (primary-key lookup in a 10,000-row
 *    table) at concurrency 1, 16 and 64: throughput and p99 latency.
 *    Tether runs the statements as an effect/sql user writes them
 *    (`sql\`select …\``), with the default options (`pipeline: 16`).
 * 2. The pgbench -S workload (one primary-key lookup in `pgbench_accounts`)
 *    from 8 fibers, against `pgbench -S -c 8` itself.
 * 3. Through a real PgBouncer (transaction mode, pool size 8): Tether with
 *    `pgbouncer: "transaction"` vs postgres.js with `prepare: false` (what
 *    PgBouncer's docs require), both 8 client connections, concurrency 16.
 */
import * as EffectPg from "@effect/sql-pg/PgClient"
import { PgSql } from "@tether/pg"
import { PgBouncer, PostgresCluster } from "@tether/testkit"
import { execFile } from "node:child_process"
import { Effect, Layer, Redacted } from "effect"
import * as Reactivity from "effect/reactivity/Reactivity"
import postgres from "postgres"
import { effectLoop, promiseLoop, runScoped } from "../harness/loops.ts"
import * as requirements from "../harness/requirements.ts"
import type { Measurement, Suite } from "../harness/types.ts"

const CONNECTIONS = 8
const measured = { warmupMillis: 500, latencies: true }
const PGBENCH = "/usr/lib/postgresql/15/bin/pgbench"

const pgbench = (args: ReadonlyArray<string>) =>
  new Promise<string>((resolve, reject) =>
    execFile(PGBENCH, [...args], { timeout: 120_000 }, (error, stdout, stderr) =>
      error ? reject(new Error(`pgbench failed: ${stderr || error.message}`)) : resolve(stdout))
  )

export const pgSqlSuite: Suite = {
  name: "pg-sql",
  description: "@tether/pg's effect/sql client (pipelined) vs postgres.js and @effect/sql-pg, pgbench -S, PgBouncer",
  requires: [
    requirements.postgres,
    requirements.command("pgbench", { extraDirs: ["/usr/lib/postgresql/15/bin"] }),
    requirements.command("pgbouncer", { extraDirs: ["/usr/sbin"] })
  ],
  run: async ({ quick, log }) => {
    const millis = quick ? 1_000 : 3_000
    const measurements: Array<Measurement> = []
    const notes: Array<string> = []

    const program = Effect.gen(function*() {
      log("pg-sql: starting PostgreSQL")
      const cluster = yield* PostgresCluster.make({ replicas: 0 })
      const node = cluster.primary
      const url = `postgres://${node.host}:${node.port}/postgres`
      const reactivity = Layer.succeed(Reactivity.Reactivity)(yield* Reactivity.make)
      const tether = yield* PgSql.make({
        endpoints: [url],
        user: "postgres",
        health: false,
        pool: { min: CONNECTIONS, max: CONNECTIONS },
        slowQueryThreshold: "1 minute"
      }).pipe(Effect.provide(reactivity))
      yield* tether`create table if not exists bench_items (id int primary key, name text not null)`
      yield* tether`insert into bench_items select g, 'item ' || g from generate_series(1, 10000) g on conflict do nothing`

      const raw = postgres(url, { username: "postgres", max: CONNECTIONS, fetch_types: false, onnotice: () => undefined })
      yield* Effect.addFinalizer(() => Effect.promise(() => raw.end({ timeout: 1 }).catch(() => undefined)))
      const effectSql = yield* EffectPg.make({
        host: node.host,
        port: node.port,
        username: "postgres",
        database: "postgres",
        maxConnections: CONNECTIONS,
        minConnections: CONNECTIONS
      }).pipe(Effect.provide(reactivity))

      const workloads = [
        {
          name: "select 1",
          tether: () => tether`select 1`,
          raw: () => raw`select 1`,
          effectSql: () => effectSql`select 1`
        },
        {
          name: "indexed read",
          tether: (i: number) => tether`select name from bench_items where id = ${(i % 10000) + 1}`,
          raw: (i: number) => raw`select name from bench_items where id = ${(i % 10000) + 1}`,
          effectSql: (i: number) => effectSql`select name from bench_items where id = ${(i % 10000) + 1}`
        }
      ]
      for (const workload of workloads) {
        for (const concurrency of [1, 16, 64]) {
          const ours = yield* effectLoop(workload.tether, concurrency, millis, measured)
          const rawResult = yield* Effect.promise(() => promiseLoop(workload.raw, concurrency, millis, measured))
          const theirs = yield* effectLoop(workload.effectSql, concurrency, millis, measured)
          const label = `${workload.name}, concurrency ${concurrency}`
          measurements.push({
            case: label,
            metric: "throughput",
            unit: "ops/s",
            higherIsBetter: true,
            tether: ours.opsPerSecond,
            peers: { "postgres.js": rawResult.opsPerSecond, "@effect/sql-pg": theirs.opsPerSecond }
          })
          measurements.push({
            case: label,
            metric: "p99 latency",
            unit: "µs",
            higherIsBetter: false,
            tether: ours.p99Micros,
            peers: { "postgres.js": rawResult.p99Micros, "@effect/sql-pg": theirs.p99Micros }
          })
          log(
            `pg-sql: ${label}: Tether SqlClient ${Math.round(ours.opsPerSecond)}, postgres.js ${
              Math.round(rawResult.opsPerSecond)
            }, @effect/sql-pg ${Math.round(theirs.opsPerSecond)} ops/s`
          )
        }
      }

      // pgbench -S: its select-only transactions with 8 clients; Tether runs the same lookup from 8 fibers.
      const seconds = quick ? 2 : 5
      const connection = ["-h", node.host, "-p", String(node.port), "-U", "postgres"]
      yield* Effect.promise(() => pgbench(["-i", "-s", "1", "-q", ...connection, "postgres"]))
      const out = yield* Effect.promise(() =>
        pgbench(["-S", "-c", String(CONNECTIONS), "-j", "2", "-T", String(seconds), ...connection, "postgres"])
      )
      const tps = Number(/tps = ([0-9.]+)/.exec(out)?.[1] ?? Number.NaN)
      const lookup = yield* effectLoop(
        (i) => tether`select abalance from pgbench_accounts where aid = ${(i % 100000) + 1}`,
        CONNECTIONS,
        millis
      )
      measurements.push({
        case: `pgbench -S workload, ${CONNECTIONS} clients`,
        metric: "throughput",
        unit: "ops/s",
        higherIsBetter: true,
        tether: lookup.opsPerSecond,
        peers: { "pgbench -S": tps }
      })
      log(`pg-sql: pgbench -S ${Math.round(tps)} tps; Tether SqlClient ${Math.round(lookup.opsPerSecond)} ops/s`)

      // Through PgBouncer (transaction mode).
      log("pg-sql: starting PgBouncer")
      const bouncer = yield* PgBouncer.make({ target: node, poolMode: "transaction", poolSize: CONNECTIONS })
      const viaBouncer = yield* PgSql.make({
        endpoints: [bouncer.url],
        user: "postgres",
        password: Redacted.make(bouncer.password),
        pgbouncer: "transaction",
        health: false,
        pool: { min: CONNECTIONS, max: CONNECTIONS },
        slowQueryThreshold: "1 minute"
      }).pipe(Effect.provide(reactivity))
      const rawBouncer = postgres(bouncer.url, {
        username: "postgres",
        password: bouncer.password,
        max: CONNECTIONS,
        prepare: false,
        fetch_types: false,
        onnotice: () => undefined
      })
      yield* Effect.addFinalizer(() => Effect.promise(() => rawBouncer.end({ timeout: 1 }).catch(() => undefined)))
      for (const workload of workloads) {
        const run = workload.name === "select 1"
          ? { tether: () => viaBouncer`select 1`, raw: () => rawBouncer`select 1` }
          : {
            tether: (i: number) => viaBouncer`select name from bench_items where id = ${(i % 10000) + 1}`,
            raw: (i: number) => rawBouncer`select name from bench_items where id = ${(i % 10000) + 1}`
          }
        const ours = yield* effectLoop(run.tether, 16, millis, measured)
        const theirs = yield* Effect.promise(() => promiseLoop(run.raw, 16, millis, measured))
        measurements.push({
          case: `through PgBouncer: ${workload.name}, concurrency 16`,
          metric: "throughput",
          unit: "ops/s",
          higherIsBetter: true,
          tether: ours.opsPerSecond,
          peers: { "postgres.js via PgBouncer": theirs.opsPerSecond }
        })
        log(
          `pg-sql: PgBouncer ${workload.name}: Tether ${Math.round(ours.opsPerSecond)}, postgres.js ${
            Math.round(theirs.opsPerSecond)
          } ops/s`
        )
      }
      notes.push(`PgBouncer ${bouncer.poolMode} mode, pool size ${bouncer.poolSize}.`)
    })

    await runScoped(program)
    return {
      tetherLabel: "Tether SqlClient",
      peers: ["postgres.js", "@effect/sql-pg", "pgbench -S", "postgres.js via PgBouncer"],
      measurements,
      notes: [
        `One PostgreSQL 15 server on loopback; every client holds ${CONNECTIONS} connections. "Tether SqlClient" is \`PgSql.make\` with default options (pipelined, 16 statements per connection), statements written as effect/sql tagged templates.`,
        "Targets: ≥ 1.0x of raw postgres.js and ≥ 0.9x of @effect/sql-pg at every concurrency; ≥ 0.8x of pgbench -S; ≥ 1.0x of postgres.js through the same PgBouncer.",
        ...notes
      ]
    }
  }
}
