/**
 * Runs one PostgreSQL client at one concurrency for a while, for profiling:
 *
 *   node --import tsx --cpu-prof --cpu-prof-dir=.cpuprofile bench/profile/pgSql.ts --impl PgSql --concurrency 16
 *   npx tsx bench/profile/pgSql.ts --impl postgres.js --concurrency 1 --seconds 3
 *
 * --impl is one of: PgSql, PgClient, postgres.js, @effect/sql-pg. Starts its own
 * PostgreSQL (testkit) and prints throughput for `select 1`.
 */
import { useTscTransform } from "../harness/transpile.ts"

const transform = useTscTransform()
const { Effect, Layer } = await import("effect")
const Reactivity = await import("effect/reactivity/Reactivity")
const { PgClient, PgSql } = await import("@tether/pg")
const EffectPg = await import("@effect/sql-pg/PgClient")
const { PostgresCluster } = await import("@tether/testkit")
const postgres = (await import("postgres")).default
const { effectLoop, promiseLoop, runScoped } = await import("../harness/loops.ts")

const args = process.argv.slice(2)
const flag = (name: string, fallback: string) => {
  const i = args.indexOf(`--${name}`)
  return i >= 0 && args[i + 1] !== undefined ? args[i + 1]! : fallback
}
const impl = flag("impl", "PgSql")
const concurrency = Number(flag("concurrency", "1"))
const millis = Number(flag("seconds", "3")) * 1000
const query = flag("query", "select 1")
const pipeline = Number(flag("pipeline", "16"))

await runScoped(Effect.gen(function*() {
  const cluster = yield* PostgresCluster.make({ replicas: 0 })
  const node = cluster.primary
  const url = `postgres://${node.host}:${node.port}/postgres`
  const reactivity = Layer.succeed(Reactivity.Reactivity)(yield* Reactivity.make)
  let result: { opsPerSecond: number; p99Micros: number }
  const cpu0 = process.cpuUsage()
  if (impl === "PgSql") {
    const sql = yield* PgSql.make({ endpoints: [url], user: "postgres", health: false, pool: { min: 8, max: 8 }, pipeline }).pipe(
      Effect.provide(reactivity)
    )
    result = yield* effectLoop(() => sql.unsafe(query), concurrency, millis, { warmupMillis: 500, latencies: true })
  } else if (impl === "PgClient") {
    const db = yield* PgClient.make({ endpoints: [url], user: "postgres", readFrom: "any", health: false, pool: { min: 8, max: 8 } })
    result = yield* effectLoop(() => db.unsafe(query), concurrency, millis, { warmupMillis: 500, latencies: true })
  } else if (impl === "@effect/sql-pg") {
    const sql = yield* EffectPg.make({ host: node.host, port: node.port, username: "postgres", database: "postgres", maxConnections: 8, minConnections: 8 }).pipe(
      Effect.provide(reactivity)
    )
    result = yield* effectLoop(() => sql.unsafe(query), concurrency, millis, { warmupMillis: 500, latencies: true })
  } else {
    const raw = postgres(url, { username: "postgres", max: 8, fetch_types: false })
    result = yield* Effect.promise(() => promiseLoop(() => raw.unsafe(query), concurrency, millis, { warmupMillis: 500, latencies: true }))
    yield* Effect.promise(() => raw.end({ timeout: 1 }))
  }
  const cpu = process.cpuUsage(cpu0)
  // Client CPU per statement (user + system, warm-up included in both): robust to a loaded machine.
  const ops = result.opsPerSecond * (millis / 1000) * ((millis + 500) / millis)
  console.log(
    `${impl} ${query} concurrency ${concurrency}: ${Math.round(result.opsPerSecond)} ops/s, p99 ${
      Math.round(result.p99Micros)
    } µs, client CPU ${((cpu.user + cpu.system) / ops).toFixed(1)} µs/op`
  )
}))
void transform
