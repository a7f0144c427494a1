/**
 * `npm start`: Tether's pools against real servers.
 *
 * Starts a throwaway PostgreSQL primary + streaming replica and a slapd (in
 * temp dirs, on free loopback ports), opens a `ConnectionPool` to each,
 * runs a burst of concurrent queries and searches, kills the replica's
 * connections to show validation replacing them, prints every pool's
 * statistics and metrics, and shuts everything down.
 */
import { ConnectionPool } from "@tether/core"
import { PostgresCluster, Slapd } from "@tether/testkit"
import { Cause, Data, Effect, Metric } from "effect"
import { Client } from "ldapts"
import postgres from "postgres"

class DriverError extends Data.TaggedError("DriverError")<{ readonly cause: unknown }> {}
const attempt = <A>(f: () => Promise<A>) => Effect.tryPromise({ try: f, catch: (cause) => new DriverError({ cause }) })

/** A pooled PostgreSQL session: one postgres.js client with one connection, and its backend pid. */
const pgSession = (url: string) =>
  Effect.acquireRelease(
    Effect.sync(() => postgres(url, { max: 1, idle_timeout: 0, connect_timeout: 2, onnotice: () => undefined, fetch_types: false })),
    (sql) => Effect.promise(() => sql.end({ timeout: 1 }).catch(() => undefined))
  ).pipe(
    Effect.flatMap((sql) =>
      attempt(() => sql<Array<{ pid: number }>>`select pg_backend_pid() as pid`).pipe(
        Effect.map((rows) => ({ sql, pid: rows[0]!.pid }))
      )
    )
  )

/** A pooled LDAP connection bound as `dn`. */
const ldapSession = (url: string, dn: string, password: string) =>
  Effect.acquireRelease(
    Effect.sync(() => new Client({ url, connectTimeout: 2_000, timeout: 5_000 })),
    (client) => Effect.promise(() => client.unbind().catch(() => undefined))
  ).pipe(Effect.tap((client) => attempt(() => client.bind(dn, password))))

const program = Effect.gen(function*() {
  yield* Effect.logInfo("starting PostgreSQL primary + replica and slapd in temp dirs…")
  const cluster = yield* PostgresCluster.make({ replicas: 1 })
  const ldap = yield* Slapd.make({ users: 50 })

  const pgPool = (node: PostgresCluster.Node) =>
    ConnectionPool.make({
      name: `${node.name} ${node.host}:${node.port}`,
      acquire: pgSession(node.url),
      // Still the same server session? (postgres.js reconnects silently.)
      validate: ({ pid, sql }) =>
        attempt(() => sql<Array<{ pid: number }>>`select pg_backend_pid() as pid`).pipe(
          Effect.map((rows) => rows[0]!.pid === pid)
        ),
      min: 2,
      max: 8,
      validationWindow: "100 millis"
    })
  const primary = yield* pgPool(cluster.primary)
  const replica = yield* pgPool(cluster.replicas[0]!)
  const directory = yield* ConnectionPool.make({
    name: ldap.server.url,
    acquire: ldapSession(ldap.server.url, ldap.adminDn, ldap.adminPassword),
    min: 1,
    max: 4
  })

  yield* primary.use(({ sql }) => attempt(() => sql`create table visits (id serial primary key, at timestamptz default now())`))
  yield* Effect.forEach(
    Array.from({ length: 200 }, (_, i) => i),
    () => primary.use(({ sql }) => attempt(() => sql`insert into visits default values`)),
    { concurrency: 32, discard: true }
  )
  // Streaming replication is asynchronous: wait (bounded) until the replica has replayed every row.
  const replicaCount = replica.use(({ sql }) =>
    attempt(() => sql<Array<{ n: number }>>`select count(*)::int as n from visits`).pipe(Effect.map((r) => r[0]!.n))
  ).pipe(Effect.orElseSucceed(() => 0)) // the table itself may not have been replayed yet
  for (let i = 0; i < 100 && (yield* replicaCount) < 200; i++) yield* Effect.sleep("20 millis")
  const counts = yield* Effect.forEach(
    Array.from({ length: 200 }, (_, i) => i),
    () => replica.use(({ sql }) => attempt(() => sql<Array<{ n: number }>>`select count(*)::int as n from visits`)),
    { concurrency: 32 }
  )
  const entries = yield* Effect.forEach(
    ldap.users,
    (user) =>
      directory.use((client) =>
        attempt(() => client.search(ldap.peopleDn, { filter: `(uid=${user.uid})`, attributes: ["cn", "mail"] }))
      ),
    { concurrency: 16 }
  )
  yield* Effect.logInfo(
    `wrote 200 rows on the primary; the replica counted ${counts[0]![0]!.n}; found ${
      entries.filter((r) => r.searchEntries.length === 1).length
    } of ${ldap.users.length} LDAP users`
  )

  // Terminate every replica session behind the pool's back: validation notices on borrow.
  const admin = postgres(cluster.replicas[0]!.url, { max: 1, onnotice: () => undefined, fetch_types: false })
  yield* attempt(() => admin`select pg_terminate_backend(pid) from pg_stat_activity where pid <> pg_backend_pid() and backend_type = 'client backend'`)
  yield* Effect.promise(() => admin.end())
  yield* Effect.sleep("150 millis")
  yield* Effect.forEach(
    Array.from({ length: 20 }, (_, i) => i),
    () => replica.use(({ sql }) => attempt(() => sql`select 1`)),
    { concurrency: 4, discard: true }
  )
  yield* Effect.logInfo("terminated the replica's sessions; borrowers never saw it (see validationFailures)")

  const table = [yield* primary.stats, yield* replica.stats, yield* directory.stats].map((s) => ({
    pool: s.name,
    idle: s.idle,
    inUse: s.inUse,
    max: s.max,
    borrows: s.borrows,
    created: s.created,
    destroyed: s.destroyed,
    validationFailures: s.validationFailures,
    timeouts: s.timeouts
  }))
  console.table(table)
  const snapshot = yield* Metric.snapshot
  const poolMetrics = snapshot.filter((m) => m.id.startsWith("tether_pool_connections_created_total"))
  console.log(
    "metrics:",
    poolMetrics.map((m) => `${m.id}{pool="${m.attributes?.pool}"} ${JSON.stringify((m.state as { count?: number }).count)}`)
      .join("\n  ")
  )
  yield* Effect.logInfo("shutting down: pools drain, servers stop, temp dirs are removed")
}).pipe(Effect.scoped)

Effect.runPromiseExit(program).then((exit) => {
  if (exit._tag === "Failure") {
    console.error(Cause.pretty(exit.cause))
    process.exitCode = 1
  }
})
