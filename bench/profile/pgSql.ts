/**
 * Runs one PostgreSQL client at one concurrency for a while, for profiling:
 *
 *   node --import tsx --cpu-prof --cpu-prof-dir=.cpuprofile bench/profile/pgSql.ts --impl PgSql --concurrency 16
 *   npx tsx bench/profile/pgSql.ts --impl postgres.js --concurrency 1 --seconds 3
 *   npx tsx bench/profile/pgSql.ts --impl PgSql --concurrency 16 --profile /tmp/pgsql.cpuprofile
 *
 * --impl is one of: PgSql, PgClient, postgres.js, @effect/sql-pg. Starts its own
 * PostgreSQL (testkit) and prints throughput for `select 1`.
 */
import type * as EffectTypes from "effect/Effect"
import { useTscTransform } from "../harness/transpile.ts"

const transform = useTscTransform()
const { Effect, Layer } = await import("effect")
const Reactivity = await import("effect/reactivity/Reactivity")
const { PgClient, PgSql } = await import("@tether/pg")
const EffectPg = await import("@effect/sql-pg/PgClient")
const { PostgresCluster } = await import("@tether/testkit")
const postgres = (await import("postgres")).default
const { effectLoop, promiseLoop, runScoped } = await import("../harness/loops.ts")

const { flag } = await import("../harness/profile.ts")
const impl = flag("impl", "PgSql")
const concurrency = Number(flag("concurrency", "1"))
const millis = Number(flag("seconds", "3")) * 1000
const query = flag("query", "select 1")
const pipeline = Number(flag("pipeline", "16"))
/** `--profile out.cpuprofile`: a CPU profile of the measured run only (no start-up, no warm-up). */
const profileTo = flag("profile", "")

const inspector = await import("node:inspector/promises")
const fs = await import("node:fs")
const session = new inspector.Session()
const startProfile = async () => {
  if (profileTo === "") return
  session.connect()
  await session.post("Profiler.enable")
  await session.post("Profiler.setSamplingInterval", { interval: 100 })
  await session.post("Profiler.start")
}
const stopProfile = async () => {
  if (profileTo === "") return
  const { profile } = await session.post("Profiler.stop")
  fs.writeFileSync(profileTo, JSON.stringify(profile))
  session.disconnect()
}

await runScoped(Effect.gen(function*() {
  const cluster = yield* PostgresCluster.make({ replicas: 0 })
  const node = cluster.primary
  const url = `postgres://${node.host}:${node.port}/postgres`
  const reactivity = Layer.succeed(Reactivity.Reactivity)(yield* Reactivity.make)
  // A warm-up run (connections open, statements prepared, modules loaded, JIT warm), then the
  // measured run; client CPU (user + system) is divided by the statements the measured run started.
  let started = 0
  const measure = (
    run: (millis: number) => EffectTypes.Effect<{ opsPerSecond: number; p99Micros: number }, unknown>
  ) =>
    Effect.gen(function*() {
      yield* run(1_000)
      started = 0
      yield* Effect.promise(startProfile)
      const cpu0 = process.cpuUsage()
      const result = yield* run(millis)
      const cpu = process.cpuUsage(cpu0)
      yield* Effect.promise(stopProfile)
      return { result, cpu }
    })
  const options = { latencies: true }
  let measured: { result: { opsPerSecond: number; p99Micros: number }; cpu: NodeJS.CpuUsage }
  if (impl === "PgSql") {
    const sql = yield* PgSql.make({ endpoints: [url], user: "postgres", health: false, pool: { min: 8, max: 8 }, pipeline }).pipe(
      Effect.provide(reactivity)
    )
    measured = yield* measure((ms) => effectLoop(() => (started++, sql.unsafe(query)), concurrency, ms, options))
  } else if (impl === "PgClient") {
    const db = yield* PgClient.make({ endpoints: [url], user: "postgres", readFrom: "any", health: false, pool: { min: 8, max: 8 } })
    measured = yield* measure((ms) => effectLoop(() => (started++, db.unsafe(query)), concurrency, ms, options))
  } else if (impl === "@effect/sql-pg") {
    const sql = yield* EffectPg.make({ host: node.host, port: node.port, username: "postgres", database: "postgres", maxConnections: 8, minConnections: 8 }).pipe(
      Effect.provide(reactivity)
    )
    measured = yield* measure((ms) => effectLoop(() => (started++, sql.unsafe(query)), concurrency, ms, options))
  } else {
    const raw = postgres(url, { username: "postgres", max: 8, fetch_types: false })
    measured = yield* measure((ms) =>
      Effect.promise(() => promiseLoop(() => (started++, raw.unsafe(query)), concurrency, ms, options))
    )
    yield* Effect.promise(() => raw.end({ timeout: 1 }))
  }
  const { cpu, result } = measured
  const ops = Math.max(1, started)
  console.log(
    `${impl} ${query} concurrency ${concurrency}: ${Math.round(result.opsPerSecond)} ops/s, p99 ${
      Math.round(result.p99Micros)
    } µs, client CPU ${((cpu.user + cpu.system) / ops).toFixed(1)} µs/op`
  )
}))
void transform
