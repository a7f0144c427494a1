import { describe, expect, layer } from "@effect/vitest"
import { PgBouncer, PostgresCluster } from "@tether/testkit"
import { Effect, Layer, Redacted } from "effect"
import * as SqlClient from "effect/sql/SqlClient"
import { PgSql } from "../src/index.ts"
import { sharedSuite } from "./sqlSuite.ts"

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
