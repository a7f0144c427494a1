/**
 * What the `pg` and `pg-sql` suites share: one real PostgreSQL server (from
 * the testkit) with the two peers on it (raw postgres.js and `@effect/sql-pg`
 * 4, `CONNECTIONS` connections each), the throughput
 * and p99 rows of one case, and the row against `pgbench -S`.
 */
import * as EffectPg from "@effect/sql-pg/PgClient"
import { PostgresCluster } from "@tether/testkit"
import { execFile } from "node:child_process"
import { Effect, Layer } from "effect"
import * as Reactivity from "effect/reactivity/Reactivity"
import postgres from "postgres"
import { effectLoop, type LoopResult } from "./loops.ts"
import * as requirements from "./requirements.ts"
import type { Measurement } from "./types.ts"

/** Connections every client holds. */
export const CONNECTIONS = 8
/** Every compared loop: half a second of warm-up, then a window with latencies. */
export const measured = { warmupMillis: 500, latencies: true }

const PGBENCH_DIR = "/usr/lib/postgresql/15/bin"
export const pgbenchRequirement = requirements.command("pgbench", { extraDirs: [PGBENCH_DIR] })

const pgbench = (args: ReadonlyArray<string>) =>
  new Promise<string>((resolve, reject) =>
    execFile(`${PGBENCH_DIR}/pgbench`, [...args], { timeout: 120_000 }, (error, stdout, stderr) =>
      error ? reject(new Error(`pgbench failed: ${stderr || error.message}`)) : resolve(stdout))
  )

/**
 * Starts one PostgreSQL server, creates the indexed reads' table (`bench_items`: 10,000 rows, see
 * {@link itemId}) and opens the two peers on it: raw postgres.js (`max: CONNECTIONS`, closed with
 * the scope) and `@effect/sql-pg`.
 */
export const startPostgres = (log: (line: string) => void, suite: string) =>
  Effect.gen(function*() {
    log(`${suite}: starting PostgreSQL`)
    const cluster = yield* PostgresCluster.make({ replicas: 0 })
    const node = cluster.primary
    const url = `postgres://${node.host}:${node.port}/postgres`
    const reactivity = Layer.succeed(Reactivity.Reactivity)(yield* Reactivity.make)
    const raw = postgres(url, { username: "postgres", max: CONNECTIONS, fetch_types: false, onnotice: () => undefined })
    yield* Effect.addFinalizer(() => Effect.promise(() => raw.end({ timeout: 1 }).catch(() => undefined)))
    yield* Effect.promise(() => raw`create table if not exists bench_items (id int primary key, name text not null)`)
    yield* Effect.promise(() =>
      raw`insert into bench_items select g, 'item ' || g from generate_series(1, 10000) g on conflict do nothing`
    )
    const effectSql = yield* EffectPg.make({
      host: node.host,
      port: node.port,
      username: "postgres",
      database: "postgres",
      maxConnections: CONNECTIONS,
      minConnections: CONNECTIONS
    }).pipe(Effect.provide(reactivity))
    return { node, url, reactivity, raw, effectSql }
  })

/** The key the i-th indexed read looks up. */
export const itemId = (i: number) => (i % 10000) + 1

/** The two rows of one compared case: throughput and p99 latency, Tether against each peer. */
export const throughputAndP99 = (
  label: string,
  ours: LoopResult,
  peers: Readonly<Record<string, LoopResult>>
): ReadonlyArray<Measurement> => {
  const each = (pick: (r: LoopResult) => number) =>
    Object.fromEntries(Object.entries(peers).map(([name, result]) => [name, pick(result)]))
  return [
    {
      case: label,
      metric: "throughput",
      unit: "ops/s",
      higherIsBetter: true,
      tether: ours.opsPerSecond,
      peers: each((r) => r.opsPerSecond)
    },
    { case: label, metric: "p99 latency", unit: "µs", higherIsBetter: false, tether: ours.p99Micros, peers: each((r) => r.p99Micros) }
  ]
}

/** `pgbench -i` then `pgbench -S` (select-only) with `CONNECTIONS` clients on `node`: its tps. */
const pgbenchSelectOnly = (node: { readonly host: string; readonly port: number }, quick: boolean) =>
  Effect.gen(function*() {
    const seconds = quick ? 2 : 5
    const connection = ["-h", node.host, "-p", String(node.port), "-U", "postgres"]
    yield* Effect.promise(() => pgbench(["-i", "-s", "1", "-q", ...connection, "postgres"]))
    const out = yield* Effect.promise(() =>
      pgbench(["-S", "-c", String(CONNECTIONS), "-j", "2", "-T", String(seconds), ...connection, "postgres"])
    )
    return Number(/tps = ([0-9.]+)/.exec(out)?.[1] ?? Number.NaN)
  })

/**
 * `pgbench -S` on `node`, then `lookup(aid)` (the same primary-key read of
 * `pgbench_accounts`) from `CONNECTIONS` fibers for `millis`: the row (peer
 * `peer`) and both rates.
 */
export const versusPgbench = <E, R>(
  node: { readonly host: string; readonly port: number },
  options: { readonly quick: boolean; readonly millis: number; readonly peer: string },
  lookup: (aid: number) => Effect.Effect<unknown, E, R>
) =>
  Effect.gen(function*() {
    const tps = yield* pgbenchSelectOnly(node, options.quick)
    const ours = (yield* effectLoop((i) => lookup((i % 100000) + 1), CONNECTIONS, options.millis)).opsPerSecond
    const row: Measurement = {
      case: `pgbench -S workload, ${CONNECTIONS} clients`,
      metric: "throughput",
      unit: "ops/s",
      higherIsBetter: true,
      tether: ours,
      peers: { [options.peer]: tps }
    }
    return { row, tps, ours }
  })
