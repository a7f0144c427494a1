import * as fs from "node:fs"
import { describe, expect, it, layer } from "@effect/vitest"
import { Duration, Effect, Exit } from "effect"
import postgres from "postgres"
import { FixtureError, PostgresCluster } from "../src/index.ts"
import { processesUnder } from "../src/internal/process.ts"
import { eventually } from "./eventually.ts"

type Sql = ReturnType<typeof postgres>
type Options = NonNullable<Parameters<typeof postgres>[1]>

/** A one-connection postgres.js client for the test, closed with the scope. */
const client = (url: string, options: Options = {}) =>
  Effect.acquireRelease(
    Effect.sync(() => postgres(url, { max: 1, connect_timeout: 2, onnotice: () => undefined, fetch_types: false, ...options })),
    (sql) => Effect.promise(() => sql.end({ timeout: 0 }).catch(() => undefined))
  )

const query = <T extends ReadonlyArray<object> = ReadonlyArray<Record<string, unknown>>>(
  sql: Sql,
  text: string,
  params: ReadonlyArray<postgres.ParameterOrJSON<never>> = []
) => Effect.tryPromise({ try: () => sql.unsafe(text, params as Array<never>) as unknown as Promise<T>, catch: (e) => e })

const errorCode = (error: unknown): string | undefined =>
  typeof error === "object" && error !== null && "code" in error ? String((error as { code: unknown }).code) : undefined

layer(PostgresCluster.layer({ replicas: 1 }), { excludeTestServices: true })("PostgresCluster (shared)", (it) => {
  it.effect("starts a primary and a streaming replica on loopback ports", () =>
    Effect.gen(function*() {
      const cluster = yield* PostgresCluster.PostgresCluster
      expect(cluster.nodes).toHaveLength(2)
      expect(cluster.primary.role).toBe("primary")
      expect(cluster.replicas[0]!.role).toBe("replica")
      for (const node of cluster.nodes) {
        expect(node.host).toBe("127.0.0.1")
        expect(node.url).toBe(`postgres://postgres@127.0.0.1:${node.port}/postgres`)
        expect(node.state).toBe("running")
        expect(node.pid).toBeGreaterThan(0)
        expect(fs.existsSync(node.dataDir)).toBe(true)
      }
      const sql = yield* client(cluster.primary.url)
      const rows = yield* query<ReadonlyArray<{ state: string }>>(sql, "select state from pg_stat_replication")
      expect(rows.map((r) => r.state)).toEqual(["streaming"])
    }))

  it.effect("the primary accepts writes and the replica sees them", () =>
    Effect.gen(function*() {
      const cluster = yield* PostgresCluster.PostgresCluster
      const primary = yield* client(cluster.primary.url)
      const replica = yield* client(cluster.replicas[0]!.url)
      yield* query(primary, "create table if not exists items (id int primary key, name text)")
      yield* query(primary, "insert into items values (1, 'one') on conflict do nothing")
      yield* eventually(
        Effect.map(query<ReadonlyArray<{ name: string }>>(replica, "select name from items where id = 1"), (rows) =>
          rows[0]?.name === "one")
      )
      expect(yield* query(replica, "select pg_is_in_recovery() as r")).toEqual([{ r: true }])
    }))

  it.effect("the replica refuses writes", () =>
    Effect.gen(function*() {
      const cluster = yield* PostgresCluster.PostgresCluster
      const replica = yield* client(cluster.replicas[0]!.url)
      const error = yield* Effect.flip(query(replica, "create table nope (id int)"))
      expect(errorCode(error)).toBe("25006") // read_only_sql_transaction
    }))

  it.effect("the password user must give the right password", () =>
    Effect.gen(function*() {
      const cluster = yield* PostgresCluster.PostgresCluster
      const { user, password } = cluster.passwordUser
      const good = yield* client(cluster.passwordUser.url(cluster.primary))
      expect(yield* query(good, "select current_user as u")).toEqual([{ u: user }])
      const viaReplica = yield* client(cluster.passwordUser.url(cluster.replicas[0]!))
      expect(yield* query(viaReplica, "select current_user as u")).toEqual([{ u: user }])
      const bad = yield* client(`postgres://${user}:not-${password}@127.0.0.1:${cluster.primary.port}/postgres`)
      const error = yield* Effect.flip(query(bad, "select 1"))
      expect(errorCode(error)).toBe("28P01") // invalid_password
    }))

  it.effect("SIGSTOP makes queries hang; SIGCONT resumes them", () =>
    Effect.gen(function*() {
      const cluster = yield* PostgresCluster.PostgresCluster
      const node = cluster.primary
      const sql = yield* client(node.url)
      expect(yield* query(sql, "select 1 as one")).toEqual([{ one: 1 }])

      yield* cluster.stop(node)
      yield* Effect.addFinalizer(() => cluster.cont(node).pipe(Effect.ignore)) // even if an assertion fails
      expect(node.state).toBe("stopped")
      // A query on an open connection hangs...
      const hung = yield* query(sql, "select 2 as two").pipe(Effect.timeoutOption(Duration.millis(300)))
      expect(hung._tag).toBe("None")
      // ...and so does a new connection (the kernel accepts it, nobody answers).
      const fresh = yield* client(node.url, { connect_timeout: 1 })
      const refused = yield* Effect.flip(query(fresh, "select 3").pipe(Effect.timeout(Duration.seconds(3))))
      expect(errorCode(refused)).toBe("CONNECT_TIMEOUT")

      yield* cluster.cont(node)
      expect(node.state).toBe("running")
      expect(yield* query(sql, "select 4 as four")).toEqual([{ four: 4 }])
    }))

  it.effect("kills and restarts a replica, which streams again", () =>
    Effect.gen(function*() {
      const cluster = yield* PostgresCluster.PostgresCluster
      const replica = cluster.replicas[0]!
      const oldPid = replica.pid!
      yield* cluster.kill(replica)
      expect(replica.state).toBe("killed")
      expect(replica.pid).toBeUndefined()
      const dead = yield* client(replica.url, { connect_timeout: 1 })
      const error = yield* Effect.flip(query(dead, "select 1"))
      expect(errorCode(error)).toBe("ECONNREFUSED")

      yield* cluster.restart(replica)
      expect(replica.state).toBe("running")
      expect(replica.pid).not.toBe(oldPid)
      yield* cluster.awaitStreaming(replica)
      const primary = yield* client(cluster.primary.url)
      yield* query(primary, "create table if not exists after_restart (id int)")
      yield* query(primary, "insert into after_restart values (7)")
      const sql = yield* client(replica.url)
      yield* eventually(
        Effect.map(query<ReadonlyArray<{ n: string }>>(sql, "select count(*) as n from after_restart"), (rows) =>
          Number(rows[0]?.n) >= 1)
      )
    }))
})

describe("PostgresCluster (failover)", () => {
  it.live("kill the primary, promote the replica: it accepts writes", () =>
    Effect.gen(function*() {
      const cluster = yield* PostgresCluster.make({ replicas: 2 })
      const [first, second] = cluster.replicas
      const primary = yield* client(cluster.primary.url)
      yield* query(primary, "create table ledger (id int primary key)")
      yield* query(primary, "insert into ledger values (1)")
      const promoted = yield* client(first!.url)
      yield* eventually(Effect.map(query(promoted, "select * from ledger"), (rows) => rows.length === 1))

      yield* cluster.kill(cluster.primary)
      expect(cluster.primary.state).toBe("killed")
      const error = yield* Effect.flip(query(primary, "insert into ledger values (2)"))
      expect(error).toBeDefined()

      yield* cluster.promote(first!)
      expect(first!.role).toBe("primary")
      expect((yield* cluster.currentPrimary).name).toBe(first!.name)
      yield* query(promoted, "insert into ledger values (2)")
      expect(yield* query(promoted, "select id from ledger order by id")).toEqual([{ id: 1 }, { id: 2 }])
      // The other replica still follows the dead primary: it stays read-only.
      const other = yield* client(second!.url)
      expect(yield* query(other, "select pg_is_in_recovery() as r")).toEqual([{ r: true }])
    }).pipe(Effect.scoped))
})

describe("PostgresCluster (lifecycle)", () => {
  it.live("closing the scope stops every process and deletes the temp dir, also on failure", () =>
    Effect.gen(function*() {
      let dir = ""
      const exit = yield* Effect.exit(Effect.scoped(
        Effect.gen(function*() {
          const cluster = yield* PostgresCluster.make({ replicas: 1 })
          dir = cluster.dir
          yield* cluster.stop(cluster.replicas[0]!) // even a paused node is cleaned up
          expect(processesUnder(dir).length).toBeGreaterThan(0)
          return yield* Effect.fail("the test failed")
        })
      ))
      expect(Exit.isFailure(exit)).toBe(true)
      expect(dir).not.toBe("")
      expect(fs.existsSync(dir)).toBe(false)
      expect(processesUnder(dir)).toEqual([])
    }))

  it.live("rejects bad options with a FixtureError", () =>
    Effect.gen(function*() {
      const error = yield* Effect.flip(Effect.scoped(PostgresCluster.make({ replicas: -1 })))
      expect(error).toBeInstanceOf(FixtureError)
      expect(error.message).toContain("replicas")
    }))

  it.live("controls reject nodes of another cluster", () =>
    Effect.gen(function*() {
      const cluster = yield* PostgresCluster.make({ replicas: 0 })
      const stranger = { ...cluster.primary, name: "stranger" }
      const error = yield* Effect.flip(cluster.kill(stranger))
      expect(error._tag).toBe("FixtureError")
      expect(cluster.primary.state).toBe("running")
    }).pipe(Effect.scoped))
})
