/**
 * `npm start`: Tether against real servers.
 *
 * Starts a throwaway PostgreSQL primary + streaming replica and a slapd (in
 * temp dirs, on free loopback ports), then:
 * 1. PostgreSQL through `PgClient`: writes go to the primary, reads to the
 *    replica, a transaction, a cached read;
 * 2. LDAP through `LdapClient`: an LDIF import, a paged search stream, and
 *    10 users binding as themselves concurrently over one pool;
 * 3. a failover: the primary is killed and the replica promoted while
 *    writes keep coming; every write is accounted for;
 * 4. the status of every endpoint, pool and breaker — and shuts everything down.
 *
 * All along, the admin server of `@tether/observe` serves the live dashboard,
 * `/metrics`, `/health/*` and `/status` (its URL is printed first; set
 * `TETHER_ADMIN_PORT` for a fixed port). `npm start -- --serve` keeps the
 * servers, a light load and the dashboard up until interrupted (Ctrl-C).
 */
import { Identity } from "@tether/core"
import type { ServerSet } from "@tether/core"
import { LdapClient, Ldif } from "@tether/ldap"
import { PgClient } from "@tether/pg"
import { AdminServer, Monitor, Observe } from "@tether/observe"
import { PostgresCluster, Slapd } from "@tether/testkit"
import { Cause, Effect, Fiber, Redacted, Schedule, Stream } from "effect"

const serve = process.argv.includes("--serve")

class EndUser extends Identity.Service<EndUser>()("demo/EndUser") {}

const urlOf = (node: PostgresCluster.Node) => `postgres://${node.host}:${node.port}/postgres`

const printStatus = (status: ServerSet.Status) =>
  Effect.sync(() => {
    console.log(`\n${status.name} (${status.strategy})`)
    for (const e of status.endpoints) {
      console.log(
        `  ${e.url.padEnd(34)} ${e.role.padEnd(8)} ${e.health.padEnd(10)} breaker ${(e.breaker?.status ?? "off").padEnd(9)}` +
          ` open ${e.pool.open}/${e.pool.max} borrows ${e.pool.borrows} reuse ${(e.pool.reuseRate * 100).toFixed(0)}%` +
          ` requests ${e.requests} failures ${e.failures}`
      )
    }
  })

const program = Effect.gen(function*() {
  const admin = yield* AdminServer.AdminServer
  const monitor = yield* Monitor.Monitor
  console.log(`\nDashboard: ${admin.url}/  (also ${admin.url}/metrics, /health/ready, /status)`)
  yield* Effect.logInfo("starting PostgreSQL primary + replica and slapd in temp dirs…")
  // remote_apply is inert until a synchronous standby is named (below).
  const cluster = yield* PostgresCluster.make({ replicas: 1, settings: { synchronous_commit: "remote_apply" } })
  const ldap = yield* Slapd.make({ users: 10 })

  // 1. PostgreSQL.
  const db = yield* PgClient.make({
    name: "orders-db",
    endpoints: cluster.nodes.map((node) => ({ url: urlOf(node), role: node.role })),
    user: "postgres",
    health: { interval: "250 millis", timeout: "500 millis" },
    queryTimeout: "1 second"
  })
  yield* monitor.watch("orders-db", db)
  // Synchronous replication: an acknowledged commit is applied on the replica too (reads see it; a failover loses none).
  yield* db.write`alter system set synchronous_standby_names = '*'`
  yield* db.write`select pg_reload_conf()`
  // A reload is asynchronous: wait until the replica is a synchronous standby.
  yield* db.write<{ n: number }>`select count(*)::int as n from pg_stat_replication where sync_state = 'sync'`.pipe(
    Effect.repeat({ until: (rows) => rows[0]!.n >= 1, schedule: Schedule.spaced("50 millis"), times: 200 })
  )
  yield* db.write`create table orders (id int primary key, item text not null)`
  yield* Effect.forEach(Array.from({ length: 100 }, (_, i) => i + 1), (id) => db.write`insert into orders values (${id}, ${`item ${id}`})`, {
    concurrency: 8
  })
  const [count] = yield* db.read<{ n: number; replica: boolean }>`select count(*)::int as n, pg_is_in_recovery() as replica from orders`
  console.log(`\nPostgreSQL: 100 orders written on the primary; the replica reads ${count!.n} (in recovery: ${count!.replica})`)
  yield* db.transaction((tx) => tx.sql`update orders set item = item || ' (gift)' where id = ${7}`, { isolation: "serializable" })
  yield* db.cached`select count(*) from orders`
  yield* db.cached`select count(*) from orders`
  console.log(`  cache after two identical reads: ${JSON.stringify(yield* db.cacheStats)}`)

  // 2. LDAP.
  const directory = yield* LdapClient.make({
    name: "directory",
    endpoints: [ldap.server.url],
    bindDn: ldap.adminDn,
    password: Redacted.make(ldap.adminPassword),
    pool: { max: 4, maxPerIdentity: 2 }
  })
  yield* monitor.watch("directory", directory)
  const ou = `ou=demo,${ldap.suffix}`
  const ldif = [`dn: ${ou}\nobjectClass: organizationalUnit\nou: demo\n`]
  for (let i = 1; i <= 200; i++) ldif.push(`dn: cn=device${i},${ou}\nobjectClass: device\ncn: device${i}\n`)
  const report = yield* directory.importLdif(Ldif.parse(Stream.make(ldif.join("\n"))), { concurrency: 1 })
  const devices = yield* Stream.runCount(directory.search(ou, { scope: "one", pageSize: 50 }))
  console.log(`\nLDAP: LDIF import ${JSON.stringify(report)}; a paged search streams ${devices} devices`)
  // Ten users, each bound as themselves, over a pool of 4 connections (re-bound as needed).
  const seen = yield* Effect.forEach(ldap.users, (user) =>
    directory.as(EndUser).whoami.pipe(
      Effect.provideService(EndUser, Identity.make(user.dn, Redacted.make(user.password), { label: user.uid }))
    ), { concurrency: 10 })
  console.log(`  10 users asked "Who am I?" concurrently; each saw itself: ${seen.every((s, i) => s === `dn:${ldap.users[i]!.dn}`)}`)

  // 3. Failover under a steady write load.
  let running = true
  const outcomes = { committed: 0, unknown: 0, failed: 0 }
  let id = 1000
  const writer = yield* Effect.forkChild(Effect.gen(function*() {
    while (running) {
      const result = yield* Effect.result(db.write`insert into orders values (${++id}, ${"during failover"})`)
      if (result._tag === "Success") outcomes.committed++
      else if (result.failure._tag === "PgOutcomeUnknown") outcomes.unknown++
      else outcomes.failed++
      yield* Effect.sleep("10 millis")
    }
  }))
  yield* Effect.sleep("300 millis")
  console.log(`\nFailover: killing the primary, promoting the replica, writes continuing…`)
  yield* cluster.kill(cluster.primary)
  yield* Effect.sleep("200 millis")
  yield* cluster.promote(cluster.replicas[0]!)
  yield* Effect.sleep("1500 millis")
  running = false
  yield* Fiber.join(writer)
  const [after] = yield* db.write<{ n: number }>`select count(*)::int as n from orders where item = 'during failover'`
  console.log(`  writes: ${JSON.stringify(outcomes)}; rows on the new primary: ${after!.n}`)

  // 4. Status.
  yield* printStatus(yield* db.status)
  yield* printStatus(yield* directory.status)

  if (serve) {
    // A light, steady load so that the dashboard's sparklines move; until Ctrl-C.
    // Scoped: on Ctrl-C it stops before the servers do.
    yield* Effect.forkScoped(Effect.forever(Effect.andThen(
      Effect.all([db.read`select count(*) from orders`, directory.whoami], { concurrency: 2 }).pipe(Effect.ignore),
      Effect.sleep("50 millis")
    )))
    console.log(`\nServing: the dashboard is at ${admin.url}/ — press Ctrl-C to stop the servers.`)
    yield* Effect.never
  }
})

const demo = Effect.runFork(
  Effect.scoped(program).pipe(
    Effect.provide(Observe.layer({ admin: { port: Number(process.env.TETHER_ADMIN_PORT ?? 0) } })),
    Effect.catchCause((cause) =>
      Effect.sync(() => {
        if (Cause.hasInterruptsOnly(cause)) return
        console.error(Cause.pretty(cause))
        process.exitCode = 1
      })
    )
  )
)
// Ctrl-C (or a SIGTERM) stops the demo cleanly: its servers and temp dirs go with its scope.
for (const signal of ["SIGINT", "SIGTERM"] as const) process.once(signal, () => demo.interruptUnsafe())
