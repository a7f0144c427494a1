import { describe, expect, layer } from "@effect/vitest"
import { PgBouncer, PostgresCluster } from "@tether/testkit"
import { Effect, Layer, Redacted, Schedule } from "effect"
import * as Reactivity from "effect/reactivity/Reactivity"
import * as SqlClient from "effect/sql/SqlClient"
import { PgSql } from "../src/index.ts"
import { sharedSuite } from "./sqlSuite.ts"
import { expectCleanAudit, synchronous, writeLoad } from "./writeLoad.ts"

/**
 * The same effect/sql suite through a real PgBouncer in transaction pooling mode, with fewer
 * server connections (3) than client connections (4 pipelined + exclusive ones): consecutive
 * statements of one client connection land on different server sessions, so anything that
 * relied on session state (named prepared statements, `SET`, LISTEN) would break here.
 */
const Bouncer = Layer.unwrap(Effect.gen(function*() {
  const cluster = yield* PostgresCluster.PostgresCluster
  return PgBouncer.layer({ target: cluster.primary, poolMode: "transaction", poolSize: 3 })
})).pipe(Layer.provideMerge(PostgresCluster.layer({ replicas: 0 })))

const Sql = Layer.unwrap(Effect.gen(function*() {
  const cluster = yield* PostgresCluster.PostgresCluster
  const bouncer = yield* PgBouncer.PgBouncer
  return PgSql.layer({
    endpoints: [bouncer.url],
    user: "postgres",
    password: Redacted.make(bouncer.password),
    pgbouncer: "transaction",
    listenEndpoints: [`postgres://${cluster.primary.host}:${cluster.primary.port}/postgres`],
    health: { interval: "250 millis", timeout: "2 seconds" },
    queryTimeout: "5 seconds",
    pool: { max: 4 }
  })
}))

layer(Layer.provideMerge(Sql, Bouncer), { excludeTestServices: true })("PgSql through PgBouncer (transaction mode)", (it) => {
  sharedSuite(it)

  describe("what transaction pooling breaks", () => {
    it.effect("many distinct parameterized statements, concurrently: no named prepared statement is relied on", () =>
      Effect.gen(function*() {
        const sql = yield* SqlClient.SqlClient
        const results = yield* Effect.forEach(
          Array.from({ length: 120 }, (_, i) => i),
          (i) =>
            // 12 distinct statement texts, each with parameters.
            sql.unsafe<{ n: number }>(`select $1::int + ${i % 12} as n`, [i]),
          { concurrency: 24 }
        )
        expect(results.map((r) => r[0]!.n)).toEqual(Array.from({ length: 120 }, (_, i) => i + (i % 12)))
      }))

    it.effect("read-only reads and writes interleaved across few server sessions: no session state leaks", () =>
      Effect.gen(function*() {
        const sql = yield* SqlClient.SqlClient
        yield* sql`create table if not exists bounced (id int primary key)`
        const ops = Array.from({ length: 80 }, (_, i) =>
          i % 2 === 0
            ? Effect.as(sql`insert into bounced values (${i}) on conflict do nothing`, "ok")
            : Effect.map(
              PgSql.readReplica(sql<{ ro: string }>`select current_setting('transaction_read_only') as ro`),
              (rows) => rows[0]!.ro
            ))
        const results = yield* Effect.all(ops, { concurrency: 20 })
        expect(results.filter((r, i) => i % 2 === 0 && r !== "ok")).toEqual([])
        expect(results.filter((_, i) => i % 2 === 1)).toEqual(Array.from({ length: 40 }, () => "on"))
        // A plain statement after all that runs read-write.
        const [row] = yield* sql<{ ro: string }>`select current_setting('transaction_read_only') as ro`
        expect(row!.ro).toBe("off")
      }))

    it.effect("transactions with SET LOCAL interleaved with plain statements: no setting leaks to another statement", () =>
      Effect.gen(function*() {
        const sql = yield* SqlClient.SqlClient
        const ops = Array.from({ length: 90 }, (_, i) =>
          i % 3 === 0
            // A transaction changes settings for itself only (what transaction pooling allows).
            ? sql.withTransaction(Effect.gen(function*() {
              yield* sql.unsafe(`set local application_name = 'tx_${i}'`)
              yield* sql`set local statement_timeout = '1234ms'`
              const [row] = yield* sql<{ app: string; timeout: string }>`select current_setting('application_name') as app,
                current_setting('statement_timeout') as timeout`
              return `${row!.app}/${row!.timeout}`
            }))
            : Effect.map(
              sql<{ app: string; timeout: string }>`select current_setting('application_name') as app,
                current_setting('statement_timeout') as timeout`,
              (rows) => `${rows[0]!.app}/${rows[0]!.timeout}`
            ))
        const results = yield* Effect.all(ops, { concurrency: 24 })
        results.forEach((result, i) => {
          if (i % 3 === 0) expect(result).toBe(`tx_${i}/1234ms`)
          else expect(result.startsWith("tx_") || result.endsWith("/1234ms")).toBe(false)
        })
      }))

    it.effect("PgBouncer's pools stay within their size while the client pipelines", () =>
      Effect.gen(function*() {
        const bouncer = yield* PgBouncer.PgBouncer
        const sql = yield* SqlClient.SqlClient
        yield* Effect.forEach(Array.from({ length: 64 }, (_, i) => i), (i) => sql`select ${i}::int, pg_sleep(0.005)`, {
          concurrency: "unbounded"
        })
        const pools = yield* bouncer.admin("SHOW POOLS")
        const pool = pools.find((p) => p["database"] === "postgres" && p["user"] === "postgres")!
        expect(Number(pool["sv_active"]) + Number(pool["sv_idle"]) + Number(pool["sv_used"])).toBeLessThanOrEqual(3)
      }))
  })
})

const FailoverBouncer = Layer.unwrap(Effect.gen(function*() {
  const cluster = yield* PostgresCluster.PostgresCluster
  return PgBouncer.layer({ target: cluster.primary, poolMode: "transaction", poolSize: 4 })
})).pipe(
  Layer.provideMerge(PostgresCluster.layer({ replicas: 1, settings: { synchronous_commit: "remote_apply" } }))
)

layer(FailoverBouncer, { excludeTestServices: true })("PgSql through PgBouncer across a failover", (it) => {
  it.effect("primary killed under write load, replica promoted, PgBouncer retargeted: every write accounted for", () =>
    Effect.gen(function*() {
      const cluster = yield* PostgresCluster.PostgresCluster
      const bouncer = yield* PgBouncer.PgBouncer
      const client = yield* PgSql.make({
        endpoints: [bouncer.url],
        user: "postgres",
        password: Redacted.make(bouncer.password),
        pgbouncer: "transaction",
        health: { interval: "250 millis", timeout: "2 seconds" },
        queryTimeout: "2 seconds",
        pool: { max: 4 }
      })
      const run = <A, E>(effect: Effect.Effect<A, E, SqlClient.SqlClient>) =>
        Effect.provideService(effect, SqlClient.SqlClient, client)
      yield* run(synchronous)
      yield* client`create table if not exists bounced_writes (id int primary key)`

      // Four writers, pipelined on shared connections to PgBouncer.
      const load = yield* writeLoad(client, "bounced_writes")
      // Writes are flowing (counted, not timed) before the primary dies.
      yield* load.size.pipe(Effect.repeat({ until: (n) => n > 20, schedule: Schedule.spaced("50 millis"), times: 400 }))
      const replica = cluster.replicas[0]!
      yield* cluster.kill(cluster.primary)
      yield* cluster.promote(replica)
      yield* bouncer.retarget(replica)
      yield* load.mark
      yield* load.committedAfterMark.pipe(
        Effect.repeat({ until: (n) => n > 10, schedule: Schedule.spaced("100 millis"), times: 300 })
      )
      const counts = yield* expectCleanAudit(load, { committed: 30, afterMark: 10 })
      yield* Effect.logInfo(`PgSql through PgBouncer, failover: ${JSON.stringify(counts)}`)
    }).pipe(Effect.provide(Reactivity.layer), Effect.scoped))
})
