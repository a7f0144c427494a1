import { describe, expect, layer } from "@effect/vitest"
import { Identity } from "@tether/core"
import { PostgresCluster } from "@tether/testkit"
import { Deferred, Effect, Fiber, Logger, Redacted, References, Schedule, Stream } from "effect"
import * as SqlClient from "effect/sql/SqlClient"
import { PgClient, PgSql } from "../src/index.ts"

/** A node's URL without credentials: the client logs in as its configured user. */
const urlOf = (node: PostgresCluster.Node) => `postgres://${node.host}:${node.port}/postgres`

const clientFor = (cluster: PostgresCluster.Cluster, options?: Partial<PgClient.Options>) =>
  PgClient.make({
    endpoints: cluster.nodes.map((node) => ({ url: urlOf(node), role: node.role })),
    user: "postgres",
    health: { interval: "250 millis", timeout: "500 millis" },
    queryTimeout: "2 seconds",
    ...options
  })

class EndUser extends Identity.Service<EndUser>()("test/EndUser") {}

/**
 * Synchronous replication, once the replica streams (the fixture starts with
 * `synchronous_commit = remote_apply`, inert until a standby is named): a
 * commit is acknowledged only once the replica applied it, so a promoted replica has every
 * acknowledged write (with asynchronous replication, a failover may lose the
 * last ones — PostgreSQL's trade-off, not the client's).
 */
const synchronous = (db: PgClient.PgClient) =>
  Effect.gen(function*() {
    yield* db.write`alter system set synchronous_standby_names = '*'`
    yield* db.write`select pg_reload_conf()`
    // A reload is asynchronous: wait until the replica is a synchronous standby.
    yield* db.write<{ n: number }>`select count(*)::int as n from pg_stat_replication where sync_state = 'sync'`.pipe(
      Effect.repeat({ until: (rows) => rows[0]!.n >= 1, schedule: Schedule.spaced("50 millis"), times: 200 })
    )
  })

layer(
  PostgresCluster.layer({
    replicas: 1,
    settings: { synchronous_commit: "remote_apply", shared_preload_libraries: "pg_stat_statements" }
  }),
  { excludeTestServices: true }
)("PgClient on a primary and a replica", (it) => {
  const ready = Effect.gen(function*() {
    const cluster = yield* PostgresCluster.PostgresCluster
    const db = yield* clientFor(cluster)
    yield* synchronous(db)
    yield* db.write`create table if not exists items (id int primary key, name text not null)`
    return { cluster, db }
  })

  describe("routing", () => {
    it.effect("reads go to the replica, writes to the primary", () =>
      Effect.gen(function*() {
        const { db } = yield* ready
        for (let i = 0; i < 5; i++) {
          const [read] = yield* db.read<{ replica: boolean }>`select pg_is_in_recovery() as replica`
          expect(read!.replica).toBe(true)
          const [write] = yield* db.write<{ replica: boolean }>`select pg_is_in_recovery() as replica`
          expect(write!.replica).toBe(false)
        }
      }).pipe(Effect.scoped))

    it.effect("parameters are bound, never spliced into the text", () =>
      Effect.gen(function*() {
        const { db } = yield* ready
        const hostile = "x'); drop table items; --"
        const [row] = yield* db.read<{ value: string }>`select ${hostile}::text as value`
        expect(row!.value).toBe(hostile)
        const [count] = yield* db.read<{ n: number }>`select count(*)::int as n from pg_tables where tablename = 'items'`
        expect(count!.n).toBe(1)
      }).pipe(Effect.scoped))
  })

  describe("multiplexing", () => {
    it.effect("plain reads share connections (pipelined), writes and transactions get their own", () =>
      Effect.gen(function*() {
        const { cluster } = yield* ready
        const db = yield* clientFor(cluster, { multiplex: 8, pool: { max: 2 } })
        const results = yield* Effect.forEach(
          Array.from({ length: 64 }, (_, i) => i),
          (i) => db.read<{ n: number }>`select ${i}::int as n, pg_sleep(0.01)`,
          { concurrency: 64 }
        )
        expect(results.map((rows) => rows[0]!.n)).toEqual(Array.from({ length: 64 }, (_, i) => i))
        const [row] = yield* db.transaction((tx) => tx.sql<{ replica: boolean }>`select pg_is_in_recovery() as replica`)
        expect(row!.replica).toBe(false)
      }).pipe(Effect.scoped))
  })

  describe("typed errors", () => {
    it.effect("syntax error, unknown table, a write in read mode, wrong password, unknown host", () =>
      Effect.gen(function*() {
        const { cluster, db } = yield* ready
        const syntax = yield* Effect.flip(db.read`selec 1`)
        expect(syntax._tag === "PgQueryError" && syntax.kind).toBe("syntax")
        expect(syntax.message).toContain("42601")

        const unknown = yield* Effect.flip(db.read`select * from no_such_table`)
        expect(unknown._tag === "PgQueryError" && unknown.kind).toBe("undefined-object")

        // Read mode on the replica, and on the primary too (read sessions are read-only).
        const onReplica = yield* Effect.flip(db.read`insert into items values (1000, 'x')`)
        expect(onReplica._tag === "PgQueryError" && onReplica.kind).toBe("read-only")
        const anywhere = yield* clientFor(cluster, { endpoints: [urlOf(cluster.primary)], readFrom: "any" })
        const onPrimary = yield* Effect.flip(anywhere.read`insert into items values (1001, 'x')`)
        expect(onPrimary._tag === "PgQueryError" && onPrimary.kind).toBe("read-only")
        // With the guarantee turned off, the same statement goes through (the documented trade-off).
        const lax = yield* clientFor(cluster, { endpoints: [urlOf(cluster.primary)], readFrom: "any", enforceReadOnly: false })
        yield* lax.read`insert into items values (1002, 'lax') on conflict do nothing`
        yield* db.write`delete from items where id = 1002`

        const secret = "not-the-Password-91b"
        const wrong = Identity.make(cluster.passwordUser.user, Redacted.make(secret))
        const auth = yield* Effect.flip(db.as(EndUser).read`select 1`.pipe(Effect.provideService(EndUser, wrong)))
        expect(auth._tag).toBe("PgAuthenticationError")
        expect(auth.message).not.toContain(secret)
        const right = Identity.make(cluster.passwordUser.user, Redacted.make(cluster.passwordUser.password))
        const [me] = yield* db.as(EndUser).write<{ user: string }>`select current_user as user`.pipe(
          Effect.provideService(EndUser, right)
        )
        expect(me!.user).toBe(cluster.passwordUser.user)

        const nowhere = yield* clientFor(cluster, {
          endpoints: ["postgres://no-such-host.invalid:5432/postgres"],
          health: false,
          retry: false
        })
        const host = yield* Effect.flip(nowhere.read`select 1`)
        expect(host._tag).toBe("PgConnectionError")
        expect(host.message).toContain("no-such-host.invalid")
      }).pipe(Effect.scoped))
  })

  describe("transactions, streams, batches, cache", () => {
    it.effect("a transaction commits, or rolls back as a whole", () =>
      Effect.gen(function*() {
        const { db } = yield* ready
        yield* db.write`delete from items where id between 1 and 10`
        yield* db.transaction((tx) =>
          Effect.gen(function*() {
            yield* tx.sql`insert into items values (1, 'one')`
            yield* tx.sql`insert into items values (2, 'two')`
          })
        )
        const failed = yield* Effect.flip(db.transaction((tx) =>
          Effect.gen(function*() {
            yield* tx.sql`insert into items values (3, 'three')`
            yield* tx.sql`insert into items values (1, 'duplicate')`
          })
        ))
        expect(failed._tag === "PgQueryError" && failed.kind).toBe("constraint")
        const rows = yield* db.write<{ id: number }>`select id from items where id between 1 and 10 order by id`
        expect(rows.map((r) => r.id)).toEqual([1, 2])
      }).pipe(Effect.scoped))

    it.effect("a serialization failure reruns the whole transaction; both writers commit once", () =>
      Effect.gen(function*() {
        const { db } = yield* ready
        yield* db.write`create table if not exists ledger (who text)`
        yield* db.write`delete from ledger`
        const bothRead = yield* Deferred.make<void>()
        let readers = 0
        let attempts = 0
        // Write skew: each reads the count, then inserts; under SERIALIZABLE one must fail and rerun.
        const writer = (who: string) =>
          db.transaction((tx) =>
            Effect.gen(function*() {
              attempts++
              const [row] = yield* tx.sql<{ n: number }>`select count(*)::int as n from ledger`
              if (++readers === 2) yield* Deferred.succeed(bothRead, undefined)
              if (readers <= 2) yield* Deferred.await(bothRead)
              yield* tx.sql`insert into ledger values (${`${who} saw ${row!.n}`})`
            }), { isolation: "serializable", retry: Schedule.spaced("10 millis") })
        yield* Effect.all([writer("a"), writer("b")], { concurrency: 2 })
        const rows = yield* db.write<{ who: string }>`select who from ledger order by who`
        expect(rows).toHaveLength(2)
        expect(attempts).toBeGreaterThanOrEqual(3)
        // The rerun saw the other's row: the result is serializable.
        expect(rows.map((r) => r.who.slice(-1)).sort()).toEqual(["0", "1"])
      }).pipe(Effect.scoped))

    it.effect("a stream delivers rows through a cursor; a batch pipelines statements", () =>
      Effect.gen(function*() {
        const { db } = yield* ready
        const rows = yield* Stream.runCollect(db.stream<{ n: number }>`select generate_series(1, 2500) as n`)
        expect(rows.length).toBe(2500)
        expect(rows[2499]!.n).toBe(2500)
        const first = yield* Stream.runHead(db.stream<{ n: number }>`select generate_series(1, 1000000) as n`)
        expect(first._tag === "Some" && first.value.n).toBe(1)
        const results = yield* db.batch([
          PgClient.statement`select 1 as a`,
          PgClient.statement`select ${"two"}::text as b`
        ], { mode: "read" })
        expect(results.map((r) => r[0])).toEqual([{ a: 1 }, { b: "two" }])
      }).pipe(Effect.scoped))

    it.effect("cached reads: a hit until invalidated or expired", () =>
      Effect.gen(function*() {
        const { cluster } = yield* ready
        const db = yield* clientFor(cluster, { cache: { ttl: "1 minute" } })
        const get = db.cached<{ name: string }>`select name from items where id = ${1}`
        const a = yield* get
        const b = yield* get
        expect(b).toBe(a)
        expect(yield* db.cacheStats).toMatchObject({ hits: 1, misses: 1 })
        expect(yield* db.invalidateCache((text) => text.includes("from items"))).toBe(1)
        yield* get
        expect(yield* db.cacheStats).toMatchObject({ hits: 1, misses: 2 })
      }).pipe(Effect.scoped))

    it.effect("single flight: 50 concurrent identical cached misses run one statement on the server", () =>
      Effect.gen(function*() {
        const { db } = yield* ready
        yield* db.write`create extension if not exists pg_stat_statements`
        // Counted where the reads run (the replica), by the statement's unique column alias.
        const calls = db.read<{ n: number }>`select coalesce(sum(calls), 0)::int as n from pg_stat_statements
          where query like '%single_flight_probe%' and query not like '%pg_stat_statements%'`
        const before = (yield* calls)[0]!.n
        const get = db.cached<{ single_flight_probe: string }>`select name as single_flight_probe, pg_sleep(0.05)::text
          from items where id = ${1}`
        const results = yield* Effect.all(Array.from({ length: 50 }, () => get), { concurrency: "unbounded" })
        expect(new Set(results).size).toBe(1)
        const after = (yield* calls)[0]!.n
        expect(after - before).toBe(1)
        expect(yield* db.cacheStats).toMatchObject({ hits: 49, misses: 1 })
      }).pipe(Effect.scoped))
  })

  describe("one layer for both APIs", () => {
    it.effect("PgClient.layer also provides effect/sql's SqlClient: @effect/sql-pg code keeps working next to PgClient", () =>
      Effect.gen(function*() {
        const { cluster } = yield* ready
        const Live = PgClient.layer({
          endpoints: cluster.nodes.map((node) => ({ url: urlOf(node), role: node.role })),
          user: "postgres",
          health: { interval: "250 millis", timeout: "500 millis" },
          queryTimeout: "2 seconds"
        })
        yield* Effect.gen(function*() {
          const sql = yield* SqlClient.SqlClient
          const db = yield* PgClient.PgClient
          yield* sql`create table if not exists one_layer (id int primary key)`
          yield* sql`truncate one_layer`
          // A helper that only knows SqlClient joins the transaction and is rolled back with it.
          const helper = Effect.flatMap(Effect.service(SqlClient.SqlClient), (tx) => tx`insert into one_layer values (2)`)
          const failed = yield* Effect.exit(
            sql.withTransaction(Effect.andThen(sql`insert into one_layer values (1)`, Effect.andThen(helper, Effect.fail("no"))))
          )
          expect(failed._tag).toBe("Failure")
          yield* sql.withTransaction(Effect.andThen(sql`insert into one_layer values (1)`, helper))
          // PgClient sees what SqlClient committed (on the primary), and the SqlClient routes reads to the replica.
          expect(yield* db.write<{ id: number }>`select id from one_layer order by id`).toEqual([{ id: 1 }, { id: 2 }])
          const [where] = yield* PgSql.readReplica(sql<{ replica: boolean }>`select pg_is_in_recovery() as replica`)
          expect(where!.replica).toBe(true)
          expect((yield* (yield* PgSql.PgSql).status).name).toBe("pg/sql")
        }).pipe(Effect.provide(Live))
      }).pipe(Effect.scoped))
  })

  describe("observability", () => {
    it.effect("a slow statement is logged with its text and duration, never its parameter values", () =>
      Effect.gen(function*() {
        const { cluster } = yield* ready
        const lines: Array<string> = []
        const logger = Logger.make<unknown, void>((options) => {
          lines.push(`${String(options.message)} ${JSON.stringify(options.fiber.getRef(References.CurrentLogAnnotations))}`)
        })
        yield* Effect.gen(function*() {
          const db = yield* clientFor(cluster, { slowQueryThreshold: "50 millis" })
          const secret = "card-4111-1111-1111-1111"
          yield* db.read`select pg_sleep(0.1), ${secret}::text as card`
          yield* db.read`select ${secret}::text as fast`
          // Only the sleeping statement must be logged (a loaded machine may also slow the fast one down).
          const slow = lines.filter((l) => l.includes("slow statement") && l.includes("pg_sleep"))
          expect(slow).toHaveLength(1)
          expect(slow[0]).toContain("select pg_sleep(0.1), $1::text as card")
          expect(slow[0]).toContain("durationMillis")
          for (const line of lines) expect(line).not.toContain(secret)
        }).pipe(Effect.scoped, Effect.provide(Logger.layer([logger])))
      }))
  })

  describe("a hung primary", () => {
    it.effect("SIGSTOP the primary: its breaker opens, reads are unaffected", () =>
      Effect.gen(function*() {
        const { cluster } = yield* ready
        const db = yield* clientFor(cluster, {
          queryTimeout: "300 millis",
          connectTimeout: "300 millis",
          breaker: { consecutiveFailures: 2 },
          // Only the breaker reacts here (a probe could otherwise take the endpoint out first).
          health: false,
          retry: false
        })
        yield* db.write`select 1`
        yield* cluster.stop(cluster.primary)
        const writes = yield* Effect.forEach([1, 2, 3], () => Effect.flip(db.write`insert into items values (500, 'x')`))
        const reads = yield* Effect.forEach([1, 2, 3, 4, 5], () => db.read<{ one: number }>`select 1 as one`)
        const status = yield* db.status
        yield* cluster.cont(cluster.primary)
        // The first write hangs until the client's timeout: it may have been applied. The second
        // cannot connect in time; the breaker opens, and the third fails fast: no endpoint can take
        // a write while the primary's breaker is open.
        expect(writes[0]!._tag).toBe("PgOutcomeUnknown")
        expect(writes[2]!._tag).toBe("NoEndpointAvailable")
        expect(writes[2]!.message).toContain("breaker open")
        expect(reads.every((r) => r[0]!.one === 1)).toBe(true)
        const primary = status.endpoints.find((e) => e.url === urlOf(cluster.primary))!
        expect(primary.breaker?.status).toBe("open")
      }).pipe(Effect.scoped))
  })
})

layer(
  PostgresCluster.layer({ replicas: 1, settings: { synchronous_commit: "remote_apply" } }),
  { excludeTestServices: true }
)("PgClient through a failover", (it) => {
  it.effect("kill the primary, promote the replica: reads never fail, writes resume, every write accounted for", () =>
    Effect.gen(function*() {
      const cluster = yield* PostgresCluster.PostgresCluster
      const db = yield* clientFor(cluster, { queryTimeout: "1 second" })
      yield* synchronous(db)
      yield* db.write`create table if not exists writes (id int primary key)`
      const outcomes = new Map<number, string>()
      const readFailures: Array<string> = []
      let running = true
      let promotedAt = 0
      let firstWriteAfterPromotion = 0
      const writer = Effect.gen(function*() {
        let id = 0
        while (running) {
          id++
          const result = yield* Effect.result(db.write`insert into writes values (${id})`)
          if (result._tag === "Success") {
            outcomes.set(id, "committed")
            if (promotedAt > 0 && firstWriteAfterPromotion === 0) firstWriteAfterPromotion = Date.now()
          } else {
            outcomes.set(id, result.failure._tag === "PgOutcomeUnknown" ? "unknown" : "failed")
          }
          yield* Effect.sleep("5 millis")
        }
      })
      const reader = Effect.gen(function*() {
        while (running) {
          const result = yield* Effect.result(db.read`select count(*) from writes`)
          if (result._tag === "Failure") readFailures.push(result.failure.message)
          yield* Effect.sleep("5 millis")
        }
      })
      const fibers = yield* Effect.forEach([writer, reader, reader], (f) => Effect.forkChild(f))
      yield* Effect.sleep("500 millis")
      const replica = cluster.replicas[0]!
      yield* cluster.kill(cluster.primary)
      yield* Effect.sleep("300 millis")
      yield* cluster.promote(replica)
      promotedAt = Date.now()
      yield* Effect.sleep("2500 millis")
      running = false
      yield* Fiber.joinAll(fibers)

      const rows = yield* db.write<{ id: number }>`select id from writes`
      const stored = new Set(rows.map((r) => r.id))
      const lost = [...outcomes].filter(([id, outcome]) => outcome === "committed" && !stored.has(id))
      const phantom = [...outcomes].filter(([id, outcome]) => outcome === "failed" && stored.has(id))
      expect(readFailures).toEqual([])
      expect(lost).toEqual([])
      expect(phantom).toEqual([])
      expect(rows.length).toBe(stored.size) // primary key: nothing written twice
      expect(firstWriteAfterPromotion).toBeGreaterThan(0)
      const counts = { committed: 0, unknown: 0, failed: 0 }
      for (const outcome of outcomes.values()) counts[outcome as keyof typeof counts]++
      expect(counts.committed).toBeGreaterThan(10)
      // Reported for the issue's note (not asserted: wall-clock bounds have no place in tests).
      yield* Effect.logInfo(
        `failover: writes resumed ${firstWriteAfterPromotion - promotedAt} ms after promotion; ${JSON.stringify(counts)}`
      )
    }).pipe(Effect.scoped))
})
