import { describe, expect, layer } from "@effect/vitest"
import { Identity } from "@tether/core"
import { PostgresCluster } from "@tether/testkit"
import { Effect, Exit, Layer, Logger, Redacted, References, Schedule, Schema } from "effect"
import * as Reactivity from "effect/reactivity/Reactivity"
import * as Migrator from "effect/sql/Migrator"
import * as SqlClient from "effect/sql/SqlClient"
import * as SqlResolver from "effect/sql/SqlResolver"
import * as SqlSchema from "effect/sql/SqlSchema"
import { PgSql } from "../src/index.ts"
import { migrationsDir, sharedSuite } from "./sqlSuite.ts"
import { expectCleanAudit, synchronous, writeLoad } from "./writeLoad.ts"

const urlOf = (node: PostgresCluster.Node) => `postgres://${node.host}:${node.port}/postgres`

const optionsFor = (cluster: PostgresCluster.Cluster, options?: Partial<PgSql.Options>): PgSql.Options => ({
  endpoints: cluster.nodes.map((node) => ({ url: urlOf(node), role: node.role })),
  user: "postgres",
  health: { interval: "250 millis", timeout: "2 seconds" },
  queryTimeout: "2 seconds",
  pool: { max: 4 },
  ...options
})

const Cluster = PostgresCluster.layer({ replicas: 1, settings: { synchronous_commit: "remote_apply" } })

const Sql = Layer.unwrap(Effect.gen(function*() {
  const cluster = yield* PostgresCluster.PostgresCluster
  return PgSql.layer(optionsFor(cluster))
}))

class Reporter extends Identity.Service<Reporter>()("test/Reporter") {}

layer(Layer.provideMerge(Sql, Cluster), { excludeTestServices: true })("PgSql on a primary and a replica", (it) => {
  it.effect("setup: synchronous replication", () => synchronous)

  sharedSuite(it)

  describe("routing", () => {
    it.effect("statements go to the primary; readReplica reads go to the replica and see replicated rows", () =>
      Effect.gen(function*() {
        const sql = yield* SqlClient.SqlClient
        yield* synchronous
        yield* sql`create table if not exists routed (id int primary key)`
        yield* sql`insert into routed values (${1}) on conflict do nothing`
        for (let i = 0; i < 5; i++) {
          const [primary] = yield* sql<{ replica: boolean }>`select pg_is_in_recovery() as replica`
          expect(primary!.replica).toBe(false)
          const [replica] = yield* PgSql.readReplica(sql<{ replica: boolean }>`select pg_is_in_recovery() as replica`)
          expect(replica!.replica).toBe(true)
        }
        const rows = yield* PgSql.readReplica(sql<{ id: number }>`select id from routed where id = 1`)
        expect(rows).toEqual([{ id: 1 }])
      }))

    it.effect("SqlResolver/SqlSchema declared readOnly read from the replica; writes and transactions stay on the primary", () =>
      Effect.gen(function*() {
        const cluster = yield* PostgresCluster.PostgresCluster
        const sql = yield* SqlClient.SqlClient
        yield* synchronous
        yield* sql`create table if not exists declared (id int primary key, name text not null)`
        yield* sql`truncate declared`
        yield* sql`insert into declared select g, 'n' || g from generate_series(1, 20) g`
        const replicaPort = cluster.replicas[0]!.port
        const primaryPort = cluster.primary.port
        const Row = Schema.Struct({ id: Schema.Number, name: Schema.String, port: Schema.Number, replica: Schema.Boolean })
        const batches: Array<number> = []
        // One statement per batch; it reports the server it ran on with every row.
        const byId = PgSql.readOnly(SqlResolver.findById)({
          Id: Schema.Number,
          Result: Row,
          ResultId: (row) => row.id,
          execute: (ids) => {
            batches.push(ids.length)
            return sql`select id, name, inet_server_port() as port, pg_is_in_recovery() as replica
              from declared where id in ${sql.in(ids)}`
          }
        })
        const lookup = SqlResolver.request(byId)
        const found = yield* Effect.forEach([1, 2, 3, 4, 5, 6, 7, 8], (id) => lookup(id), { concurrency: "unbounded" })
        expect(found.map((r) => r.name)).toEqual(["n1", "n2", "n3", "n4", "n5", "n6", "n7", "n8"])
        // Replicated rows, read on the replica, in one batch.
        expect(found.every((r) => r.replica && r.port === replicaPort)).toBe(true)
        expect(batches).toEqual([8])

        const byName = PgSql.readOnly(SqlSchema.findAll)({
          Request: Schema.String,
          Result: Row,
          execute: (name) =>
            sql`select id, name, inet_server_port() as port, pg_is_in_recovery() as replica from declared where name = ${name}`
        })
        const [n3] = yield* byName("n3")
        expect(n3).toMatchObject({ id: 3, replica: true, port: replicaPort })

        // Not declared read-only: the same read goes to the primary.
        const plain = SqlSchema.findAll({
          Request: Schema.String,
          Result: Row,
          execute: (name) =>
            sql`select id, name, inet_server_port() as port, pg_is_in_recovery() as replica from declared where name = ${name}`
        })
        expect((yield* plain("n3"))[0]).toMatchObject({ replica: false, port: primaryPort })

        // A write declared through SqlSchema.void goes to the primary (a replica would refuse it).
        const insert = SqlSchema.void({
          Request: Schema.Struct({ id: Schema.Number, name: Schema.String }),
          execute: (row) => sql`insert into declared ${sql.insert(row)}`
        })
        yield* insert({ id: 21, name: "n21" })
        // Synchronous replication: the replica applied it, and the declared read sees it there.
        const [n21] = yield* byName("n21")
        expect(n21).toMatchObject({ id: 21, replica: true, port: replicaPort })

        // Inside withTransaction the declared reads join the transaction on the primary: they see its
        // uncommitted row, which the replica cannot.
        const exit = yield* Effect.exit(sql.withTransaction(Effect.gen(function*() {
          yield* insert({ id: 22, name: "n22" })
          const viaResolver = yield* lookup(22)
          expect(viaResolver).toMatchObject({ id: 22, replica: false, port: primaryPort })
          const [viaSchema] = yield* byName("n22")
          expect(viaSchema).toMatchObject({ id: 22, replica: false, port: primaryPort })
          return yield* Effect.fail("roll back" as const)
        })))
        expect(Exit.isFailure(exit)).toBe(true)
        expect(yield* byName("n22")).toEqual([])
        // And outside again, declared reads are back on the replica.
        expect((yield* lookup(4)).port).toBe(replicaPort)
      }))

    it.effect("a slow statement is logged (text and duration, never a parameter value) once; a fast one is not", () =>
      Effect.gen(function*() {
        const cluster = yield* PostgresCluster.PostgresCluster
        const lines: Array<string> = []
        const logger = Logger.make<unknown, void>((options) => {
          lines.push(`${String(options.message)} ${JSON.stringify(options.fiber.getRef(References.CurrentLogAnnotations))}`)
        })
        yield* Effect.gen(function*() {
          const client = yield* PgSql.make(optionsFor(cluster, { slowQueryThreshold: "50 millis", name: "slowlog" }))
          const secret = "card-4111-1111-1111-1111"
          yield* client`select pg_sleep(0.1), ${secret}::text as card`
          yield* client`select ${secret}::text as fast`
          // The log is written by a background fiber: wait (by count) until it appears.
          yield* Effect.sync(() => lines.filter((l) => l.includes("slow statement") && l.includes("pg_sleep")).length).pipe(
            Effect.repeat({ until: (n) => n > 0, schedule: Schedule.spaced("50 millis"), times: 200 })
          )
          // Only the sleeping statement must be logged (a loaded machine may also slow the fast one down).
          const slow = lines.filter((l) => l.includes("slow statement") && l.includes("pg_sleep"))
          expect(slow).toHaveLength(1)
          expect(slow[0]).toContain("select pg_sleep(0.1), $1::text as card")
          expect(slow[0]).toContain("durationMillis")
          for (const line of lines) expect(line).not.toContain(secret)
        }).pipe(Effect.provide(Reactivity.layer), Effect.scoped, Effect.provide(Logger.layer([logger])))
      }))

    it.effect("pipelining fills one connection before opening the next: 16 statements at once share one backend, the 17th opens a second", () =>
      Effect.gen(function*() {
        const cluster = yield* PostgresCluster.PostgresCluster
        yield* Effect.gen(function*() {
          const client = yield* PgSql.make(optionsFor(cluster, { name: "fill", pipeline: 16, health: false }))
          // One connection open (and idle) first.
          yield* client`select 1`
          const backends = (n: number) =>
            Effect.forEach(
              Array.from({ length: n }),
              () => client<{ pid: number }>`select pg_backend_pid() as pid, pg_sleep(0.05)`,
              { concurrency: "unbounded" }
            ).pipe(Effect.map((results) => new Set(results.map((rows) => rows[0]!.pid)).size))
          expect(yield* backends(16)).toBe(1)
          expect(yield* backends(17)).toBe(2)
        }).pipe(Effect.provide(Reactivity.layer), Effect.scoped)
      }))

    it.effect("a pipelined connection killed mid-flight: each write is committed, failed, or outcome-unknown — never lost", () =>
      Effect.gen(function*() {
        const sql = yield* SqlClient.SqlClient
        yield* sql`create table if not exists pipelined (id int primary key)`
        yield* sql`truncate pipelined`
        const outcomes = new Map<number, "committed" | "unknown" | "failed">()
        // Writes pipelined on shared connections; each holds its backend 50 ms.
        const writes = Effect.forEach(
          Array.from({ length: 48 }, (_, i) => i),
          (id) =>
            Effect.result(sql`insert into pipelined select ${id} from pg_sleep(0.05)`).pipe(
              Effect.map((result) => {
                if (result._tag === "Success") outcomes.set(id, "committed")
                else {
                  const cause = result.failure.reason.cause as { _tag?: string } | undefined
                  outcomes.set(id, cause?._tag === "PgOutcomeUnknown" ? "unknown" : "failed")
                }
              })
            ),
          { concurrency: "unbounded", discard: true }
        )
        const killer = Effect.gen(function*() {
          // Wait (polling, no wall-clock bound) until inserts are running, then terminate their backends
          // from a session of its own (a transaction's).
          yield* sql.withTransaction(sql<{ n: number }>`select count(*)::int as n from pg_stat_activity
              where state = 'active' and query like 'insert into pipelined%'`).pipe(
            Effect.repeat({ until: (rows) => rows[0]!.n > 0, schedule: Schedule.spaced("5 millis"), times: 2000 })
          )
          yield* sql.withTransaction(
            sql`select pg_terminate_backend(pid) from pg_stat_activity
                where pid <> pg_backend_pid() and query like 'insert into pipelined%'`
          )
        })
        yield* Effect.all([writes, killer], { concurrency: "unbounded", discard: true })
        const rows = yield* sql<{ id: number }>`select id from pipelined`
        const stored = new Set(rows.map((r) => r.id))
        const lost = [...outcomes].filter(([id, o]) => o === "committed" && !stored.has(id))
        const phantom = [...outcomes].filter(([id, o]) => o === "failed" && stored.has(id))
        expect(outcomes.size).toBe(48)
        expect(lost).toEqual([])
        expect(phantom).toEqual([])
        const unknown = [...outcomes.values()].filter((o) => o === "unknown").length
        // The kill reached statements in flight: they are reported as outcome-unknown, not as failures.
        expect(unknown).toBeGreaterThan(0)
        // And the client recovered: the next statements run on fresh connections.
        expect((yield* sql<{ n: number }>`select 1 as n`)[0]!.n).toBe(1)
      }))

    it.effect("as(Identity): statements run on connections logged in as the identity", () =>
      Effect.gen(function*() {
        const cluster = yield* PostgresCluster.PostgresCluster
        const sql = yield* SqlClient.SqlClient
        const reporter = Identity.make(cluster.passwordUser.user, Redacted.make(cluster.passwordUser.password), {
          label: "reporter"
        })
        const whoami = sql<{ who: string }>`select current_user as who`
        const [me] = yield* whoami
        expect(me!.who).toBe("postgres")
        const [them] = yield* PgSql.as(Reporter)(whoami).pipe(Effect.provideService(Reporter, reporter))
        expect(them!.who).toBe(cluster.passwordUser.user)
        const [inTx] = yield* PgSql.as(Reporter)(sql.withTransaction(whoami)).pipe(
          Effect.provideService(Reporter, reporter)
        )
        expect(inTx!.who).toBe(cluster.passwordUser.user)
      }))
  })
})

layer(Cluster, { excludeTestServices: true })("PgSql through a failover", (it) => {
  it.effect("kill the primary, promote the replica: every write accounted for; migrations do not run again", () =>
    Effect.gen(function*() {
      const cluster = yield* PostgresCluster.PostgresCluster
      const client = yield* PgSql.make(optionsFor(cluster, { queryTimeout: "1 second" }))
      const run = <A, E>(effect: Effect.Effect<A, E, SqlClient.SqlClient>) =>
        Effect.provideService(effect, SqlClient.SqlClient, client)
      yield* run(synchronous)
      const migrationsTable = "failover_migrations"
      const migrate = run(Migrator.make({})({ loader: PgSql.fromSqlFiles(migrationsDir("migrated_once")), table: migrationsTable }))
      expect((yield* migrate).length).toBe(2)
      yield* client`create table if not exists writes (id int primary key)`

      // Four writers: their statements are pipelined on shared connections.
      const load = yield* writeLoad(client, "writes")
      yield* Effect.sleep("500 millis")
      const replica = cluster.replicas[0]!
      yield* cluster.kill(cluster.primary)
      yield* Effect.sleep("300 millis")
      yield* cluster.promote(replica)
      yield* load.mark
      yield* Effect.sleep("2500 millis").pipe(
        Effect.andThen(load.committedAfterMark),
        Effect.repeat({ until: (n) => n > 10, schedule: Schedule.spaced("250 millis"), times: 80 })
      )
      const counts = yield* expectCleanAudit(load, { committed: 10, afterMark: 0 })
      // After the failover, the migrations are recorded on the new primary: none runs again.
      expect(yield* migrate).toEqual([])
      yield* Effect.logInfo(`PgSql failover: ${JSON.stringify(counts)}`)
    }).pipe(Effect.provide(Reactivity.layer), Effect.scoped))
})
