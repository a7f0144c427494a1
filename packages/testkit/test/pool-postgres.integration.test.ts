import { describe, expect, layer } from "@effect/vitest"
import { ConnectionPool } from "@tether/core"
import { Data, Effect, Exit, Scope } from "effect"
import postgres from "postgres"
import { PostgresCluster } from "../src/index.ts"

/** A postgres.js failure, as the pool's driver error. */
class PgError extends Data.TaggedError("PgError")<{ readonly code: string | undefined; readonly cause: unknown }> {}

const code = (e: unknown) =>
  typeof e === "object" && e !== null && "code" in e ? String((e as { code: unknown }).code) : undefined

const tryPg = <A>(f: () => Promise<A>) =>
  Effect.tryPromise({ try: f, catch: (cause) => new PgError({ code: code(cause), cause }) })

/** A pooled item: one postgres.js client holding one server session, and that session's pid. */
interface PgConnection {
  readonly sql: postgres.Sql
  readonly pid: number
}

/**
 * Opens one real server session eagerly (postgres.js connects lazily, and
 * silently reconnects a lost session, so the pid tells whether the session
 * is still the one the pool opened).
 */
const pgConnection = (url: string) =>
  Effect.acquireRelease(
    Effect.sync(() =>
      postgres(url, {
        max: 1,
        connect_timeout: 2,
        idle_timeout: 0,
        connection: { application_name: "tether-pool-test" },
        onnotice: () => undefined,
        fetch_types: false
      })
    ),
    (sql) => Effect.promise(() => sql.end({ timeout: 1 }).catch(() => undefined))
  ).pipe(
    Effect.flatMap((sql) =>
      tryPg(() => sql<Array<{ pid: number }>>`select pg_backend_pid() as pid`).pipe(
        Effect.map((rows): PgConnection => ({ sql, pid: rows[0]!.pid }))
      )
    )
  )

/** Valid while the session is the same one. */
const sameSession = (c: PgConnection) =>
  tryPg(() => c.sql<Array<{ pid: number }>>`select pg_backend_pid() as pid`).pipe(Effect.map((r) => r[0]!.pid === c.pid))

const isBroken = (e: unknown) =>
  e instanceof PgError && (e.code === "CONNECTION_CLOSED" || e.code === "CONNECTION_ENDED" || e.code === "57P01")

const backends = (url: string) =>
  Effect.acquireUseRelease(
    Effect.sync(() => postgres(url, { max: 1, onnotice: () => undefined, fetch_types: false })),
    (sql) =>
      tryPg(() =>
        sql<Array<{ n: number }>>`select count(*)::int as n from pg_stat_activity where application_name = 'tether-pool-test'`
      ).pipe(Effect.map((rows) => rows[0]!.n)),
    (sql) => Effect.promise(() => sql.end({ timeout: 1 }))
  )

layer(PostgresCluster.layer({ replicas: 0 }), { excludeTestServices: true })("ConnectionPool on real PostgreSQL", (it) => {
  describe("pooling", () => {
    it.effect("serves many concurrent queries over at most max server connections", () =>
      Effect.gen(function*() {
        const cluster = yield* PostgresCluster.PostgresCluster
        const pool = yield* ConnectionPool.make({
          name: "pg-primary",
          acquire: pgConnection(cluster.primary.url),
          validate: sameSession,
          isBroken,
          min: 2,
          max: 5
        })
        expect((yield* pool.stats).idle).toBe(2)
        expect(yield* backends(cluster.primary.url)).toBe(2)
        const pids = yield* Effect.forEach(
          Array.from({ length: 60 }, (_, i) => i),
          (i) =>
            pool.use(({ sql }) =>
              tryPg(() => sql<Array<{ pid: number }>>`select pg_backend_pid() as pid, pg_sleep(${i % 3 === 0 ? 0.01 : 0})`)
            ).pipe(Effect.map((rows) => rows[0]!.pid)),
          { concurrency: 20 }
        )
        expect(pids).toHaveLength(60)
        expect(new Set(pids).size).toBeLessThanOrEqual(5)
        expect(yield* backends(cluster.primary.url)).toBeLessThanOrEqual(5)
        const stats = yield* pool.stats
        expect(stats.created).toBeLessThanOrEqual(5)
        expect(stats.inUse).toBe(0)
      }).pipe(Effect.scoped))

    it.effect("replaces connections the server terminated, transparently to borrowers", () =>
      Effect.gen(function*() {
        const cluster = yield* PostgresCluster.PostgresCluster
        const pool = yield* ConnectionPool.make({
          name: "pg-primary",
          acquire: pgConnection(cluster.primary.url),
          validate: sameSession,
          isBroken,
          min: 3,
          max: 3,
          validationWindow: 0
        })
        const before = yield* Effect.forEach([1, 2, 3], () =>
          pool.use(({ sql }) =>
            tryPg(() => sql<Array<{ pid: number }>>`select pg_backend_pid() as pid, pg_sleep(0.02)`).pipe(
              Effect.map((r) => r[0]!.pid)
            )
          ), { concurrency: "unbounded" })
        // Kill every pooled backend from another session.
        const admin = postgres(cluster.primary.url, { max: 1, onnotice: () => undefined, fetch_types: false })
        yield* tryPg(() =>
          admin`select pg_terminate_backend(pid) from pg_stat_activity where application_name = 'tether-pool-test'`
        )
        yield* Effect.promise(() => admin.end())
        yield* Effect.sleep("100 millis")
        const after = yield* Effect.forEach([1, 2, 3, 4, 5, 6], () =>
          pool.use(({ sql }) => tryPg(() => sql<Array<{ pid: number }>>`select pg_backend_pid() as pid`)).pipe(
            Effect.map((r) => r[0]!.pid)
          ))
        expect(after.every((pid) => !before.includes(pid))).toBe(true)
        const stats = yield* pool.stats
        expect(stats.validationFailures).toBeGreaterThanOrEqual(3)
        expect(stats.destroyed).toBeGreaterThanOrEqual(3)
      }).pipe(Effect.scoped))

    it.effect("closing the pool's scope closes every server connection", () =>
      Effect.gen(function*() {
        const cluster = yield* PostgresCluster.PostgresCluster
        const scope = yield* Scope.make()
        const pool = yield* ConnectionPool.make({
          name: "pg-primary",
          acquire: pgConnection(cluster.primary.url),
          min: 4,
          max: 4
        }).pipe(Scope.provide(scope))
        yield* pool.use(() => Effect.void)
        expect(yield* backends(cluster.primary.url)).toBe(4)
        yield* Scope.close(scope, Exit.void)
        yield* Effect.sleep("100 millis")
        expect(yield* backends(cluster.primary.url)).toBe(0)
        const refused = yield* Effect.flip(pool.use(() => Effect.void))
        expect(refused._tag).toBe("PoolClosed")
      }))
  })

  describe("failures", () => {
    it.effect("a refused connection is a typed error for that borrower; the pool recovers when the server returns", () =>
      Effect.gen(function*() {
        const cluster = yield* PostgresCluster.PostgresCluster
        const pool = yield* ConnectionPool.make({
          name: "pg-primary",
          acquire: pgConnection(cluster.primary.url),
          validate: sameSession,
          isBroken,
          max: 2,
          validationWindow: 0
        })
        yield* pool.use(() => Effect.void)
        yield* cluster.kill(cluster.primary)
        const failed = yield* Effect.flip(pool.use(({ sql }) => tryPg(() => sql`select 1`)))
        expect(["PgError", "ConnectTimeout"]).toContain(failed._tag)
        expect((yield* pool.stats).acquireFailures).toBeGreaterThanOrEqual(1)
        yield* cluster.restart(cluster.primary)
        const rows = yield* pool.use(({ sql }) => tryPg(() => sql<Array<{ one: number }>>`select 1 as one`))
        expect(rows[0]!.one).toBe(1)
      }).pipe(Effect.scoped))

    it.effect("a hung (SIGSTOPped) server makes new connections fail with ConnectTimeout, not hang", () =>
      Effect.gen(function*() {
        const cluster = yield* PostgresCluster.PostgresCluster
        const pool = yield* ConnectionPool.make({
          name: "pg-primary",
          acquire: pgConnection(cluster.primary.url),
          max: 2,
          connectTimeout: "1 second",
          acquireTimeout: "3 seconds"
        })
        yield* cluster.stop(cluster.primary)
        const failed = yield* Effect.flip(pool.use(() => Effect.void)).pipe(
          Effect.ensuring(cluster.cont(cluster.primary).pipe(Effect.orDie))
        )
        // postgres.js's own connect_timeout (2 s) or the pool's (1 s), whichever fires first.
        expect(["ConnectTimeout", "PgError"]).toContain(failed._tag)
        expect(yield* pool.use(({ sql }) => tryPg(() => sql`select 1`).pipe(Effect.as("ok")))).toBe("ok")
      }).pipe(Effect.scoped))
  })
})
