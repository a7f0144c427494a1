/**
 * A real PgBouncer in front of a PostgreSQL server, for integration tests.
 *
 * The fixture writes its own `pgbouncer.ini` and user list in a temp dir, runs Debian's
 * `pgbouncer` (as the `postgres` OS user when the tests run as root: PgBouncer refuses root) on a
 * free 127.0.0.1 port, waits until a query goes through, and stops it when the scope closes.
 * Clients authenticate to PgBouncer with SCRAM against the user list; PgBouncer logs in to the
 * server with the same credentials (the cluster trusts `postgres` and checks the password role's
 * password). `retarget` points it at another server (after a failover) with a reload. Needs
 * `pgbouncer`: `npm run provision` installs it.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { PgBouncer, PostgresCluster } from "@tether/testkit"
 *
 * const program = Effect.gen(function*() {
 *   const cluster = yield* PostgresCluster.make({ replicas: 0 })
 *   const bouncer = yield* PgBouncer.make({ target: cluster.primary, poolMode: "transaction" })
 *   const url = bouncer.url // postgres://127.0.0.1:PORT/postgres (no credentials)
 *   const password = bouncer.password // of the `postgres` role, through PgBouncer only
 * }).pipe(Effect.scoped)
 * ```
 *
 * @since 0.2.0
 */
import { spawn } from "node:child_process"
import type { ChildProcess } from "node:child_process"
import * as crypto from "node:crypto"
import * as path from "node:path"
import { Context, Duration, Effect, Layer } from "effect"
import type { Scope } from "effect"
import { FixtureError } from "./FixtureError.ts"
import * as Binaries from "./internal/binaries.ts"
import * as Pg from "./internal/pg.ts"
import { HOST, freePorts } from "./internal/ports.ts"
import { childEnv, isAlive, redact, signal, tail } from "./internal/process.ts"
import { trackPid, untrackPid } from "./internal/reaper.ts"
import * as TempDir from "./internal/tempdir.ts"
import * as Wait from "./internal/wait.ts"

/**
 * PgBouncer's pooling mode: a server connection per client `session`, per `transaction`, or per
 * `statement`.
 *
 * @since 0.2.0
 */
export type PoolMode = "session" | "transaction" | "statement"

/**
 * Options of {@link make} and {@link layer}.
 *
 * @since 0.2.0
 */
export interface Options {
  /** The server behind PgBouncer (a `PostgresCluster` node, or any host and port). */
  readonly target: { readonly host: string; readonly port: number }
  /** Default `transaction`. */
  readonly poolMode?: PoolMode | undefined
  /** Server connections per user and database (`default_pool_size`). Default 20. */
  readonly poolSize?: number | undefined
  /** Client connections PgBouncer accepts (`max_client_conn`). Default 1000. */
  readonly maxClientConnections?: number | undefined
  /** Further users (role and password) allowed through, e.g. the cluster's `passwordUser`. */
  readonly users?: ReadonlyArray<{ readonly user: string; readonly password: string }> | undefined
  /** Limit for starting up. Default 30 seconds. */
  readonly timeout?: Duration.Input | undefined
}

/**
 * A running PgBouncer.
 *
 * @since 0.2.0
 */
export interface Bouncer {
  readonly host: string
  readonly port: number
  /** `postgres://127.0.0.1:PORT/postgres`, without credentials. */
  readonly url: string
  /** The password of the `postgres` role through PgBouncer (the server itself trusts it). */
  readonly password: string
  /** `postgres://postgres:PASSWORD@127.0.0.1:PORT/postgres`; it contains the password, do not log it. */
  readonly superuserUrl: string
  readonly poolMode: PoolMode
  readonly poolSize: number
  /** The temp dir with `pgbouncer.ini`, the user list and the log. */
  readonly dir: string
  /** The PgBouncer process id, `undefined` once it stopped. */
  readonly pid: number | undefined
  /** Points PgBouncer at another server (e.g. a promoted replica) and reloads it. */
  readonly retarget: (target: { readonly host: string; readonly port: number }) => Effect.Effect<void, FixtureError>
  /** `SHOW POOLS` etc. on PgBouncer's admin console. */
  readonly admin: (command: string) => Effect.Effect<ReadonlyArray<Record<string, unknown>>, FixtureError>
}

/**
 * The service: a running {@link Bouncer}, from {@link layer}.
 *
 * @since 0.2.0
 */
export class PgBouncer extends Context.Service<PgBouncer, Bouncer>()("@tether/testkit/PgBouncer") {}

const quote = (s: string) => `"${s.replace(/"/g, "\"\"")}"`

const renderIni = (options: {
  readonly dir: string
  readonly port: number
  readonly target: { readonly host: string; readonly port: number }
  readonly poolMode: PoolMode
  readonly poolSize: number
  readonly maxClientConnections: number
}) =>
  [
    "[databases]",
    `* = host=${options.target.host} port=${options.target.port}`,
    "",
    "[pgbouncer]",
    `listen_addr = ${HOST}`,
    `listen_port = ${options.port}`,
    "unix_socket_dir =",
    `logfile = ${path.join(options.dir, "pgbouncer.log")}`,
    `pidfile = ${path.join(options.dir, "pgbouncer.pid")}`,
    "auth_type = scram-sha-256",
    `auth_file = ${path.join(options.dir, "userlist.txt")}`,
    "admin_users = postgres",
    "stats_users = postgres",
    `pool_mode = ${options.poolMode}`,
    `default_pool_size = ${options.poolSize}`,
    `max_client_conn = ${options.maxClientConnections}`,
    "server_reset_query = DISCARD ALL",
    "ignore_startup_parameters = extra_float_digits",
    "server_login_retry = 1",
    "log_connections = 0",
    "log_disconnections = 0",
    ""
  ].join("\n")

/**
 * Starts PgBouncer in the current scope.
 *
 * @since 0.2.0
 */
export const make = (options: Options): Effect.Effect<Bouncer, FixtureError, Scope.Scope> =>
  Effect.gen(function*() {
    const poolMode = options.poolMode ?? "transaction"
    const poolSize = options.poolSize ?? 20
    const maxClientConnections = options.maxClientConnections ?? 1000
    if (!Number.isInteger(poolSize) || poolSize < 1) {
      return yield* new FixtureError({ message: `poolSize must be an integer >= 1, got ${poolSize}` })
    }
    const timeout = options.timeout ?? Duration.seconds(30)
    const binary = Binaries.findIn("pgbouncer", [], ["/usr/sbin", "/usr/bin"])
    if (binary === undefined) {
      return yield* new FixtureError({ message: "pgbouncer not found: run `npm run provision` (scripts/provision.sh) as root" })
    }
    const uid = process.getuid?.() ?? -1
    const owner = uid === 0 ? yield* Binaries.osUser("postgres") : undefined
    const runuser = Binaries.findIn("runuser", [], ["/usr/sbin", "/sbin", "/usr/bin", "/bin"])
    if (uid === 0 && runuser === undefined) {
      return yield* new FixtureError({ message: "runuser not found (package util-linux): run `npm run provision`" })
    }
    const password = crypto.randomBytes(12).toString("base64url")
    const users = [{ user: "postgres", password }, ...(options.users ?? [])]
    const secrets = users.map((u) => u.password)
    const dir = yield* TempDir.make("tether-pgbouncer-", owner)
    const [port] = yield* freePorts(1)
    let target = options.target
    const ini = path.join(dir, "pgbouncer.ini")
    const writeIni = () =>
      TempDir.writeFile(ini, renderIni({ dir, port: port!, target, poolMode, poolSize, maxClientConnections }))
    yield* writeIni()
    yield* TempDir.writeFile(
      path.join(dir, "userlist.txt"),
      users.map((u) => `${quote(u.user)} ${quote(u.password)}`).join("\n") + "\n"
    )
    if (owner !== undefined) {
      yield* Effect.tryPromise({
        try: async () => {
          const fs = await import("node:fs/promises")
          for (const file of ["pgbouncer.ini", "userlist.txt"]) {
            await fs.chown(path.join(dir, file), owner.uid, owner.gid)
          }
        },
        catch: (cause) => new FixtureError({ message: `cannot hand ${dir} to the postgres user: ${String(cause)}`, cause })
      })
    }

    let output = ""
    let exit: string | undefined
    const child: ChildProcess = yield* Effect.sync(() => {
      const [command, args] = owner !== undefined
        ? [runuser!, ["-u", "postgres", "--", binary, ini]] as const
        : [binary, [ini]] as const
      const spawned = spawn(command, [...args], { env: childEnv(), cwd: dir, stdio: ["ignore", "pipe", "pipe"] })
      const collect = (chunk: string) => {
        output = (output + chunk).slice(-16384)
      }
      spawned.stdout?.setEncoding("utf8").on("data", collect)
      spawned.stderr?.setEncoding("utf8").on("data", collect)
      spawned.on("error", (error) => (exit = `cannot run ${binary}: ${error.message}`))
      spawned.on("exit", (code, sig) => {
        if (spawned.pid !== undefined) untrackPid(spawned.pid)
        exit = sig === null ? `exit code ${code}` : `signal ${sig}`
      })
      spawned.unref()
      if (spawned.pid !== undefined) trackPid(spawned.pid)
      return spawned
    })

    const pidOf = TempDir.readFile(path.join(dir, "pgbouncer.pid")).pipe(
      Effect.map((text) => Number(text.trim())),
      Effect.orElseSucceed(() => Number.NaN)
    )
    const logTail = () =>
      TempDir.readFile(path.join(dir, "pgbouncer.log")).pipe(
        Effect.map((log) => `pgbouncer log:\n${redact(tail(log), secrets)}\noutput:\n${redact(tail(output), secrets)}`),
        Effect.orElseSucceed(() => redact(tail(output), secrets))
      )

    yield* Effect.addFinalizer(() =>
      Effect.gen(function*() {
        const pid = yield* pidOf
        if (Number.isInteger(pid) && pid > 0) signal(pid, "SIGINT")
        if (child.pid !== undefined) signal(child.pid, "SIGTERM")
        for (let i = 0; i < 200 && exit === undefined; i++) yield* Effect.sleep(Duration.millis(10))
        if (Number.isInteger(pid) && pid > 0 && isAlive(pid)) signal(pid, "SIGKILL")
        if (child.pid !== undefined && exit === undefined) signal(child.pid, "SIGKILL")
      })
    )

    const host = HOST
    const url = `postgres://${host}:${port}/postgres`
    const superuserUrl = `postgres://postgres:${encodeURIComponent(password)}@${host}:${port}/postgres`
    yield* Wait.until(Effect.as(Pg.query(superuserUrl, "select 1"), true), {
      what: `PgBouncer to pass a query through to ${options.target.host}:${options.target.port}`,
      timeout,
      interval: Duration.millis(20),
      abort: () => (exit === undefined ? undefined : `pgbouncer exited (${exit})`),
      detail: logTail
    })
    const adminUrl = `postgres://postgres:${encodeURIComponent(password)}@${host}:${port}/pgbouncer`
    const admin = (command: string) =>
      Pg.query(adminUrl, command).pipe(
        Effect.mapError((cause) =>
          new FixtureError({ message: redact(`PgBouncer admin command failed: ${String(cause)}`, secrets), cause })
        )
      )
    let pid: number | undefined = yield* pidOf
    const bouncer: Bouncer = {
      host,
      port: port!,
      url,
      password,
      superuserUrl,
      poolMode,
      poolSize,
      dir,
      admin,
      get pid() {
        return exit === undefined ? pid : undefined
      },
      retarget: (next) =>
        Effect.gen(function*() {
          target = next
          yield* writeIni()
          if (owner !== undefined) {
            yield* Effect.tryPromise({
              try: async () => (await import("node:fs/promises")).chown(ini, owner.uid, owner.gid),
              catch: (cause) => new FixtureError({ message: `cannot write ${ini}: ${String(cause)}`, cause })
            })
          }
          yield* admin("RELOAD")
          // Server connections to the old target are closed at once.
          yield* admin("RECONNECT").pipe(Effect.ignore)
          pid = yield* pidOf
        })
    }
    return bouncer
  })

/**
 * A `Layer` of {@link PgBouncer}.
 *
 * @since 0.2.0
 */
export const layer = (options: Options): Layer.Layer<PgBouncer, FixtureError> =>
  Layer.effect(PgBouncer, make(options))
