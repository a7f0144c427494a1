/**
 * Where a `select 1` at concurrency 1 spends its time, layer by layer, each
 * layer's windows alternating with the others' (rotating order, medians):
 *
 *   raw postgres.js            `await sql.unsafe(q)` in an async loop
 *   + Effect                   one `Effect.callback` around the same call (the least an Effect client adds)
 *   + effect/sql               `SqlClient.make` over that callback (statement, span, compile)
 *   PgSql                      Tether's client (+ routing, pool, deadlines, close watch)
 *   @effect/sql-pg             Effect's own client (on the `pg` driver)
 *
 *   npx tsx bench/profile/pgLayers.ts [--rounds 7] [--millis 1500] [--concurrency 1] [--query select1|indexed]
 *   npx tsx bench/profile/pgLayers.ts --bouncer --concurrency 16 --query indexed
 *
 * `--query indexed` is the pg-sql suite's primary-key lookup (one parameter). `--bouncer` runs
 * every layer through a PgBouncer in transaction mode (pool size 8): postgres.js with
 * `prepare: false`, PgSql with `pgbouncer: "transaction"` (and no `@effect/sql-pg`).
 * Prints ops/s and client CPU (µs per statement) per layer, and each layer's ratio to raw
 * postgres.js (median of the rounds' ratios).
 */
import type * as EffectTypes from "effect/Effect"
import { useTscTransform } from "../harness/transpile.ts"

useTscTransform()
const { Effect, Redacted } = await import("effect")
const SqlClient = await import("effect/sql/SqlClient")
const { SqlError } = await import("effect/sql/SqlError")
const SqlErrors = await import("effect/sql/SqlError")
const { PgSql } = await import("@tether/pg")
const EffectPg = await import("@effect/sql-pg/PgClient")
const { PgBouncer } = await import("@tether/testkit")
const postgres = (await import("postgres")).default
const { effectLoop, promiseLoop, runScoped } = await import("../harness/loops.ts")
const PgBench = await import("../harness/postgres.ts")
const { flag, median, rotatingRounds } = await import("../harness/profile.ts")

const rounds = Number(flag("rounds", "7"))
const millis = Number(flag("millis", "1500"))
const concurrency = Number(flag("concurrency", "1"))
const indexed = flag("query", "select1") === "indexed"
const bouncer = process.argv.includes("--bouncer")

await runScoped(Effect.gen(function*() {
  const { effectSql: effectPg, node, raw: direct, reactivity, url: directUrl } = yield* PgBench.startPostgres(
    console.log,
    "pgLayers"
  )
  const viaBouncer = bouncer
    ? yield* PgBouncer.make({ target: node, poolMode: "transaction", poolSize: PgBench.CONNECTIONS })
    : undefined
  const url = viaBouncer?.url ?? directUrl
  const password = viaBouncer?.password
  const raw = viaBouncer === undefined ? direct : postgres(url, {
    username: "postgres",
    password,
    max: PgBench.CONNECTIONS,
    prepare: false,
    fetch_types: false
  })
  if (viaBouncer !== undefined) yield* Effect.addFinalizer(() => Effect.promise(() => raw.end({ timeout: 1 })))
  const text = indexed ? "select name from bench_items where id = $1" : "select 1"
  const { itemId } = PgBench

  /**
   * The least an Effect client of postgres.js does: suspend the fiber until the promise settles.
   * Sent as PgSql sends it (`unsafe` with `prepare` as configured: no parameters, the simple protocol).
   */
  const PREPARE = { prepare: !bouncer }
  const viaCallback = (text: string, params: ReadonlyArray<unknown> = []) =>
    Effect.callback<ReadonlyArray<unknown>, InstanceType<typeof SqlError>>((resume) => {
      raw.unsafe(text, params as Array<never>, PREPARE).then(
        (rows) => resume(Effect.succeed(rows)),
        (cause: unknown) =>
          resume(Effect.fail(new SqlError({ reason: new SqlErrors.UnknownError({ cause, message: "failed", operation: "execute" }) })))
      )
    })
  const connection = {
    execute: viaCallback,
    executeRaw: viaCallback,
    executeValues: viaCallback,
    executeUnprepared: viaCallback,
    executeValuesUnprepared: viaCallback,
    executeStream: () => {
      throw new Error("not used here")
    }
  } as never
  const overRaw = yield* SqlClient.make({
    driver: "pg",
    acquirer: Effect.succeed(connection),
    compiler: EffectPg.makeCompiler(),
    spanAttributes: [["db.system.name", "postgresql"]]
  }).pipe(Effect.provide(reactivity))
  const sql = yield* PgSql.make({
    endpoints: [url],
    user: "postgres",
    password: password === undefined ? undefined : Redacted.make(password),
    pgbouncer: bouncer ? "transaction" : undefined,
    health: false,
    pool: { min: PgBench.CONNECTIONS, max: PgBench.CONNECTIONS }
  }).pipe(Effect.provide(reactivity))
  // The statements as each layer's users write them: tagged templates where the layer has them.
  const layers: Array<[string, () => EffectTypes.Effect<{ opsPerSecond: number }, unknown>]> = [
    ["raw postgres.js", () =>
      Effect.promise(() =>
        promiseLoop((i) => indexed ? raw`select name from bench_items where id = ${itemId(i)}` : raw`select 1`, concurrency, millis)
      )],
    ["+ Effect", () => effectLoop((i) => viaCallback(text, indexed ? [itemId(i)] : []), concurrency, millis)],
    ["+ effect/sql", () =>
      effectLoop((i) => indexed ? overRaw`select name from bench_items where id = ${itemId(i)}` : overRaw`select 1`, concurrency, millis)],
    ["PgSql", () =>
      effectLoop((i) => indexed ? sql`select name from bench_items where id = ${itemId(i)}` : sql`select 1`, concurrency, millis)],
    ...(bouncer ? [] : [[
      "@effect/sql-pg",
      () =>
        effectLoop(
          (i: number) => indexed ? effectPg`select name from bench_items where id = ${itemId(i)}` : effectPg`select 1`,
          concurrency,
          millis
        )
    ] as [string, () => EffectTypes.Effect<{ opsPerSecond: number }, unknown>]])
  ]
  for (const [, run] of layers) yield* run()
  const { cpu, ops, ratios } = yield* rotatingRounds(layers, { rounds, millis, baseline: "raw postgres.js", cpuScale: 1 })
  console.log(
    `${indexed ? "indexed read" : "select 1"}${bouncer ? " through PgBouncer" : ""}, concurrency ${concurrency}: ${rounds} rounds of ${millis} ms, medians`
  )
  console.log("layer                  ops/s   CPU µs/op   vs raw")
  for (const [name] of layers) {
    console.log(
      `${name.padEnd(18)} ${Math.round(median(ops[name]!)).toString().padStart(9)}   ${
        median(cpu[name]!).toFixed(1).padStart(8)
      }   ${median(ratios[name]!).toFixed(2).padStart(6)}`
    )
  }
}))
process.exit(0)
