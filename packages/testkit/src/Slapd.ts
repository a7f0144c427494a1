/**
 * Real OpenLDAP `slapd` servers for integration tests.
 *
 * The fixture writes its own `slapd.conf` (mdb backend, the core/cosine/inetorgperson/nis
 * schemas, a suffix, an admin, users with passwords), seeds it with `slapadd` and runs its own
 * slapd processes on free 127.0.0.1 ports, never the system service. Two servers replicate both
 * ways (syncrepl, multi-provider). With TLS on, a throw-away CA signs a certificate for
 * `localhost` / `127.0.0.1`, and each server serves `ldaps://` and StartTLS. Closing the scope
 * stops every process and deletes the temp dir, also when the test failed. Needs `slapd` and
 * `ldap-utils`: `npm run provision` installs them.
 *
 * It runs past 400 lines: a quarter is the documented public types, the rest one scoped
 * lifecycle (`make`: seed, start, stop, kill, restart and the finalizers that always clean
 * up); the configuration and the certificates are `internal/slapdConfig.ts` and
 * `internal/certificates.ts`.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { Client } from "ldapts"
 * import { Slapd } from "@tether/testkit"
 *
 * const program = Effect.gen(function*() {
 *   const ldap = yield* Slapd.Slapd
 *   const user = ldap.users[0]!
 *   const client = new Client({ url: ldap.server.url })
 *   yield* Effect.promise(() => client.bind(user.dn, user.password).then(() => client.unbind()))
 * }).pipe(Effect.provide(Slapd.layer({ servers: 2, tls: true })))
 * ```
 *
 * @since 0.1.0
 */
import { spawn } from "node:child_process"
import type { ChildProcess } from "node:child_process"
import * as fs from "node:fs/promises"
import * as path from "node:path"
import { Context, Duration, Effect, Layer, Semaphore } from "effect"
import type { Scope } from "effect"
import { FixtureError } from "./FixtureError.ts"
import * as Binaries from "./internal/binaries.ts"
import { makeCertificates, makeClientCertificate } from "./internal/certificates.ts"
import { policyLdif, renderConfig, seedLdif } from "./internal/slapdConfig.ts"
import * as Ldap from "./internal/ldap.ts"
import { HOST, freePorts } from "./internal/ports.ts"
import { childEnv, isAlive, isStopped, redact, run, signal, tail } from "./internal/process.ts"
import { trackPid, untrackPid } from "./internal/reaper.ts"
import * as TempDir from "./internal/tempdir.ts"
import * as Wait from "./internal/wait.ts"

/**
 * The process state of a server as the fixture left it: `running`, `stopped` (SIGSTOPped, see
 * {@link Directory.stop}) or `killed` (SIGKILLed or exited).
 *
 * @since 0.1.0
 */
export type ServerState = "running" | "stopped" | "killed"

/**
 * One slapd server. `pid` and `state` always show the current values.
 *
 * @example
 * ```ts
 * import { Client } from "ldapts"
 * import type { Slapd } from "@tether/testkit"
 *
 * declare const ldap: Slapd.Directory
 *
 * const client = new Client({ url: ldap.server.url }) // ldap://127.0.0.1:PORT
 * ```
 *
 * @since 0.1.0
 */
export interface Server {
  /** `ldap1`, `ldap2`. */
  readonly name: string
  /** Always `127.0.0.1`. */
  readonly host: string
  /** The plain LDAP port (StartTLS too, when TLS is on). */
  readonly port: number
  /** `ldap://127.0.0.1:PORT`. */
  readonly url: string
  /** The LDAPS port, when TLS is on. */
  readonly ldapsPort: number | undefined
  /** `ldaps://127.0.0.1:PORT`, when TLS is on. */
  readonly ldapsUrl: string | undefined
  /** This server's directory: `slapd.conf` and the mdb database. */
  readonly dir: string
  /** The slapd process id, or `undefined` while killed. */
  readonly pid: number | undefined
  readonly state: ServerState
}

/**
 * A seeded user: `uid=user<i>,ou=people,<suffix>` with password `password-<i>` (i from 1).
 *
 * @since 0.1.0
 */
export interface User {
  readonly uid: string
  readonly dn: string
  readonly cn: string
  readonly mail: string
  readonly password: string
}

/**
 * Running servers, what they hold and their fault controls. Every control takes one of
 * `servers`.
 *
 * @since 0.1.0
 */
export interface Directory {
  /** The temp dir holding every server's files and the certificates. */
  readonly dir: string
  readonly servers: ReadonlyArray<Server>
  /** The first server. */
  readonly server: Server
  /** True when the servers replicate to each other (syncrepl, multi-provider). */
  readonly replicating: boolean
  /** `dc=example,dc=com` by default. */
  readonly suffix: string
  /** `ou=people,<suffix>`: the users. */
  readonly peopleDn: string
  /** `ou=groups,<suffix>`: holds `cn=users`, a groupOfNames of every user. */
  readonly groupsDn: string
  /** `cn=admin,<suffix>`, the rootdn (not subject to ACLs). */
  readonly adminDn: string
  readonly adminPassword: string
  readonly users: ReadonlyArray<User>
  /** The test CA's certificate (PEM) to trust, when TLS is on: `tlsOptions: { ca: [caCertPem] }`. */
  readonly caCertPem: string | undefined
  /** The file holding `caCertPem`, when TLS is on. */
  readonly caCertPath: string | undefined
  /** With `clientCertificates`: a certificate (`CN=user1`) and key (PEM) from the test CA, for the first user. */
  readonly clientCertificate?: { readonly certPem: string; readonly keyPem: string } | undefined
  /** SIGKILLs a server: a crash. Connections break and new ones are refused until `restart`. */
  readonly kill: (server: Server) => Effect.Effect<void, FixtureError>
  /** SIGSTOPs a server: a hang. The kernel still accepts connections; nothing answers. Undo with `cont`. */
  readonly stop: (server: Server) => Effect.Effect<void, FixtureError>
  /** SIGCONTs a server paused by `stop`. */
  readonly cont: (server: Server) => Effect.Effect<void, FixtureError>
  /**
   * Restarts a server (resumes it if stopped, SIGTERMs it if running, keeps its data and ports)
   * and waits until the admin can bind.
   */
  readonly restart: (server: Server) => Effect.Effect<void, FixtureError>
}

/**
 * Options of {@link make} and {@link layer}.
 *
 * @since 0.1.0
 */
export interface Options {
  /** Number of servers, 1 or 2. Default 1. */
  readonly servers?: 1 | 2
  /** Replicate between the two servers (both accept writes). Default: true with 2 servers. */
  readonly replication?: boolean
  /** Serve `ldaps://` and StartTLS with a generated CA. Default false. */
  readonly tls?: boolean
  /** Number of seeded users. Default 20. */
  readonly users?: number
  /** The suffix; its first RDN must be `dc=…`. Default `dc=example,dc=com`. */
  readonly suffix?: string
  /** The admin's password. Default `admin-password`. */
  readonly adminPassword?: string
  /** Limit for each startup step. Default 30 seconds. */
  readonly timeout?: Duration.Input
  /**
   * Load the `ppolicy` overlay (draft-behera password policy) with lockout, and seed
   * `ou=policies,<suffix>` holding the default policy `cn=default,ou=policies,<suffix>`
   * (pwdAttribute userPassword; its other attributes from `defaultPolicy`, e.g.
   * `{ pwdMaxFailure: "3", pwdLockout: "TRUE" }`). Default off.
   */
  readonly ppolicy?: boolean | { readonly defaultPolicy?: Readonly<Record<string, string>> }
  /** Load the `sssvlv` overlay (server-side sorting, RFC 2891; virtual list view). Default off. */
  readonly sssvlv?: boolean
  /**
   * With `tls`: accept TLS client certificates (`TLSVerifyClient try`), map a certificate subject
   * `cn=NAME` to `uid=NAME,ou=people,<suffix>` for SASL EXTERNAL, and issue one for the first user
   * ({@link Directory.clientCertificate}). Default off.
   */
  readonly clientCertificates?: boolean
  /**
   * Enable SASL PLAIN and SCRAM-SHA-1/256 (Cyrus SASL with slapd's own auxprop: the password is
   * read from the entry): `sasl-secprops none` (PLAIN allowed without TLS, for loopback tests),
   * a SASL user name `NAME` maps to `uid=NAME,ou=people,<suffix>`, and users' `userPassword` is
   * stored in clear text (SCRAM needs it). Needs `libsasl2-modules`. Default off.
   */
  readonly sasl?: boolean
}

/**
 * The service: a running {@link Directory}, from {@link layer}.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { Slapd } from "@tether/testkit"
 *
 * const program = Effect.gen(function*() {
 *   const ldap = yield* Slapd.Slapd
 * }).pipe(Effect.provide(Slapd.layer()))
 * ```
 *
 * @since 0.1.0
 */
export class Slapd extends Context.Service<Slapd, Directory>()("@tether/testkit/Slapd") {}

/**
 * A layer that starts the servers and stops them (deleting every file) when released.
 *
 * @example
 * ```ts
 * import { layer } from "@effect/vitest"
 * import { Effect } from "effect"
 * import { Slapd } from "@tether/testkit"
 *
 * layer(Slapd.layer({ servers: 2 }), { excludeTestServices: true })("ldap", (it) => {
 *   it.effect("binds", () => Effect.gen(function*() {
 *     const ldap = yield* Slapd.Slapd
 *     // ...
 *   }))
 * })
 * ```
 *
 * @since 0.1.0
 */
export const layer = (options: Options = {}): Layer.Layer<Slapd, FixtureError> => Layer.effect(Slapd, make(options))

// ---------------------------------------------------------------------------------------------

class ServerImpl implements Server {
  readonly host = HOST
  readonly url: string
  readonly ldapsUrl: string | undefined
  readonly dir: string
  readonly config: string
  child: ChildProcess | undefined = undefined
  exit: string | undefined = undefined
  output = ""
  state: ServerState = "killed"
  readonly lock = Semaphore.makeUnsafe(1)
  constructor(
    readonly id: number,
    readonly name: string,
    readonly port: number,
    readonly ldapsPort: number | undefined,
    root: string
  ) {
    this.url = `ldap://${HOST}:${port}`
    this.ldapsUrl = ldapsPort === undefined ? undefined : `ldaps://${HOST}:${ldapsPort}`
    this.dir = path.join(root, name)
    this.config = path.join(this.dir, "slapd.conf")
  }
  get pid(): number | undefined {
    return this.state === "killed" ? undefined : this.child?.pid
  }
  get listenUrls(): string {
    return [`ldap://${HOST}:${this.port}/`, ...(this.ldapsPort === undefined ? [] : [`ldaps://${HOST}:${this.ldapsPort}/`])]
      .join(" ")
  }
}

/** Waits for a child process to exit (at most `timeout`); true when it did. */
const awaitChildExit = (child: ChildProcess, timeout: Duration.Input): Effect.Effect<boolean> =>
  Effect.callback<boolean>((resume) => {
    if (child.exitCode !== null || child.signalCode !== null) {
      resume(Effect.succeed(true))
      return
    }
    const timer = setTimeout(() => resume(Effect.succeed(false)), Duration.toMillis(timeout))
    child.once("exit", () => {
      clearTimeout(timer)
      resume(Effect.succeed(true))
    })
    return Effect.sync(() => clearTimeout(timer))
  })

const unknownServer = (server: Server) =>
  new FixtureError({ message: `${server.name} is not a server of this fixture: pass one of ldap.servers` })

/**
 * Starts the servers; the scope owns them.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { Slapd } from "@tether/testkit"
 *
 * const program = Effect.gen(function*() {
 *   const ldap = yield* Slapd.make({ servers: 2, tls: true, users: 5 })
 *   return ldap.users[0]!.dn // "uid=user1,ou=people,dc=example,dc=com"
 * }).pipe(Effect.scoped)
 * ```
 *
 * @since 0.1.0
 */
export const make = (options: Options = {}): Effect.Effect<Directory, FixtureError, Scope.Scope> =>
  Effect.gen(function*() {
    const count = options.servers ?? 1
    if (count !== 1 && count !== 2) {
      return yield* new FixtureError({ message: `servers must be 1 or 2, got ${String(count)}` })
    }
    const replicating = options.replication ?? count === 2
    if (replicating && count !== 2) {
      return yield* new FixtureError({ message: "replication needs servers: 2" })
    }
    const userCount = options.users ?? 20
    if (!Number.isInteger(userCount) || userCount < 0 || userCount > 100_000) {
      return yield* new FixtureError({ message: `users must be an integer from 0 to 100000, got ${userCount}` })
    }
    const suffix = options.suffix ?? "dc=example,dc=com"
    const dcMatch = /^dc=([A-Za-z0-9-]+)(,|$)/.exec(suffix)
    if (dcMatch === null || /["\\\n]/.test(suffix)) {
      return yield* new FixtureError({ message: `suffix must start with a dc=NAME RDN, got "${suffix}"` })
    }
    const adminPassword = options.adminPassword ?? "admin-password"
    if (adminPassword.length === 0 || /["\\\s]/.test(adminPassword)) {
      return yield* new FixtureError({
        message: "adminPassword must be non-empty without quotes, backslashes or white space"
      })
    }
    const timeout = options.timeout ?? Duration.seconds(30)
    const secrets = [adminPassword]
    const bins = yield* Binaries.openldap
    const tlsOn = options.tls ?? false

    const adminDn = `cn=admin,${suffix}`
    const peopleDn = `ou=people,${suffix}`
    const groupsDn = `ou=groups,${suffix}`
    const users: ReadonlyArray<User> = Array.from({ length: userCount }, (_, i) => ({
      uid: `user${i + 1}`,
      dn: `uid=user${i + 1},${peopleDn}`,
      cn: `User ${i + 1}`,
      mail: `user${i + 1}@example.com`,
      password: `password-${i + 1}`
    }))

    const started = Date.now()
    const root = yield* TempDir.make("tether-ldap-")
    const ports = yield* freePorts(count * (tlsOn ? 2 : 1))
    const servers = Array.from({ length: count }, (_, i) =>
      new ServerImpl(i + 1, `ldap${i + 1}`, ports[i]!, tlsOn ? ports[count + i]! : undefined, root))
    const asImpl = (server: Server): Effect.Effect<ServerImpl, FixtureError> => {
      const found = servers.find((s) => s === server)
      return found === undefined ? Effect.fail(unknownServer(server)) : Effect.succeed(found)
    }

    const tls = tlsOn ? yield* makeCertificates(bins.openssl, root, timeout) : undefined
    const clientCertificate = tlsOn && options.clientCertificates === true && users.length > 0
      ? yield* makeClientCertificate(bins.openssl, root, users[0]!.uid, timeout)
      : undefined
    const tlsOptions = tls === undefined ? undefined : { ca: [tls.caCertPem] }

    yield* Effect.forEach(servers, (server) =>
      Effect.gen(function*() {
        yield* Effect.tryPromise({
          try: () => fs.mkdir(path.join(server.dir, "data"), { recursive: true, mode: 0o700 }),
          catch: (cause) => new FixtureError({ message: `cannot create ${server.dir}: ${String(cause)}`, cause })
        })
        yield* TempDir.writeFile(
          server.config,
          renderConfig({
            server,
            peers: replicating ? servers.filter((peer) => peer !== server) : [],
            suffix,
            adminDn,
            adminPassword,
            replicating,
            tls,
            ppolicy: options.ppolicy !== undefined && options.ppolicy !== false,
            sssvlv: options.sssvlv === true,
            clientCertificates: options.clientCertificates === true,
            sasl: options.sasl === true
          })
        )
      }), { discard: true })

    // Seed every server from the same LDIF. It carries the operational attributes (entryUUID,
    // entryCSN) that slapadd would otherwise generate differently on each server, so replicating
    // servers start in sync.
    const ldif = path.join(root, "seed.ldif")
    const ppolicy = options.ppolicy === undefined || options.ppolicy === false
      ? undefined
      : options.ppolicy === true
      ? {}
      : options.ppolicy.defaultPolicy ?? {}
    yield* TempDir.writeFile(
      ldif,
      seedLdif(suffix, dcMatch[1]!, peopleDn, groupsDn, users, options.sasl === true) +
        (ppolicy === undefined ? "" : "\n" + policyLdif(suffix, ppolicy))
    )
    yield* Effect.forEach(servers, (server) =>
      run(bins.slapadd, ["-q", ...(replicating ? ["-w"] : []), "-f", server.config, "-l", ldif], {
        what: `slapadd (${server.name})`,
        timeout,
        secrets
      }), { concurrency: "unbounded", discard: true })
    yield* TempDir.remove(ldif)
    const first = servers[0]!

    const output = (server: ServerImpl) =>
      `${server.name} output:\n${redact(tail(server.output) || "(none)", secrets)}`

    const spawnServer = (server: ServerImpl) =>
      Effect.sync(() => {
        server.output = ""
        server.exit = undefined
        const child = spawn(bins.slapd, ["-f", server.config, "-h", server.listenUrls, "-d", "none"], {
          env: childEnv(),
          cwd: server.dir,
          stdio: ["ignore", "pipe", "pipe"]
        })
        const collect = (chunk: string) => {
          server.output = (server.output + chunk).slice(-16384)
        }
        child.stdout?.setEncoding("utf8").on("data", collect)
        child.stderr?.setEncoding("utf8").on("data", collect)
        child.on("error", (error) => {
          server.exit = `cannot run ${bins.slapd}: ${error.message}`
          if (server.child === child) server.state = "killed"
        })
        child.on("exit", (code, sig) => {
          if (child.pid !== undefined) untrackPid(child.pid)
          server.exit = sig === null ? `exit code ${code}` : `signal ${sig}`
          if (server.child === child) server.state = "killed"
        })
        child.unref()
        if (child.pid !== undefined) trackPid(child.pid)
        server.child = child
        server.state = "running"
      })

    const awaitReady = (server: ServerImpl) =>
      Effect.gen(function*() {
        yield* Wait.until(Effect.as(Ldap.bind(server.url, adminDn, adminPassword), true), {
          what: `${server.name} (slapd) to accept a bind on ${server.url}`,
          timeout,
          interval: Duration.millis(10),
          abort: () => (server.exit === undefined ? undefined : `${server.name} (slapd) exited (${server.exit})`),
          detail: () => Effect.succeed(output(server))
        })
        if (server.ldapsUrl !== undefined && tlsOptions !== undefined) {
          const ldapsUrl = server.ldapsUrl
          yield* Wait.until(Effect.as(Ldap.bind(ldapsUrl, adminDn, adminPassword, tlsOptions), true), {
            what: `${server.name} (slapd) to accept a bind on ${ldapsUrl}`,
            timeout,
            interval: Duration.millis(10),
            detail: () => Effect.succeed(output(server))
          })
        }
      })

    const terminate = (server: ServerImpl, graceful: boolean) =>
      Effect.gen(function*() {
        const child = server.child
        if (child === undefined || child.pid === undefined) return
        signal(child.pid, "SIGCONT")
        if (graceful) {
          signal(child.pid, "SIGTERM")
          if (yield* awaitChildExit(child, Duration.seconds(5))) {
            server.state = "killed"
            return
          }
        }
        signal(child.pid, "SIGKILL")
        yield* awaitChildExit(child, Duration.seconds(5))
        server.state = "killed"
      })

    yield* Effect.addFinalizer(() =>
      Effect.forEach(servers, (server) => terminate(server, true), { concurrency: "unbounded", discard: true })
    )

    yield* Effect.forEach(servers, (server) => Effect.andThen(spawnServer(server), awaitReady(server)), {
      concurrency: "unbounded",
      discard: true
    })
    yield* Effect.logDebug(`Slapd: ${count} server(s) up in ${Date.now() - started} ms`)

    // --- controls
    const withLock = (server: Server, f: (server: ServerImpl) => Effect.Effect<void, FixtureError>) =>
      Effect.flatMap(asImpl(server), (impl) => impl.lock.withPermits(1)(f(impl)))

    const pidOf = (server: ServerImpl, action: string, state: ServerState) =>
      server.state === state && server.child?.pid !== undefined
        ? Effect.succeed(server.child.pid)
        : Effect.fail(new FixtureError({ message: `cannot ${action} ${server.name}: it is ${server.state}` }))

    const directory: Directory = {
      dir: root,
      servers,
      server: first,
      replicating,
      suffix,
      peopleDn,
      groupsDn,
      adminDn,
      adminPassword,
      users,
      caCertPem: tls?.caCertPem,
      caCertPath: tls?.ca,
      clientCertificate,
      kill: (server) => withLock(server, (impl) => terminate(impl, false)),
      stop: (server) =>
        withLock(server, (impl) =>
          Effect.gen(function*() {
            const pid = yield* pidOf(impl, "stop", "running")
            signal(pid, "SIGSTOP")
            // `kill` only queues the signal: return once every thread has stopped, so that no
            // request sent after `stop` is answered.
            yield* Wait.until(Effect.sync(() => !isAlive(pid) || isStopped(pid)), {
              what: `${impl.name} to stop`,
              timeout: Duration.seconds(5),
              interval: Duration.millis(2)
            })
            impl.state = "stopped"
          })),
      cont: (server) =>
        withLock(server, (impl) =>
          Effect.map(pidOf(impl, "cont", "stopped"), (pid) => {
            signal(pid, "SIGCONT")
            impl.state = "running"
          })),
      restart: (server) =>
        withLock(server, (impl) =>
          Effect.gen(function*() {
            yield* terminate(impl, true)
            yield* spawnServer(impl)
            yield* awaitReady(impl)
          }))
    }
    return directory
  })
