/**
 * A real PostgreSQL primary with streaming replicas, for integration tests.
 *
 * Every node runs as the `postgres` OS user (the server refuses root) on a free 127.0.0.1 port,
 * in a fresh temp dir, tuned for speed (fsync off). Closing the scope stops every process and
 * deletes the temp dir, also when the test failed. Needs the PostgreSQL server binaries
 * (`initdb`, `pg_ctl`, `pg_basebackup`, `postgres`); `npm run provision` checks for them.
 *
 * It runs past 400 lines: a quarter is the documented public types, the rest one scoped
 * lifecycle (`make`: initdb, base backups, start, stop, kill, promote, rewind and the
 * finalizers that always clean up), which reads best in one place.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import postgres from "postgres"
 * import { PostgresCluster } from "@tether/testkit"
 *
 * const program = Effect.gen(function*() {
 *   const cluster = yield* PostgresCluster.PostgresCluster
 *   const sql = postgres(cluster.primary.url, { max: 1 })
 *   yield* Effect.promise(() => sql`select 1`.then(() => sql.end()))
 *   yield* cluster.kill(cluster.primary)
 *   yield* cluster.promote(cluster.replicas[0]!)
 * }).pipe(Effect.provide(PostgresCluster.layer({ replicas: 1 })))
 * ```
 *
 * @since 0.1.0
 */
import * as fs from "node:fs/promises"
import * as path from "node:path"
import { Context, Duration, Effect, Layer, Semaphore } from "effect"
import type { Scope } from "effect"
import { FixtureError } from "./FixtureError.ts"
import * as Binaries from "./internal/binaries.ts"
import * as Pg from "./internal/pg.ts"
import { HOST, freePorts } from "./internal/ports.ts"
import {
  awaitExit,
  isAlive,
  isStopped,
  killAllUnder,
  processesUnder,
  redact,
  run,
  signal,
  tail
} from "./internal/process.ts"
import * as TempDir from "./internal/tempdir.ts"
import * as Wait from "./internal/wait.ts"

/**
 * What a node is now: `primary` accepts writes, `replica` is a hot standby streaming from the
 * primary. A promoted replica becomes `primary`.
 *
 * @since 0.1.0
 */
export type Role = "primary" | "replica"

/**
 * The process state of a node as the fixture left it: `running`, `stopped` (SIGSTOPped, see
 * {@link Cluster.stop}) or `killed` (SIGKILLed, see {@link Cluster.kill}).
 *
 * @since 0.1.0
 */
export type NodeState = "running" | "stopped" | "killed"

/**
 * One PostgreSQL server of the cluster. `role`, `pid` and `state` always show the current
 * values (they change on promote, restart and kill).
 *
 * @example
 * ```ts
 * import postgres from "postgres"
 * import type { PostgresCluster } from "@tether/testkit"
 *
 * declare const cluster: PostgresCluster.Cluster
 *
 * const sql = postgres(cluster.primary.url, { max: 1 }) // postgres://postgres@127.0.0.1:PORT/postgres
 * ```
 *
 * @since 0.1.0
 */
export interface Node {
  /** `pg0` (the first primary), `pg1`, `pg2`, … (the replicas). */
  readonly name: string
  /** Always `127.0.0.1`. */
  readonly host: string
  readonly port: number
  /** Superuser URL (trust auth, no password): `postgres://postgres@127.0.0.1:PORT/postgres`. */
  readonly url: string
  readonly dataDir: string
  /** The server log (pg_ctl's `-l` file). */
  readonly logFile: string
  readonly role: Role
  /** The postmaster's pid, or `undefined` while the node is killed. */
  readonly pid: number | undefined
  readonly state: NodeState
}

/** The group whose member roles authenticate with a password. */
const PASSWORD_GROUP = "tether_password_roles"

/**
 * A login role that authenticates with a password (`scram-sha-256` in pg_hba.conf), for
 * identity tests. The superuser `postgres` uses `trust`.
 *
 * @since 0.1.0
 */
export interface PasswordUser {
  readonly user: string
  readonly password: string
  /** `postgres://USER:PASSWORD@127.0.0.1:PORT/postgres`; it contains the password, do not log it. */
  readonly url: (node: Node) => string
}

/**
 * A running cluster and its fault controls. Every control takes one of `nodes`.
 *
 * @since 0.1.0
 */
export interface Cluster {
  /** The temp dir that holds every node's data dir, sockets and logs. */
  readonly dir: string
  /** The node started as primary (`pg0`); after a failover check `role`. */
  readonly primary: Node
  /** The nodes started as streaming replicas. */
  readonly replicas: ReadonlyArray<Node>
  /** All nodes: the primary first, then the replicas. */
  readonly nodes: ReadonlyArray<Node>
  /** The password-authenticated login role. */
  readonly passwordUser: PasswordUser
  /**
   * A group role (`NOLOGIN`): login roles made members of it (`create role … login
   * password '…' in role tether_password_roles`) must authenticate with their
   * password (`scram-sha-256`), like {@link passwordUser}. For tests with many identities.
   */
  readonly passwordGroup: string
  /** The node that is primary now (the first running node whose role is `primary`). */
  readonly currentPrimary: Effect.Effect<Node, FixtureError>
  /**
   * SIGKILLs the postmaster and all its processes: a crash. Open connections break, new ones
   * are refused. `restart` brings it back (with crash recovery).
   */
  readonly kill: (node: Node) => Effect.Effect<void, FixtureError>
  /**
   * SIGSTOPs the postmaster and all its processes: a hang. Queries on open connections and new
   * connections hang (the kernel still accepts TCP connections). Undo with `cont`.
   */
  readonly stop: (node: Node) => Effect.Effect<void, FixtureError>
  /** SIGCONTs a node paused by `stop`. */
  readonly cont: (node: Node) => Effect.Effect<void, FixtureError>
  /** Promotes a replica (`pg_ctl promote`) and waits until it leaves recovery and accepts writes. */
  readonly promote: (node: Node) => Effect.Effect<void, FixtureError>
  /**
   * Restarts a node: resumes it if stopped, shuts it down fast if running (or finishes off a
   * killed one), then starts it and waits until it accepts connections. A replica whose primary
   * is up then streams again; wait for that with `awaitStreaming`.
   */
  readonly restart: (node: Node) => Effect.Effect<void, FixtureError>
  /** Waits until a replica's WAL receiver is streaming from its primary. */
  readonly awaitStreaming: (node: Node, timeout?: Duration.Input) => Effect.Effect<void, FixtureError>
  /**
   * Rebuilds `node` as a streaming replica of `primary`: kills it (whatever its state), throws its
   * data away, takes a fresh base backup of `primary` (`pg_basebackup -R`) and starts it. This is
   * how an old primary rejoins after a failover (its timeline has diverged, so it cannot simply
   * follow the new one). Its `role` becomes `replica`; wait with `awaitStreaming`.
   *
   * @example
   * ```ts
   * import { Effect } from "effect"
   * import { PostgresCluster } from "@tether/testkit"
   *
   * const failover = Effect.gen(function*() {
   *   const cluster = yield* PostgresCluster.PostgresCluster
   *   yield* cluster.kill(cluster.primary)
   *   yield* cluster.promote(cluster.replicas[0]!)
   *   yield* cluster.rejoin(cluster.primary, cluster.replicas[0]!)
   *   yield* cluster.awaitStreaming(cluster.primary)
   * })
   * ```
   */
  readonly rejoin: (node: Node, primary: Node) => Effect.Effect<void, FixtureError>
}

/**
 * Options of {@link make} and {@link layer}.
 *
 * @since 0.1.0
 */
export interface Options {
  /** Number of streaming replicas (0–8). Default 1. */
  readonly replicas?: number
  /** Extra `postgresql.conf` settings for every node, e.g. `{ max_connections: 20 }`. */
  readonly settings?: Readonly<Record<string, string | number | boolean>>
  /** The password-authenticated role. Default `{ user: "tether", password: "tether-password" }`. */
  readonly passwordUser?: { readonly user: string; readonly password: string }
  /** Limit for each startup step (initdb, start, base backup, streaming). Default 60 seconds. */
  readonly timeout?: Duration.Input
}

/**
 * The service: a running {@link Cluster}, from {@link layer}.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { PostgresCluster } from "@tether/testkit"
 *
 * const program = Effect.gen(function*() {
 *   const cluster = yield* PostgresCluster.PostgresCluster
 * }).pipe(Effect.provide(PostgresCluster.layer({ replicas: 0 })))
 * ```
 *
 * @since 0.1.0
 */
export class PostgresCluster extends Context.Service<PostgresCluster, Cluster>()("@tether/testkit/PostgresCluster") {}

/**
 * A layer that starts a cluster and stops it (deleting every file) when the layer is released.
 *
 * @example
 * ```ts
 * import { layer } from "@effect/vitest"
 * import { Effect } from "effect"
 * import { PostgresCluster } from "@tether/testkit"
 *
 * layer(PostgresCluster.layer({ replicas: 2 }), { excludeTestServices: true })("pg", (it) => {
 *   it.effect("reads from a replica", () => Effect.gen(function*() {
 *     const cluster = yield* PostgresCluster.PostgresCluster
 *     // ...
 *   }))
 * })
 * ```
 *
 * @since 0.1.0
 */
export const layer = (options: Options = {}): Layer.Layer<PostgresCluster, FixtureError> =>
  Layer.effect(PostgresCluster, make(options))

// ---------------------------------------------------------------------------------------------

class NodeImpl implements Node {
  readonly host = HOST
  readonly url: string
  readonly dataDir: string
  readonly logFile: string
  role: Role
  pid: number | undefined = undefined
  state: NodeState = "killed"
  readonly lock = Semaphore.makeUnsafe(1)
  constructor(readonly name: string, readonly port: number, root: string, role: Role) {
    this.role = role
    this.url = `postgres://postgres@${HOST}:${port}/postgres`
    this.dataDir = path.join(root, name)
    this.logFile = path.join(root, `${name}.log`)
  }
}

const BASE_SETTINGS: Readonly<Record<string, string | number | boolean>> = {
  listen_addresses: HOST,
  // TCP only: no Unix socket lock files to go stale when a node is SIGKILLed.
  unix_socket_directories: "",
  // Fast, not durable: nothing here survives the test anyway.
  fsync: false,
  synchronous_commit: false,
  full_page_writes: false,
  shared_buffers: "16MB",
  max_connections: 100,
  wal_level: "replica",
  max_wal_senders: 16,
  max_replication_slots: 16,
  wal_keep_size: "128MB",
  hot_standby: true,
  wal_receiver_status_interval: "1s",
  wal_retrieve_retry_interval: "200ms",
  password_encryption: "scram-sha-256",
  logging_collector: false
}

const renderSettings = (settings: Readonly<Record<string, string | number | boolean>>): string =>
  Object.entries(settings)
    .map(([key, value]) => {
      const rendered = typeof value === "boolean" ? (value ? "on" : "off") : typeof value === "number"
        ? String(value)
        : `'${value.replace(/'/g, "''")}'`
      return `${key} = ${rendered}\n`
    })
    .join("")

const unknownNode = (node: Node) =>
  new FixtureError({ message: `${node.name} is not a node of this cluster: pass one of cluster.nodes` })

/**
 * Starts a primary and `options.replicas` streaming replicas; the scope owns them.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { PostgresCluster } from "@tether/testkit"
 *
 * const program = Effect.gen(function*() {
 *   const cluster = yield* PostgresCluster.make({ replicas: 2 })
 *   return cluster.replicas.map((node) => node.url)
 * }).pipe(Effect.scoped)
 * ```
 *
 * @since 0.1.0
 */
export const make = (options: Options = {}): Effect.Effect<Cluster, FixtureError, Scope.Scope> =>
  Effect.gen(function*() {
    const replicaCount = options.replicas ?? 1
    if (!Number.isInteger(replicaCount) || replicaCount < 0 || replicaCount > 8) {
      return yield* new FixtureError({ message: `replicas must be an integer from 0 to 8, got ${replicaCount}` })
    }
    const passwordUser = options.passwordUser ?? { user: "tether", password: "tether-password" }
    if (!/^[a-z_][a-z0-9_]*$/.test(passwordUser.user) || passwordUser.user === "postgres") {
      return yield* new FixtureError({
        message: `passwordUser.user must be a plain lower-case identifier other than "postgres", got "${passwordUser.user}"`
      })
    }
    const secrets = [passwordUser.password]
    const timeout = options.timeout ?? Duration.seconds(60)
    const bins = yield* Binaries.postgres
    const owner = yield* Binaries.osUser("postgres")

    // Run a PostgreSQL tool as the postgres OS user.
    const uid = process.getuid?.() ?? -1
    const runuser = Binaries.findIn("runuser", [], ["/usr/sbin", "/sbin", "/usr/bin", "/bin"])
    if (uid !== 0 && uid !== owner.uid) {
      return yield* new FixtureError({
        message: `the PostgreSQL fixture must run as root (it switches to the 'postgres' user) or as 'postgres'; ` +
          `this process runs as uid ${uid}`
      })
    }
    if (uid === 0 && runuser === undefined) {
      return yield* new FixtureError({ message: "runuser not found (package util-linux): run `npm run provision`" })
    }
    const asPostgres = (command: string, args: ReadonlyArray<string>, what: string) =>
      uid === 0
        ? run(runuser!, ["-u", "postgres", "--", command, ...args], { what, timeout, secrets })
        : run(command, args, { what, timeout, secrets })

    const root = yield* TempDir.make("tether-pg-", owner)
    const ports = yield* freePorts(replicaCount + 1)
    const nodes = ports.map((port, i) => new NodeImpl(`pg${i}`, port, root, i === 0 ? "primary" : "replica"))
    const primary = nodes[0]!
    const replicas = nodes.slice(1)
    const asImpl = (node: Node): Effect.Effect<NodeImpl, FixtureError> => {
      const found = nodes.find((n) => n === node)
      return found === undefined ? Effect.fail(unknownNode(node)) : Effect.succeed(found)
    }

    const logTail = (node: NodeImpl) =>
      TempDir.readFile(node.logFile).pipe(
        Effect.map((log) => `${node.name} log (${node.logFile}):\n${redact(tail(log), secrets)}`),
        Effect.orElseSucceed(() => "")
      )

    const readPid = (node: NodeImpl) =>
      TempDir.readFile(path.join(node.dataDir, "postmaster.pid")).pipe(
        Effect.flatMap((text) => {
          const pid = Number(text.split("\n")[0])
          return Number.isInteger(pid) && pid > 0
            ? Effect.succeed(pid)
            : Effect.fail(new FixtureError({ message: `${node.name}: unreadable postmaster.pid` }))
        })
      )

    const nodeSettings = (node: NodeImpl) =>
      renderSettings({ port: node.port, cluster_name: node.name })

    // pg_ctl MODE -D DIR, silent; `-w -t` waits (bounded) for the mode to take effect.
    const waitSeconds = String(Math.ceil(Duration.toSeconds(timeout)))
    const pgCtl = (node: NodeImpl, mode: string, args: ReadonlyArray<string>) =>
      asPostgres(bins.pg_ctl, [mode, "-D", node.dataDir, "-s", ...args], `pg_ctl ${mode} (${node.name})`)

    const start = (node: NodeImpl) =>
      Effect.gen(function*() {
        yield* pgCtl(node, "start", ["-w", "-t", waitSeconds, "-l", node.logFile]).pipe(
          Effect.catch((e) =>
            Effect.flatMap(logTail(node), (log) =>
              Effect.fail(new FixtureError({ message: `${e.message}\n${log}`, cause: e })))
          )
        )
        node.pid = yield* readPid(node)
        node.state = "running"
      })

    const awaitStreaming = (node: Node, waitFor: Duration.Input = timeout) =>
      Effect.flatMap(asImpl(node), (impl) =>
        Wait.until(
          Effect.map(
            Pg.scalar(impl.url, "select status from pg_stat_wal_receiver"),
            (status) => status === "streaming"
          ),
          {
            what: `${impl.name} to stream WAL from the primary`,
            timeout: waitFor,
            interval: Duration.millis(20),
            detail: () => logTail(impl)
          }
        ))

    // Stops everything; runs on scope close before the temp dir is removed (and killed under).
    yield* Effect.addFinalizer(() =>
      Effect.gen(function*() {
        for (const pid of processesUnder(root)) signal(pid, "SIGCONT")
        yield* Effect.forEach(
          nodes.filter((node) => node.pid !== undefined && isAlive(node.pid)),
          (node) =>
            Effect.ignore(pgCtl(node, "stop", ["-m", "immediate", "-w", "-t", "5"])),
          { concurrency: "unbounded", discard: true }
        )
        yield* killAllUnder(root)
        for (const node of nodes) {
          node.pid = undefined
          node.state = "killed"
        }
      })
    )

    // --- primary
    const started = Date.now()
    yield* asPostgres(bins.initdb, [
      "-D",
      primary.dataDir,
      "-U",
      "postgres",
      "--auth=trust",
      "--no-sync",
      "--no-instructions",
      "-E",
      "UTF8",
      "--locale=C"
    ], "initdb")
    const conf = path.join(primary.dataDir, "postgresql.conf")
    yield* TempDir.appendFile(
      conf,
      `\n# tether testkit\n${renderSettings({ ...BASE_SETTINGS, ...options.settings })}${nodeSettings(primary)}`
    )
    const hba = path.join(primary.dataDir, "pg_hba.conf")
    const hbaText = yield* TempDir.readFile(hba)
    yield* TempDir.writeFile(
      hba,
      `# tether testkit: the password user and members of the password group must authenticate\n` +
        `host all ${passwordUser.user} ${HOST}/32 scram-sha-256\n` +
        `host all +${PASSWORD_GROUP} ${HOST}/32 scram-sha-256\n` +
        hbaText
    )
    yield* start(primary)
    yield* Pg.query(
      primary.url,
      `create role ${PASSWORD_GROUP} nologin; ` +
        `create role ${Pg.ident(passwordUser.user)} login password ${Pg.literal(passwordUser.password)}`
    ).pipe(
      // No `cause`: postgres.js errors carry the statement, which holds the password.
      Effect.mapError((cause) =>
        new FixtureError({
          message: `cannot create the password role ${passwordUser.user} on ${primary.name}: ${
            redact(cause instanceof Error ? cause.message : String(cause), secrets)
          }`
        })
      )
    )
    yield* Effect.logDebug(`PostgresCluster: ${primary.name} up on port ${primary.port} in ${Date.now() - started} ms`)

    // --- replicas
    yield* Effect.forEach(replicas, (node) =>
      Effect.gen(function*() {
        yield* asPostgres(bins.pg_basebackup, [
          "-h",
          HOST,
          "-p",
          String(primary.port),
          "-U",
          "postgres",
          "-D",
          node.dataDir,
          "-R",
          "-X",
          "stream",
          "-c",
          "fast",
          "--no-sync"
        ], `pg_basebackup (${node.name})`)
        yield* TempDir.appendFile(
          path.join(node.dataDir, "postgresql.conf"),
          `\n# tether testkit: ${node.name}\n${nodeSettings(node)}`
        )
        yield* start(node)
      }), { concurrency: "unbounded", discard: true })
    yield* Effect.forEach(replicas, (node) => awaitStreaming(node), { concurrency: "unbounded", discard: true })
    yield* Effect.logDebug(`PostgresCluster: ${nodes.length} nodes up in ${Date.now() - started} ms`)

    // --- controls
    const withLock = (node: Node, f: (node: NodeImpl) => Effect.Effect<void, FixtureError>) =>
      Effect.flatMap(asImpl(node), (impl) => impl.lock.withPermits(1)(f(impl)))

    const requireRunning = (node: NodeImpl, action: string) =>
      node.state === "running" && node.pid !== undefined
        ? Effect.succeed(node.pid)
        : Effect.fail(new FixtureError({ message: `cannot ${action} ${node.name}: it is ${node.state}` }))

    const killImpl = (node: NodeImpl) =>
      Effect.gen(function*() {
        if (node.pid !== undefined) {
          signal(node.pid, "SIGKILL")
          yield* awaitExit([node.pid], Duration.seconds(5))
        }
        yield* killAllUnder(node.dataDir)
        // A SIGKILLed postmaster may linger as a zombie until init reaps it, and PostgreSQL takes a
        // zombie's pid in postmaster.pid for a live server; every process is gone, so drop the file.
        yield* TempDir.remove(path.join(node.dataDir, "postmaster.pid"))
        node.pid = undefined
        node.state = "killed"
      })

    const kill = (node: Node) => withLock(node, killImpl)

    const stop = (node: Node) =>
      withLock(node, (impl) =>
        Effect.gen(function*() {
          const pid = yield* requireRunning(impl, "stop")
          // The postmaster first, so it forks nothing new while we pause its children.
          signal(pid, "SIGSTOP")
          const pids = [pid, ...processesUnder(impl.dataDir).filter((p) => p !== pid)]
          for (const p of pids) signal(p, "SIGSTOP")
          yield* Wait.until(Effect.sync(() => pids.every((p) => !isAlive(p) || isStopped(p))), {
            what: `${impl.name} to stop`,
            timeout: Duration.seconds(5),
            interval: Duration.millis(5)
          })
          impl.state = "stopped"
        }))

    const contImpl = (node: NodeImpl) =>
      Effect.sync(() => {
        for (const p of processesUnder(node.dataDir)) if (p !== node.pid) signal(p, "SIGCONT")
        if (node.pid !== undefined) signal(node.pid, "SIGCONT")
        if (node.state === "stopped") node.state = "running"
      })

    const cont = (node: Node) =>
      withLock(node, (impl) =>
        impl.state === "stopped"
          ? contImpl(impl)
          : Effect.fail(new FixtureError({ message: `cannot cont ${impl.name}: it is ${impl.state}, not stopped` })))

    const promote = (node: Node) =>
      withLock(node, (impl) =>
        Effect.gen(function*() {
          yield* requireRunning(impl, "promote")
          const inRecovery = yield* Pg.scalar(impl.url, "select pg_is_in_recovery()").pipe(
            Effect.mapError((cause) => new FixtureError({ message: `cannot reach ${impl.name} to promote it`, cause }))
          )
          if (inRecovery !== true) {
            return yield* new FixtureError({ message: `cannot promote ${impl.name}: it is not a replica` })
          }
          yield* pgCtl(impl, "promote", ["-w", "-t", waitSeconds])
          yield* Wait.until(
            Effect.map(Pg.scalar(impl.url, "select pg_is_in_recovery()"), (r) => r === false),
            { what: `${impl.name} to leave recovery`, timeout, detail: () => logTail(impl) }
          )
          impl.role = "primary"
        }))

    const restart = (node: Node) =>
      withLock(node, (impl) =>
        Effect.gen(function*() {
          if (impl.state === "stopped") yield* contImpl(impl)
          if (impl.state === "running") {
            yield* Effect.ignore(pgCtl(impl, "stop", ["-m", "fast", "-w", "-t", "10"]))
          }
          // Finishes off whatever did not stop (or was killed) and clears a stale lock file.
          yield* killImpl(impl)
          yield* start(impl)
        }))

    const rejoin = (node: Node, from: Node) =>
      Effect.flatMap(asImpl(from), (source) =>
        withLock(node, (impl) =>
          Effect.gen(function*() {
            if (impl === source) {
              return yield* new FixtureError({ message: `cannot rejoin ${impl.name} to itself: pass another node` })
            }
            if (source.state !== "running" || source.role !== "primary") {
              return yield* new FixtureError({
                message: `cannot rejoin ${impl.name} to ${source.name}: it is a ${source.state} ${source.role}, not a running primary`
              })
            }
            yield* killImpl(impl)
            yield* Effect.promise(() => fs.rm(impl.dataDir, { recursive: true, force: true }).catch(() => undefined))
            yield* asPostgres(bins.pg_basebackup, [
              "-h",
              HOST,
              "-p",
              String(source.port),
              "-U",
              "postgres",
              "-D",
              impl.dataDir,
              "-R",
              "-X",
              "stream",
              "-c",
              "fast",
              "--no-sync"
            ], `pg_basebackup (${impl.name} from ${source.name})`)
            yield* TempDir.appendFile(
              path.join(impl.dataDir, "postgresql.conf"),
              `\n# tether testkit: ${impl.name} rejoined as a replica of ${source.name}\n${nodeSettings(impl)}`
            )
            impl.role = "replica"
            yield* start(impl)
          })))

    const currentPrimary = Effect.suspend(() => {
      const found = nodes.find((node) => node.role === "primary" && node.state === "running")
      return found === undefined
        ? Effect.fail(new FixtureError({ message: "no running primary: restart or promote a node" }))
        : Effect.succeed<Node>(found)
    })

    const cluster: Cluster = {
      dir: root,
      primary,
      replicas,
      nodes,
      passwordGroup: PASSWORD_GROUP,
      passwordUser: {
        user: passwordUser.user,
        password: passwordUser.password,
        url: (node) =>
          `postgres://${encodeURIComponent(passwordUser.user)}:${
            encodeURIComponent(passwordUser.password)
          }@${HOST}:${node.port}/postgres`
      },
      currentPrimary,
      kill,
      stop,
      cont,
      promote,
      restart,
      awaitStreaming,
      rejoin
    }
    return cluster
  })
