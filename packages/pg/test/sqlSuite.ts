/**
 * The effect/sql behaviour every `PgSql` deployment must keep: run directly
 * against PostgreSQL and through PgBouncer in transaction mode.
 */
import { describe, expect } from "@effect/vitest"
import type { Vitest } from "@effect/vitest"
import type { Duration } from "effect"
import { Cause, Effect, Exit, Fiber, Schema, Stream, Tracer } from "effect"
import * as Migrator from "effect/sql/Migrator"
import * as SqlClient from "effect/sql/SqlClient"
import * as SqlModel from "effect/sql/SqlModel"
import * as SqlResolver from "effect/sql/SqlResolver"
import * as SqlSchema from "effect/sql/SqlSchema"
import { Model } from "effect/schema"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { PgSql } from "../src/index.ts"


export class Person extends Model.Class<Person>("Person")({
  id: Model.Field({ select: Schema.Number, update: Schema.Number, json: Schema.Number }),
  name: Schema.String,
  age: Schema.Number
}) {}

const unique = (prefix: string) => `${prefix}_${Math.random().toString(36).slice(2, 8)}`

/**
 * A fresh counter table (one row, id 1, n 0) and a read-modify-write of it
 * with `pause` between the read and the write (a lost update unless
 * serialized); `attempts` counts the times the increment ran.
 */
const counter = (sql: SqlClient.SqlClient, prefix: string, pause: Duration.Input) =>
  Effect.gen(function*() {
    const table = unique(prefix)
    yield* sql`create table ${sql(table)} (id int primary key, n int not null)`
    yield* sql`insert into ${sql(table)} values (1, 0)`
    const value = Effect.map(sql<{ n: number }>`select n from ${sql(table)} where id = 1`, (rows) => rows[0]!.n)
    const state = { attempts: 0 }
    const increment = Effect.gen(function*() {
      state.attempts++
      const n = yield* value
      yield* Effect.sleep(pause)
      yield* sql`update ${sql(table)} set n = ${n + 1} where id = 1`
    })
    return { state, increment, value }
  })

/** Writes a migrations directory: two files, the second depending on the first. */
export const migrationsDir = (table: string) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "tether-migrations-"))
  fs.writeFileSync(path.join(dir, "0001_create.sql"), `create table ${table} (id int primary key, note text);\n`)
  fs.writeFileSync(
    path.join(dir, "0002_seed.sql"),
    `insert into ${table} values (1, 'one');\ninsert into ${table} values (2, 'two');\n`
  )
  fs.writeFileSync(path.join(dir, "README.txt"), "not a migration")
  return dir
}

/** The shared tests; `it` comes from a `layer(…)` block that provides `SqlClient` and `PgSql`. */
export const sharedSuite = <R>(it: Vitest.MethodsNonLive<R | SqlClient.SqlClient | PgSql.PgSql>) => {

  describe("statements and helpers", () => {
    it.effect("sql.in, sql.insert, identifiers, json, hostile input bound as parameters", () =>
      Effect.gen(function*() {
        const sql = yield* SqlClient.SqlClient
        const pg = yield* PgSql.PgSql
        const table = unique("helpers")
        yield* sql`create table ${sql(table)} (id int primary key, name text not null, doc jsonb)`
        const hostile = "x'); drop table helpers; --"
        yield* sql`insert into ${sql(table)} ${
          sql.insert([
            { id: 1, name: "a", doc: null },
            { id: 2, name: hostile, doc: null }
          ])
        }`
        yield* sql`update ${sql(table)} set doc = ${pg.json({ tags: ["x", "y"], n: 1 })} where id = 1`
        const rows = yield* sql<{ id: number; name: string; doc: unknown }>`select id, name, doc from ${
          sql(table)
        } where id in ${sql.in([1, 2])} order by id`
        expect(rows.map((r) => r.name)).toEqual(["a", hostile])
        expect(rows[0]!.doc).toEqual({ tags: ["x", "y"], n: 1 })
        const [{ n }] = (yield* sql<{ n: number }>`select count(*)::int as n from ${sql(table)}`) as [{ n: number }]
        expect(n).toBe(2)
      }))

    it.effect("a failed statement is a SqlError with Tether's typed error as its cause", () =>
      Effect.gen(function*() {
        const sql = yield* SqlClient.SqlClient
        const table = unique("uniq")
        yield* sql`create table ${sql(table)} (id int primary key)`
        yield* sql`insert into ${sql(table)} values (1)`
        const error = yield* Effect.flip(sql`insert into ${sql(table)} values (1)`)
        expect(error._tag).toBe("SqlError")
        expect(error.reason._tag).toBe("UniqueViolation")
        expect((error.reason.cause as { _tag: string; code: string })._tag).toBe("PgQueryError")
        expect((error.reason.cause as { code: string }).code).toBe("23505")
        const syntax = yield* Effect.flip(sql`selec 1`)
        expect(syntax.reason._tag).toBe("SqlSyntaxError")
      }))

    it.effect("streams rows with a cursor", () =>
      Effect.gen(function*() {
        const sql = yield* SqlClient.SqlClient
        const rows = yield* sql<{ n: number }>`select g as n from generate_series(1, 1000) g`.stream.pipe(
          Stream.runCollect
        )
        expect(rows.length).toBe(1000)
        expect(rows[999]!.n).toBe(1000)
      }))

    it.effect("pipelined: 200 concurrent statements on a few connections all answer correctly", () =>
      Effect.gen(function*() {
        const sql = yield* SqlClient.SqlClient
        const results = yield* Effect.forEach(
          Array.from({ length: 200 }, (_, i) => i),
          (i) => sql<{ n: number }>`select ${i}::int as n`,
          { concurrency: "unbounded" }
        )
        expect(results.map((r) => r[0]!.n)).toEqual(Array.from({ length: 200 }, (_, i) => i))
      }))
  })

  describe("query cache", () => {
    it.effect("cached: 50 concurrent identical misses run the statement once; transactions bypass it", () =>
      Effect.gen(function*() {
        const sql = yield* SqlClient.SqlClient
        const pg = yield* PgSql.PgSql
        const table = unique("cache_runs")
        const fn = unique("bump")
        // A side-effecting function: every run of the cached statement is counted on the server.
        yield* sql`create table ${sql(table)} (n int not null)`
        yield* sql`insert into ${sql(table)} values (0)`
        yield* sql.unsafe(
          `create function ${fn}() returns int volatile language sql as 'update ${table} set n = n + 1 returning n'`
        )
        const runs = Effect.map(sql<{ n: number }>`select n from ${sql(table)}`, (rows) => rows[0]!.n)
        const before = yield* pg.cacheStats
        const statement = sql<{ n: number }>`select ${sql(fn)}() as n, pg_sleep(0.05)::text as slept`
        const results = yield* Effect.all(Array.from({ length: 50 }, () => pg.cached(statement)), {
          concurrency: "unbounded"
        })
        expect(results.every((rows) => rows[0]!.n === 1)).toBe(true)
        expect(yield* runs).toBe(1)
        const after = yield* pg.cacheStats
        expect(after.misses - before.misses).toBe(1)
        expect(after.hits - before.hits).toBe(49)
        // Inside a transaction the statement runs (and sees the transaction's writes).
        const inTx = yield* sql.withTransaction(pg.cached(statement))
        expect(inTx[0]!.n).toBe(2)
        expect((yield* pg.cached(statement))[0]!.n).toBe(1)
        // Invalidated: the next read runs it again.
        expect(yield* pg.invalidateCache((text) => text.includes(fn))).toBe(1)
        expect((yield* pg.cached(statement))[0]!.n).toBe(3)
      }))
  })

  describe("transactions", () => {
    it.effect("a helper asking for SqlClient inside withTransaction joins it, and is rolled back with it", () =>
      Effect.gen(function*() {
        const sql = yield* SqlClient.SqlClient
        const table = unique("joined")
        yield* sql`create table ${sql(table)} (id int primary key)`
        // A helper that knows nothing of the transaction.
        const insert = (id: number) =>
          Effect.flatMap(Effect.service(SqlClient.SqlClient), (db) => db`insert into ${db(table)} values (${id})`)
        const exit = yield* Effect.exit(sql.withTransaction(
          Effect.gen(function*() {
            yield* sql`insert into ${sql(table)} values (1)`
            yield* insert(2)
            // Visible inside the transaction, through the helper's client too.
            const [{ n }] = (yield* Effect.flatMap(
              Effect.service(SqlClient.SqlClient),
              (db) => db<{ n: number }>`select count(*)::int as n from ${db(table)}`
            )) as [{ n: number }]
            expect(n).toBe(2)
            return yield* Effect.fail("boom" as const)
          })
        ))
        expect(Exit.isFailure(exit)).toBe(true)
        const rows = yield* sql`select * from ${sql(table)}`
        expect(rows).toEqual([])
        // And committed together when it succeeds.
        yield* sql.withTransaction(Effect.andThen(sql`insert into ${sql(table)} values (1)`, insert(2)))
        expect((yield* sql`select * from ${sql(table)}`).length).toBe(2)
      }))

    it.effect("nested transactions are savepoints: an inner failure rolls back only the inner block", () =>
      Effect.gen(function*() {
        const sql = yield* SqlClient.SqlClient
        const table = unique("nested")
        yield* sql`create table ${sql(table)} (id int primary key)`
        yield* sql.withTransaction(
          Effect.gen(function*() {
            yield* sql`insert into ${sql(table)} values (1)`
            yield* sql.withTransaction(
              Effect.andThen(sql`insert into ${sql(table)} values (2)`, Effect.fail("inner" as const))
            ).pipe(Effect.ignore)
            yield* sql.withTransaction(
              sql.withTransaction(sql`insert into ${sql(table)} values (3)`)
            )
          })
        )
        const rows = yield* sql<{ id: number }>`select id from ${sql(table)} order by id`
        expect(rows.map((r) => r.id)).toEqual([1, 3])
      }))

    it.effect("a constraint violation inside a transaction rolls it back; the connection is reused cleanly", () =>
      Effect.gen(function*() {
        const sql = yield* SqlClient.SqlClient
        const table = unique("txerr")
        yield* sql`create table ${sql(table)} (id int primary key)`
        for (let round = 0; round < 3; round++) {
          const error = yield* Effect.flip(sql.withTransaction(
            Effect.andThen(sql`insert into ${sql(table)} values (1)`, sql`insert into ${sql(table)} values (1)`)
          ))
          expect(error._tag).toBe("SqlError")
        }
        expect(yield* sql`select * from ${sql(table)}`).toEqual([])
      }))

    it.effect("PgSql.withTransaction: serializable, and idempotent blocks retried as a whole on a conflict", () =>
      Effect.gen(function*() {
        const sql = yield* SqlClient.SqlClient
        const { increment, state, value } = yield* counter(sql, "counter", "20 millis")
        const serialized = increment.pipe(PgSql.withTransaction({ isolation: "serializable", idempotent: true }))
        yield* Effect.all(Array.from({ length: 4 }, () => serialized), { concurrency: "unbounded" })
        // No lost update: every increment counted once, conflicts were retried.
        expect(yield* value).toBe(4)
        expect(state.attempts).toBeGreaterThan(4)
        const [{ level }] = (yield* sql<{ level: string }>`select current_setting('transaction_isolation') as level`.pipe(
          PgSql.withTransaction({ isolation: "repeatable read" })
        )) as [{ level: string }]
        expect(level).toBe("repeatable read")
      }))

    it.effect("a non-idempotent transaction is not retried on a conflict", () =>
      Effect.gen(function*() {
        const sql = yield* SqlClient.SqlClient
        const { increment, state } = yield* counter(sql, "noretry", "50 millis")
        const serialized = increment.pipe(PgSql.withTransaction({ isolation: "serializable" }))
        const results = yield* Effect.all(Array.from({ length: 3 }, () => Effect.exit(serialized)), {
          concurrency: "unbounded"
        })
        expect(state.attempts).toBe(3)
        const failures = results.filter(Exit.isFailure)
        expect(failures.length).toBeGreaterThan(0)
        for (const failure of failures) {
          const error = Cause.findErrorOption(failure.cause)
          expect(error._tag === "Some" && error.value.reason._tag).toBe("SerializationError")
        }
      }))
  })

  describe("effect/sql tooling", () => {
    it.effect("Migrator runs a directory of .sql migrations once", () =>
      Effect.gen(function*() {
        const sql = yield* SqlClient.SqlClient
        const table = unique("migrated")
        const dir = migrationsDir(table)
        const migrationsTable = unique("migrations")
        const run = Migrator.make({})({ loader: PgSql.fromSqlFiles(dir), table: migrationsTable })
        const first = yield* run
        expect(first).toEqual([[1, "create"], [2, "seed"]])
        const second = yield* run
        expect(second).toEqual([])
        const rows = yield* sql<{ id: number }>`select id from ${sql(table)} order by id`
        expect(rows.map((r) => r.id)).toEqual([1, 2])
      }))

    it.effect("a SqlModel repository: insert, findById, update, delete", () =>
      Effect.gen(function*() {
        const sql = yield* SqlClient.SqlClient
        const table = unique("people")
        yield* sql`create table ${sql(table)} (id serial primary key, name text not null, age int not null)`
        const repo = yield* SqlModel.makeRepository(Person, { tableName: table, spanPrefix: "People", idColumn: "id" })
        const ada = yield* repo.insert({ name: "Ada", age: 36 })
        expect(ada.name).toBe("Ada")
        const found = yield* repo.findById(ada.id)
        expect(found.age).toBe(36)
        const older = yield* repo.update({ ...found, age: 37 })
        expect(older.age).toBe(37)
        yield* repo.delete(ada.id)
        const gone = yield* Effect.flip(repo.findById(ada.id))
        expect(gone._tag).toBe("NoSuchElementError")
      }))

    it.effect("a SqlResolver batches concurrent lookups into one statement", () =>
      Effect.gen(function*() {
        const sql = yield* SqlClient.SqlClient
        const table = unique("lookup")
        yield* sql`create table ${sql(table)} (id int primary key, name text not null)`
        yield* sql`insert into ${sql(table)} select g, 'n' || g from generate_series(1, 50) g`
        const statements: Array<number> = []
        const resolver = SqlResolver.findById({
          Id: Schema.Number,
          Result: Schema.Struct({ id: Schema.Number, name: Schema.String }),
          ResultId: (row) => row.id,
          execute: (ids) => {
            statements.push(ids.length)
            return sql`select id, name from ${sql(table)} where id in ${sql.in(ids)}`
          }
        })
        const lookup = SqlResolver.request(resolver)
        const results = yield* Effect.forEach([1, 2, 3, 10, 20, 30], (id) => lookup(id), { concurrency: "unbounded" })
        expect(results.map((r) => r.name)).toEqual(["n1", "n2", "n3", "n10", "n20", "n30"])
        expect(statements).toEqual([6])
      }))

    it.effect("SqlSchema.findAll decodes rows", () =>
      Effect.gen(function*() {
        const sql = yield* SqlClient.SqlClient
        const find = SqlSchema.findAll({
          Request: Schema.Number,
          Result: Schema.Struct({ n: Schema.Number }),
          execute: (upTo) => sql`select g as n from generate_series(1, ${upTo}::int) g`
        })
        expect((yield* find(3)).map((r) => r.n)).toEqual([1, 2, 3])
      }))
  })

  describe("read/write interleavings", () => {
    it.effect("concurrent readReplica reads and writes: reads never run read-write, writes never read-only", () =>
      Effect.gen(function*() {
        const sql = yield* SqlClient.SqlClient
        const table = unique("mixed")
        yield* sql`create table ${sql(table)} (id int primary key)`
        const ops = Array.from({ length: 60 }, (_, i) =>
          i % 2 === 0
            ? Effect.map(sql`insert into ${sql(table)} values (${i}) returning id`, () => "write" as const)
            : Effect.map(
              PgSql.readReplica(sql<{ ro: string }>`select current_setting('transaction_read_only') as ro`),
              (rows) => rows[0]!.ro
            ))
        const results = yield* Effect.all(ops, { concurrency: 16 })
        expect(results.filter((r) => r === "write").length).toBe(30)
        expect(results.filter((r) => r !== "write")).toEqual(Array.from({ length: 30 }, () => "on"))
        // A write attempted as a read is refused (read-only), and not applied.
        const refused = yield* Effect.flip(PgSql.readReplica(sql`insert into ${sql(table)} values (1000)`))
        expect(refused._tag).toBe("SqlError")
        const [{ n }] = (yield* sql<{ n: number }>`select count(*)::int as n from ${sql(table)}`) as [{ n: number }]
        expect(n).toBe(30)
      }))
  })

  describe("OpenTelemetry database conventions", () => {
    it.effect("statement spans: system, namespace, text with placeholders only, operation, server, status code", () =>
      Effect.gen(function*() {
        const sql = yield* SqlClient.SqlClient
        const spans: Array<Tracer.NativeSpan> = []
        const tracer = Tracer.make({
          span: (options) => {
            const span = new Tracer.NativeSpan(options)
            spans.push(span)
            return span
          }
        })
        const secret = "s3cret-value-never-in-spans"
        yield* sql`select ${secret}::text as v`.pipe(Effect.withTracer(tracer))
        const failed = yield* Effect.flip(sql`select 1 / ${0}::int as boom`.pipe(Effect.withTracer(tracer)))
        expect(failed.reason._tag).toBe("UnknownError")
        const statements = spans.filter((span) => span.attributes.has("db.query.text"))
        expect(statements.length).toBe(2)
        const [ok, bad] = statements as [Tracer.NativeSpan, Tracer.NativeSpan]
        expect(ok.attributes.get("db.system.name")).toBe("postgresql")
        expect(ok.attributes.get("db.namespace")).toBe("postgres")
        expect(ok.attributes.get("db.query.text")).toBe("select $1::text as v")
        expect(ok.attributes.get("db.operation.name")).toBe("SELECT")
        expect(typeof ok.attributes.get("server.address")).toBe("string")
        expect(typeof ok.attributes.get("server.port")).toBe("number")
        expect(ok.attributes.has("db.response.status_code")).toBe(false)
        expect(bad.attributes.get("db.response.status_code")).toBe("22012")
        // No value anywhere in any span's attributes.
        for (const span of spans) {
          for (const value of span.attributes.values()) expect(String(value)).not.toContain(secret)
        }
      }))
  })

  describe("LISTEN / NOTIFY", () => {
    it.effect("notifications reach a listener", () =>
      Effect.gen(function*() {
        const pg = yield* PgSql.PgSql
        const channel = unique("chan")
        const received = yield* pg.listen(channel).pipe(Stream.take(2), Stream.runCollect, Effect.forkChild)
        // The subscription is asynchronous: notify until both arrive.
        let sent = 0
        while (received.pollUnsafe() === undefined && sent < 400) {
          yield* pg.notify(channel, `hello ${sent++}`)
          yield* Effect.sleep("25 millis")
        }
        const payloads = yield* Fiber.join(received)
        expect(payloads.length).toBe(2)
        expect(payloads[0]!.startsWith("hello")).toBe(true)
      }))
  })
}
