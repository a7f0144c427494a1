/**
 * `npm run chaos -- --minutes N --seed S`: a Jepsen-style run of Tether against real servers.
 *
 * Starts a PostgreSQL primary + streaming replica (synchronous replication) and two replicating
 * slapd servers, each behind a FaultProxy; runs a mixed LDAP and PostgreSQL load as 20 identities
 * through `LdapClient` and `PgClient` (reads, unique-id writes, transactions, wrong-password
 * binds; every operation checks whom the server saw) while a seeded random schedule kills,
 * SIGSTOPs, restarts, resets, delays and promotes servers, including an old primary that comes
 * back outside recovery. Then it checks the invariants and prints them with availability figures.
 *
 *   npm run chaos -- --minutes 2 --seed 42
 *
 * Exit code: 0 every invariant held; 1 an invariant broke; 2 the harness itself failed (setup);
 * 3 the watchdog stopped a run that overran `minutes + 1`. The seed is printed first and last.
 */
import { LdapClient } from "@tether/ldap"
import { PgClient } from "@tether/pg"
import { FaultProxy, PostgresCluster, Slapd } from "@tether/testkit"
import { Cause, Effect, Exit, Fiber, Logger, Redacted, References, Scope } from "effect"
import * as Admin from "./admin.ts"
import { availabilityTable, faultTimeline, History, invariants, recoveryTable } from "./history.ts"
import * as Load from "./load.ts"
import * as Nemesis from "./nemesis.ts"
import * as Prng from "./prng.ts"

const usage = `usage: npm run chaos -- [--minutes N] [--seed S] [--quiet] [--no-faults]

  --minutes N   length of the faulty load, in minutes (default 2; fractions allowed, e.g. 0.5)
  --seed S      the schedule's seed (default: random; printed either way)
  --quiet       do not print each fault as it happens
  --no-faults   the same load and checks without the nemesis (a control run)`

const parseArgs = (argv: ReadonlyArray<string>) => {
  let minutes = 2
  let seed = Math.floor(Math.random() * 2 ** 31)
  let quiet = false
  let faults = true
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!
    const [flag, inline] = arg.includes("=") ? [arg.slice(0, arg.indexOf("=")), arg.slice(arg.indexOf("=") + 1)] : [arg, undefined]
    const value = () => inline ?? argv[++i] ?? ""
    if (flag === "--minutes") minutes = Number(value())
    else if (flag === "--seed") seed = Number(value())
    else if (flag === "--quiet") quiet = true
    else if (flag === "--no-faults") faults = false
    else if (flag === "--help" || flag === "-h") return { help: true as const }
    else return { error: `unknown argument ${arg}` }
  }
  if (!(minutes > 0 && minutes <= 600)) return { error: "--minutes must be a number of minutes above 0 (at most 600)" }
  if (!Number.isInteger(seed) || seed < 0 || seed > 2 ** 32) return { error: "--seed must be a non-negative integer" }
  return { minutes, seed, quiet, faults }
}

const args = parseArgs(process.argv.slice(2))
if ("help" in args) {
  console.log(usage)
  process.exit(0)
}
if ("error" in args) {
  console.error(`${args.error}\n${usage}`)
  process.exit(2)
}
const { faults, minutes, quiet, seed } = args

const startedAt = Date.now()
/** Everything, setup and checks included, ends by then. */
const hardDeadline = startedAt + (minutes + 1) * 60_000
/** What the final checks and the teardown may take. */
const FINAL_RESERVE = 55_000

const history = new History()
const print = (line: string) => console.log(line)

// Unhandled rejections and uncaught exceptions anywhere in the process break an invariant.
let unhandled = 0
const unhandledExamples: Array<string> = []
const onUnhandled = (what: string) => (reason: unknown) => {
  unhandled++
  if (unhandledExamples.length < 5) {
    unhandledExamples.push(`${what}: ${reason instanceof Error ? reason.stack?.split("\n").slice(0, 3).join(" | ") : String(reason)}`)
  }
}
process.on("unhandledRejection", onUnhandled("unhandled rejection"))
process.on("uncaughtException", onUnhandled("uncaught exception"))

// The watchdog: the run always ends by minutes + 1. Exiting runs the testkit's reaper, which kills
// every server process and deletes the temp dirs.
const watchdog = setTimeout(() => {
  console.error(`chaos: the watchdog stopped the run at ${minutes} + 1 minutes (seed ${seed}); servers are killed on exit`)
  process.exit(3)
}, hardDeadline - Date.now())
watchdog.unref()
// Ctrl-C or a CI timeout: exit (the reaper then kills the servers) instead of dying with them running.
for (const [sig, code] of [["SIGINT", 130], ["SIGTERM", 143]] as const) {
  process.once(sig, () => {
    console.error(`chaos: ${sig} (seed ${seed}); stopping the servers`)
    process.exit(code)
  })
}

// Tether's own logs: counted by level, the warnings and errors kept for the report (a chaos run
// makes many; printing them all would bury the result).
const logCounts = new Map<string, number>()
const logger = Logger.make<unknown, void>((options) => {
  logCounts.set(options.logLevel, (logCounts.get(options.logLevel) ?? 0) + 1)
})

const IDENTITIES = 20

const program = Effect.gen(function*() {
  print(`chaos: seed ${seed}, ${minutes} minute(s)${faults ? " of faults" : " without faults"}; re-run with: npm run chaos -- --minutes ${minutes} --seed ${seed}${faults ? "" : " --no-faults"}`)
  // --- servers
  const cluster = yield* PostgresCluster.make({
    replicas: 1,
    settings: { synchronous_commit: "remote_apply", max_connections: 200 }
  })
  const directory = yield* Slapd.make({ servers: 2, users: IDENTITIES })
  const pgProxies = yield* Effect.forEach(cluster.nodes, (node) => FaultProxy.make({ target: node }))
  const ldapProxies = yield* Effect.forEach(directory.servers, (server) => FaultProxy.make({ target: server }))
  const primary = cluster.primary
  const replica = cluster.replicas[0]!

  // --- schema, roles, synchronous replication
  const passwords = Array.from({ length: IDENTITIES }, (_, i) => `chaos-pg-${seed}-${i + 1}-${Math.random().toString(36).slice(2, 10)}`)
  const roles = Array.from({ length: IDENTITIES }, (_, i) => `chaos_u${i + 1}`)
  yield* Admin.pg(primary.url, `create table chaos_writes (
    id text not null,
    claimed text not null,
    who text not null default current_user,
    node text not null default current_setting('cluster_name'),
    at timestamptz not null default clock_timestamp())`)
  yield* Admin.pg(primary.url, "create index on chaos_writes (id)")
  for (let i = 0; i < IDENTITIES; i++) {
    yield* Admin.pg(primary.url, `create role ${roles[i]} login password '${passwords[i]}' in role ${cluster.passwordGroup}`)
    yield* Admin.pg(primary.url, `grant select, insert on chaos_writes to ${roles[i]}`)
  }
  yield* Admin.pg(primary.url, "alter system set synchronous_standby_names = '*'")
  yield* Admin.pg(primary.url, "select pg_reload_conf()")
  if (!(yield* Nemesis.awaitSync(primary, 30_000))) return yield* Effect.fail(new Admin.AdminError({ message: "the replica never became synchronous" }))
  const writeBase = `ou=chaos,${directory.suffix}`
  yield* Admin.ldapAdd(directory.server.url, directory.adminDn, directory.adminPassword, writeBase, {
    objectClass: "organizationalUnit",
    ou: "chaos"
  })
  print(`servers up in ${((Date.now() - startedAt) / 1000).toFixed(1)}s: PostgreSQL ${cluster.nodes.map((n) => `${n.name}:${n.port}`).join(" ")}, slapd ${
    directory.servers.map((s) => `${s.name}:${s.port}`).join(" ")
  } (each behind a FaultProxy)`)

  // --- clients, in their own scope so that they can be closed before the leak check
  const clientScope = yield* Scope.make()
  const db = yield* PgClient.make({
    name: "chaos-pg",
    endpoints: cluster.nodes.map((node, i) => ({ url: `postgres://${pgProxies[i]!.address}/postgres`, role: node.role })),
    user: "postgres",
    health: { interval: "250 millis", timeout: "1 second" },
    connectTimeout: "2 seconds",
    queryTimeout: "3 seconds",
    pool: { max: 32, acquireTimeout: "5 seconds" }
  }).pipe(Scope.provide(clientScope))
  const ldap = yield* LdapClient.make({
    name: "chaos-ldap",
    endpoints: ldapProxies.map((proxy) => proxy.url("ldap")),
    bindDn: directory.adminDn,
    password: Redacted.make(directory.adminPassword),
    health: { interval: "500 millis", timeout: "1 second" },
    connectTimeout: "2 seconds",
    timeout: "3 seconds",
    pool: { max: 24, maxPerIdentity: 2, acquireTimeout: "5 seconds" }
  }).pipe(Scope.provide(clientScope))

  // --- the run
  const loadEnd = Math.min(Date.now() + minutes * 60_000, hardDeadline - FINAL_RESERVE)
  const pg: Nemesis.Pg = { cluster, proxies: pgProxies, primary, replica }
  const log = quiet ? () => {} : print
  print(`load: ${IDENTITIES} identities until ${history.clock(loadEnd)}; faults (printed as each ends):`)
  let stopping = false
  const load = yield* Effect.forkChild(Load.run({
    seed,
    principals: directory.users.map((user, i) => ({
      index: i + 1,
      ldapDn: user.dn,
      ldapPassword: user.password,
      pgRole: roles[i]!,
      pgPassword: passwords[i]!
    })),
    db,
    ldap,
    adminDn: directory.adminDn,
    writeBase,
    history,
    stopping: () => stopping,
    opTimeoutMillis: 20_000,
    thinkMillis: [0, 20]
  }))
  if (faults) {
    yield* Effect.all([
      Nemesis.runPg(pg, history, Prng.make(seed, 1), loadEnd - 3000, log),
      Nemesis.runLdap({ directory, proxies: ldapProxies }, history, Prng.make(seed, 2), loadEnd - 3000, log)
    ], { concurrency: 2, discard: true })
  } else print("  none (--no-faults)")
  // A quiet tail: the last faults' recovery is measured under load.
  yield* Effect.sleep(Math.max(0, loadEnd - Date.now()))
  stopping = true
  yield* Fiber.join(load)
  const loadStopped = Date.now()

  // --- make every server whole (the nemesis heals as it goes; this is belt and braces)
  for (const proxy of [...pgProxies, ...ldapProxies]) yield* Effect.ignore(proxy.heal)
  for (const node of cluster.nodes) if (node.state === "stopped") yield* Effect.ignore(cluster.cont(node))
  for (const server of directory.servers) {
    if (server.state === "stopped") yield* Effect.ignore(directory.cont(server))
    if (server.state === "killed") yield* Effect.ignore(directory.restart(server))
  }

  if (pg.primary.state !== "running") yield* Effect.ignore(cluster.restart(pg.primary))
  // What the clients think of the servers at the end (after the faults healed).
  for (const status of [yield* db.status, yield* ldap.status]) {
    print(`status ${status.name}: ${status.endpoints.map((e) => `${e.url} ${e.role} ${e.health} breaker ${e.breaker?.status ?? "off"} open ${e.pool.open}`).join("; ")}`)
  }

  // --- connections: close the clients, then nothing may stay open through the proxies
  const closed = yield* Effect.exit(Effect.timeout(Scope.close(clientScope, Exit.void), 20_000))
  if (Exit.isFailure(closed)) history.warn("closing the clients took more than 20 s")
  yield* Admin.until(
    Effect.map(Effect.forEach([...pgProxies, ...ldapProxies], (p) => p.stats), (stats) => stats.every((s) => s.active === 0)),
    10_000
  )
  const proxyActive = yield* Effect.forEach([...pgProxies, ...ldapProxies], (p) => Effect.map(p.stats, (s) => s.active))
  const pgActive = proxyActive.slice(0, pgProxies.length).reduce((a, b) => a + b, 0)
  const ldapActive = proxyActive.slice(pgProxies.length).reduce((a, b) => a + b, 0)
  let pgBackends = 0
  for (const node of cluster.nodes) {
    const rows = yield* Admin.pg<{ n: number }>(
      node.url,
      `select count(*)::int as n from pg_stat_activity where backend_type = 'client backend' and coalesce(application_name, '') <> '${Admin.ADMIN_APPLICATION}'`
    ).pipe(Effect.orElseSucceed(() => [{ n: 0 }]))
    pgBackends += rows[0]?.n ?? 0
  }
  const leaked = Math.max(pgActive, pgBackends) + ldapActive
  if (leaked > 0) {
    history.violate(
      "connections leaked",
      `after the clients closed: ${pgActive} PostgreSQL and ${ldapActive} LDAP connections still open through the proxies, ${pgBackends} PostgreSQL client sessions`,
      leaked
    )
  }

  // --- PostgreSQL writes: every acknowledged id exactly once on the surviving primary
  const rows = yield* Admin.pg<{ id: string; n: number; who: string; claimed: string }>(
    pg.primary.url,
    "select id, count(*)::int as n, min(who) as who, min(claimed) as claimed from chaos_writes group by id",
    [],
    20_000
  )
  const present = new Map(rows.map((r) => [r.id, r]))
  const lostPg = [...history.pgAcked.keys()].filter((id) => !present.has(id))
  if (lostPg.length > 0) {
    const onStale = lostPg.filter((id) => history.staleWindows.some((w) => w.node === history.pgAcked.get(id)?.node)).length
    history.violate(
      "acknowledged writes lost",
      `PostgreSQL: ${lostPg.length} acknowledged writes are not on the surviving primary ${pg.primary.name} (${onStale} were acknowledged by a node that was stale at some point), e.g. ${
        lostPg.slice(0, 3).join(", ")
      }`,
      lostPg.length
    )
  }
  const duplicated = rows.filter((r) => r.n > 1)
  if (duplicated.length > 0) {
    history.violate("writes duplicated", `PostgreSQL: ${duplicated.length} ids written more than once, e.g. ${duplicated[0]!.id}`, duplicated.length)
  }
  const foreign = rows.filter((r) => r.who !== r.claimed)
  if (foreign.length > 0) {
    history.violate(
      "operations as the wrong identity or anonymous",
      `PostgreSQL: ${foreign.length} rows inserted as another role than the identity's, e.g. ${foreign[0]!.id} by ${foreign[0]!.who}`,
      foreign.length
    )
  }
  const unknownPresent = [...history.pgUnknown].filter((id) => present.has(id)).length

  // --- LDAP adds: every acknowledged entry on some server (after replication), created by the service account
  const listAll = Effect.forEach(directory.servers, (server) =>
    Admin.ldapList(server.url, directory.adminDn, directory.adminPassword, writeBase))
  let lists = yield* listAll
  const converged = yield* Admin.until(
    Effect.map(listAll, (now) => {
      lists = now
      const a = new Set(now[0]!.map((e) => e.dn))
      return now.every((list) => list.length === a.size && list.every((e) => a.has(e.dn)))
    }),
    15_000,
    500
  )
  const union = new Map<string, string>()
  for (const list of lists) for (const e of list) union.set(e.dn, e.creatorsName)
  const lostLdap = [...history.ldapAcked].filter((dn) => !union.has(dn))
  if (lostLdap.length > 0) {
    history.violate("acknowledged writes lost", `LDAP: ${lostLdap.length} acknowledged adds on no server, e.g. ${lostLdap[0]}`, lostLdap.length)
  }
  const adminDn = directory.adminDn.toLowerCase()
  const wrongCreator = [...union.entries()].filter(([, creator]) => creator !== adminDn)
  if (wrongCreator.length > 0) {
    history.violate(
      "operations as the wrong identity or anonymous",
      `LDAP: ${wrongCreator.length} entries created by ${wrongCreator[0]![1] || "anonymous"} instead of the service account`,
      wrongCreator.length
    )
  }
  if (!converged) history.warn("the two slapd servers did not converge within 15 s (replication, not Tether)")
  const unknownLdapPresent = [...history.ldapUnknown].filter((dn) => union.has(dn)).length

  if (unhandled > 0) {
    history.violate("unhandled rejections / uncaught exceptions", unhandledExamples.join("\n      "), unhandled)
  }

  // --- report
  const seconds = (ms: number) => `${(ms / 1000).toFixed(1)}s`
  print("")
  print(`operations (${history.ops.length} in ${seconds(loadStopped - history.t0)}; "failed" is availability, not an invariant):`)
  for (const line of availabilityTable(history)) print(line)
  print("")
  print("fault timeline (recovered: first success of an affected operation started after the fault ended):")
  for (const line of faultTimeline(history)) print(line)
  print("")
  print(`faults (${history.faults.length}) and recovery (first success of an affected operation started after the fault ended):`)
  for (const line of recoveryTable(history)) print(line)
  print("")
  print(
    `writes: PostgreSQL ${history.pgAcked.size} acknowledged, ${history.pgUnknown.size} with unknown outcome (${unknownPresent} of them committed), ${rows.length} ids on ${pg.primary.name}; ` +
      `LDAP ${history.ldapAcked.size} acknowledged, ${history.ldapUnknown.size} unknown (${unknownLdapPresent} present), ${union.size} entries`
  )
  print(`Tether log lines by level: ${[...logCounts.entries()].map(([l, n]) => `${l} ${n}`).join(", ") || "none"}`)
  for (const warning of history.warnings.slice(0, 10)) print(`warning: ${warning}`)
  print("")
  print("invariants:")
  let broken = 0
  for (const invariant of invariants) {
    const total = history.total(invariant)
    if (total > 0) broken++
    print(`  ${total === 0 ? "ok  " : "FAIL"} ${invariant.padEnd(62)} ${total}`)
    const examples = history.violations.filter((v) => v.invariant === invariant)
    if (examples.length > 3) {
      // Where they came from: the operation kind (or check) that saw them.
      const by = new Map<string, number>()
      for (const v of examples) by.set(v.detail.split(/[ :]/)[0]!, (by.get(v.detail.split(/[ :]/)[0]!) ?? 0) + v.count)
      print(`         by: ${[...by.entries()].sort((a, b) => b[1] - a[1]).map(([k, n]) => `${k} ${n}`).join(", ")}`)
    }
    for (const v of examples.slice(0, 3)) print(`         ${history.clock(v.at)} ${v.detail}`)
    if (examples.length > 3) print(`         … ${examples.length - 3} more`)
  }
  print("")
  print(
    broken === 0
      ? `chaos: PASS (seed ${seed}, ${minutes} min)`
      : `chaos: FAIL: ${broken} invariant(s) broken (seed ${seed}; re-run: npm run chaos -- --minutes ${minutes} --seed ${seed}${faults ? "" : " --no-faults"})`
  )
  return broken === 0 ? 0 : 1
})

const main = program.pipe(
  Effect.scoped,
  Effect.provide(Logger.layer([logger])),
  Effect.provideService(References.MinimumLogLevel, "Info"),
  Effect.catchCause((cause) =>
    Effect.sync(() => {
      console.error(`chaos: the harness failed (seed ${seed}):\n${Cause.pretty(cause)}`)
      return 2
    })
  )
)

Effect.runPromise(main).then((code) => {
  clearTimeout(watchdog)
  console.log(`chaos: done in ${((Date.now() - startedAt) / 1000).toFixed(0)}s`)
  process.exit(code)
}, (error) => {
  console.error(`chaos: the harness failed (seed ${seed}): ${String(error)}`)
  process.exit(2)
})
