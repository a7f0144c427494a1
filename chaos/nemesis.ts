/**
 * The nemesis: a seeded random schedule of faults, one fault at a time per backend. Every step
 * heals what it broke before the next one starts, so the servers are whole when the run ends.
 *
 * PostgreSQL: kill/restart or SIGSTOP/SIGCONT the replica or the primary, reset storms and latency
 * on the proxies, and failovers: kill the primary, promote the replica, bring the old primary
 * back *outside recovery* (a stale primary on the old timeline, taking writes if anyone sends
 * them), then rebuild it as a replica of the new one.
 * LDAP: kill/restart, SIGSTOP/SIGCONT, graceful restarts, reset storms, latency, refused connects.
 */
import type { FaultProxy, PostgresCluster, Slapd } from "@tether/testkit"
import { Effect } from "effect"
import * as fs from "node:fs/promises"
import * as path from "node:path"
import * as Admin from "./admin.ts"
import type { Backend, Fault, History, OpKind } from "./history.ts"
import type { Prng } from "./prng.ts"

export interface Pg {
  readonly cluster: PostgresCluster.Cluster
  /** The proxy in front of each node, in `cluster.nodes` order. */
  readonly proxies: ReadonlyArray<FaultProxy.Proxy>
  /** The node that is the one true primary now, and its streaming replica (undefined while rebuilt). */
  primary: PostgresCluster.Node
  replica: PostgresCluster.Node | undefined
}

export interface Ldap {
  readonly directory: Slapd.Directory
  readonly proxies: ReadonlyArray<FaultProxy.Proxy>
}

const PG_WRITES: ReadonlyArray<OpKind> = ["pg-write", "pg-transaction"]
const PG_READS: ReadonlyArray<OpKind> = ["pg-read"]
const LDAP_OPS: ReadonlyArray<OpKind> = ["ldap-whoami", "ldap-read-self", "ldap-add"]


/** Runs a fault step: records it, logs it, heals it; a fixture failure becomes a warning. */
const step = (
  history: History,
  log: (line: string) => void,
  backend: Backend,
  kind: string,
  target: string,
  affects: ReadonlyArray<OpKind>,
  body: (fault: Fault) => Effect.Effect<void, unknown>
) =>
  Effect.gen(function*() {
    const fault: Fault = { backend, kind, target, start: Date.now(), healed: undefined, affects, note: "" }
    history.faults.push(fault)
    const exit = yield* Effect.exit(body(fault))
    if (fault.healed === undefined) fault.healed = Date.now()
    if (exit._tag === "Failure") {
      const error = exit.cause.toString().split("\n")[0]
      history.warn(`nemesis ${backend} ${kind} ${target} failed: ${error}`)
      fault.note += ` (nemesis step failed: ${error})`
    }
    log(
      `${history.clock(fault.start)} ${backend.padEnd(4)} ${kind.padEnd(22)} ${target.padEnd(6)} ${
        ((fault.healed - fault.start) / 1000).toFixed(1)
      }s${fault.note}`
    )
  })

const sleep = (rng: Prng, min: number, max: number) => Effect.sleep(Math.round(rng.between(min, max)))

/** Sets `synchronous_standby_names` on a primary and reloads. */
const setSync = (node: PostgresCluster.Node, on: boolean) =>
  Effect.gen(function*() {
    yield* Admin.pg(node.url, `alter system set synchronous_standby_names = '${on ? "*" : ""}'`)
    yield* Admin.pg(node.url, "select pg_reload_conf()")
  })

/** Waits until `node` has a synchronous standby. */
export const awaitSync = (node: PostgresCluster.Node, millis = 20_000) =>
  Admin.until(
    Effect.map(
      Admin.pg<{ n: number }>(node.url, "select count(*)::int as n from pg_stat_replication where sync_state = 'sync'"),
      (rows) => (rows[0]?.n ?? 0) >= 1
    ),
    millis,
    50
  )

const storm = (proxies: ReadonlyArray<FaultProxy.Proxy>, rng: Prng, millis: number) =>
  Effect.gen(function*() {
    const until = Date.now() + millis
    let resets = 0
    while (Date.now() < until) {
      for (const proxy of proxies) resets += yield* proxy.resetAll
      yield* sleep(rng, 100, 200)
    }
    return resets
  })

/** One PostgreSQL fault step. */
const pgStep = (pg: Pg, history: History, rng: Prng, log: (line: string) => void, allowFailover: boolean) => {
  const { cluster } = pg
  const proxyOf = (node: PostgresCluster.Node) => pg.proxies[cluster.nodes.indexOf(node)]!
  const primary = pg.primary
  const replica = pg.replica
  if (replica === undefined) return Effect.void
  const kind = rng.weighted<string>([
    ["kill-replica", 2],
    ["stop-replica", 2],
    ["stop-primary", 2],
    ["kill-primary-restart", 2],
    ["restart-primary", 1],
    ["reset-storm", 3],
    ["latency", 2],
    ["failover+stale-primary", allowFailover ? 4 : 0]
  ])
  const run = (target: PostgresCluster.Node, affects: ReadonlyArray<OpKind>, body: (fault: Fault) => Effect.Effect<void, unknown>) =>
    step(history, log, "pg", kind, target.name, affects, body)
  switch (kind) {
    case "kill-replica":
      return run(replica, [...PG_READS, ...PG_WRITES], (fault) =>
        Effect.gen(function*() {
          yield* cluster.kill(replica)
          yield* sleep(rng, 1000, 3000)
          yield* cluster.restart(replica)
          yield* cluster.awaitStreaming(replica, "30 seconds")
          fault.healed = Date.now()
        }))
    case "stop-replica":
    case "stop-primary": {
      const node = kind === "stop-replica" ? replica : primary
      return run(node, kind === "stop-replica" ? [...PG_READS, ...PG_WRITES] : PG_WRITES, (fault) =>
        Effect.gen(function*() {
          yield* cluster.stop(node)
          yield* sleep(rng, 500, 2500)
          yield* cluster.cont(node)
          fault.healed = Date.now()
        }))
    }
    case "kill-primary-restart":
      return run(primary, PG_WRITES, (fault) =>
        Effect.gen(function*() {
          yield* cluster.kill(primary)
          yield* sleep(rng, 300, 2000)
          yield* cluster.restart(primary)
          fault.healed = Date.now()
          yield* cluster.awaitStreaming(replica, "30 seconds")
        }))
    case "restart-primary":
      return run(primary, PG_WRITES, (fault) =>
        Effect.gen(function*() {
          yield* cluster.restart(primary)
          fault.healed = Date.now()
          yield* cluster.awaitStreaming(replica, "30 seconds")
        }))
    case "reset-storm":
      return run(primary, [...PG_READS, ...PG_WRITES], (fault) =>
        Effect.gen(function*() {
          const resets = yield* storm(pg.proxies, rng, rng.between(1000, 4000))
          fault.note = ` (${resets} connections reset)`
          fault.healed = Date.now()
        }))
    case "latency": {
      const node = rng.pick([primary, replica])
      const millis = rng.int(20, 150)
      return run(node, [...PG_READS, ...PG_WRITES], (fault) =>
        Effect.gen(function*() {
          fault.note = ` (${millis} ms each way)`
          yield* proxyOf(node).setLatency(millis)
          yield* sleep(rng, 1000, 4000)
          yield* proxyOf(node).setLatency(0)
          fault.healed = Date.now()
        }))
    }
    default:
      return failover(pg, history, rng, log)
  }
}

/**
 * Kill the primary, promote the replica, bring the old primary back as a stale primary (outside
 * recovery, on the old timeline), keep it there for a while under load, snapshot what it took,
 * and rebuild it as a replica of the new primary.
 */
const failover = (pg: Pg, history: History, rng: Prng, log: (line: string) => void) => {
  const { cluster } = pg
  const old = pg.primary
  const next = pg.replica!
  return Effect.gen(function*() {
    // Only with a synchronous standby: then every acknowledged write is on the replica.
    if (!(yield* awaitSync(old, 10_000))) {
      history.warn(`failover skipped: ${old.name} has no synchronous standby`)
      return
    }
    yield* step(history, log, "pg", "failover", `${old.name}>${next.name}`, [...PG_WRITES], (fault) =>
      Effect.gen(function*() {
        yield* cluster.kill(old)
        yield* sleep(rng, 200, 1000)
        yield* cluster.promote(next)
        pg.primary = next
        pg.replica = undefined
        // No standby now: commit locally (a synchronous primary without its standby would hang).
        yield* setSync(next, false)
        fault.healed = Date.now()
      }))
    if (pg.primary !== next) {
      // The promotion failed (the step warned): bring the old primary back so that the servers stay whole.
      yield* Effect.ignore(cluster.restart(old))
      return
    }
    yield* sleep(rng, 1000, 3000)
    let staleSince = 0
    yield* step(history, log, "pg", "stale-primary", old.name, [...PG_WRITES], (fault) =>
      Effect.gen(function*() {
        // The old primary comes back as it was: a primary on the old timeline, committing locally.
        yield* Effect.promise(() =>
          fs.appendFile(path.join(old.dataDir, "postgresql.auto.conf"), "synchronous_standby_names = ''\n").catch(() => undefined)
        )
        staleSince = Date.now()
        const window = { node: old.name, from: staleSince, to: undefined as number | undefined }
        history.staleWindows.push(window)
        yield* cluster.restart(old)
        yield* sleep(rng, 3000, 8000)
        // What the stale primary took since it came back (before its data is thrown away).
        const rows = yield* Admin.pg<{ id: string; claimed: string }>(
          old.url,
          "select id, claimed from chaos_writes where node = $1 and at >= to_timestamp($2::double precision / 1000)",
          [old.name, staleSince],
          10_000
        ).pipe(
          Effect.catch((e) =>
            Effect.sync(() => {
              history.warn(`cannot read the stale primary ${old.name}'s rows: ${e.message}`)
              return [] as ReadonlyArray<{ id: string; claimed: string }>
            })
          )
        )
        window.to = Date.now()
        if (rows.length > 0) {
          const acked = rows.filter((r) => history.pgAcked.get(r.id)?.node === old.name).length
          history.violate(
            "writes on a fenced (stale) primary",
            `${rows.length} rows written to the stale primary ${old.name} (${acked} acknowledged to the client), e.g. ${rows[0]!.id}`,
            rows.length
          )
          fault.note = ` (${rows.length} rows written to it, ${acked} acknowledged)`
        } else fault.note = " (no rows written to it)"
        yield* cluster.rejoin(old, next)
        yield* cluster.awaitStreaming(old, "30 seconds")
        pg.replica = old
        yield* setSync(next, true)
        if (!(yield* awaitSync(next, 20_000))) history.warn(`${old.name} did not become a synchronous standby`)
        fault.healed = Date.now()
      }))
  })
}

/** One LDAP fault step. */
const ldapStep = (ldap: Ldap, history: History, rng: Prng, log: (line: string) => void) => {
  const i = rng.int(0, ldap.directory.servers.length - 1)
  const server = ldap.directory.servers[i]!
  const proxy = ldap.proxies[i]!
  const kind = rng.weighted<string>([
    ["kill", 2],
    ["stop", 2],
    ["restart", 1],
    ["reset-storm", 3],
    ["latency", 2],
    ["refuse-connects", 1]
  ])
  return step(history, log, "ldap", kind, kind === "reset-storm" ? "all" : server.name, LDAP_OPS, (fault) =>
    Effect.gen(function*() {
      switch (kind) {
        case "kill":
          yield* ldap.directory.kill(server)
          yield* sleep(rng, 1000, 3000)
          yield* ldap.directory.restart(server)
          break
        case "stop":
          yield* ldap.directory.stop(server)
          yield* sleep(rng, 500, 2500)
          yield* ldap.directory.cont(server)
          break
        case "restart":
          yield* ldap.directory.restart(server)
          break
        case "reset-storm": {
          const resets = yield* storm(ldap.proxies, rng, rng.between(1000, 4000))
          fault.note = ` (${resets} connections reset)`
          break
        }
        case "latency": {
          const millis = rng.int(20, 150)
          fault.note = ` (${millis} ms each way)`
          yield* proxy.setLatency(millis)
          yield* sleep(rng, 1000, 4000)
          yield* proxy.setLatency(0)
          break
        }
        default:
          yield* proxy.refuseNew(true, "unlisten")
          yield* sleep(rng, 1000, 3000)
          yield* proxy.refuseNew(false, "unlisten")
      }
      fault.healed = Date.now()
    }))
}

/**
 * Runs fault steps with random gaps until `until` (no step starts later than that; a failover
 * cycle, the longest step, starts only with 25 s to spare).
 */
export const runPg = (pg: Pg, history: History, rng: Prng, until: number, log: (line: string) => void) =>
  Effect.gen(function*() {
    yield* sleep(rng, 2000, 4000)
    while (Date.now() < until) {
      yield* pgStep(pg, history, rng, log, until - Date.now() > 25_000)
      yield* sleep(rng, 500, 2500)
    }
  })

export const runLdap = (ldap: Ldap, history: History, rng: Prng, until: number, log: (line: string) => void) =>
  Effect.gen(function*() {
    yield* sleep(rng, 1000, 3000)
    while (Date.now() < until) {
      yield* ldapStep(ldap, history, rng, log)
      yield* sleep(rng, 500, 2500)
    }
  })
