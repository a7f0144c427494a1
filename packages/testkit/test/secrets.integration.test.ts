/**
 * Secret scan: with a distinct, unique password in every place a secret can enter Tether —
 * configuration (Schema decode), the environment (`LdapConfig.fromEnv` / `PgConfig.fromEnv`),
 * URLs (`postgres://u:pw@…`, `?password=`, LDAP `X-BINDPW` and `user:pw@`), identities (right and
 * wrong) — and failures of every kind (wrong password, connection refused, timeouts), everything
 * Tether shows is captured: every log line at every level (with its cause, annotations and
 * spans), every error's message, `Cause.pretty`, JSON and `util.inspect`, every span's name,
 * attributes, events and exit (a recording tracer), the metric snapshot, status snapshots, and
 * `JSON.stringify` / `util.inspect` / `String` of configuration values. No password may appear in
 * any of it. A leak is reported by where it was found and which secret, never the secret itself.
 */
import { describe, expect, it } from "@effect/vitest"
import { Identity } from "@tether/core"
import { LdapClient, LdapConfig } from "@tether/ldap"
import { PgClient, PgConfig } from "@tether/pg"
import { Cause, ConfigProvider, Effect, Exit, Logger, Metric, Redacted, References, Tracer } from "effect"
import { Attribute, Change, Client } from "ldapts"
import * as crypto from "node:crypto"
import * as net from "node:net"
import * as util from "node:util"
import postgres from "postgres"
import { FaultProxy, PostgresCluster, Slapd } from "../src/index.ts"

// ---------------------------------------------------------------------------------------------
// The recorder: everything Tether shows, as text, with where it came from.

class Recorder {
  readonly texts: Array<{ readonly source: string; readonly text: string }> = []
  readonly spans: Array<RecordingSpan> = []

  add(source: string, value: unknown): void {
    if (typeof value === "string") {
      this.texts.push({ source, text: value })
      return
    }
    let json: string
    try {
      json = JSON.stringify(value) ?? "undefined"
    } catch (e) {
      json = `unserialisable: ${String(e)}`
    }
    this.texts.push({ source: `${source} (JSON)`, text: json })
    this.texts.push({ source: `${source} (inspect)`, text: util.inspect(value, { depth: 12, showHidden: false, getters: true }) })
    try {
      this.texts.push({ source: `${source} (String)`, text: String(value) })
    } catch {
      // objects without a string form
    }
  }

  /** An error in every form a user might print it. */
  error(source: string, error: unknown): void {
    if (error instanceof Error) {
      this.add(`${source} message`, error.message)
      this.add(`${source} stack`, error.stack ?? "")
      if ("cause" in error && error.cause !== undefined) this.add(`${source} cause`, error.cause)
    }
    this.add(source, error)
  }

  /** An exit: its value or error, and `Cause.pretty`. */
  exit(source: string, exit: Exit.Exit<unknown, unknown>): void {
    if (Exit.isSuccess(exit)) this.add(`${source} value`, exit.value)
    else {
      this.add(`${source} Cause.pretty`, Cause.pretty(exit.cause))
      this.add(`${source} Cause.prettyErrors`, Cause.prettyErrors(exit.cause).map((e) => `${e.message}\n${e.stack}`).join("\n"))
      for (const reason of exit.cause.reasons) {
        if (reason._tag === "Fail") this.error(`${source} error`, reason.error)
        if (reason._tag === "Die") this.error(`${source} defect`, reason.defect)
      }
    }
  }

  readonly logger = Logger.make<unknown, void>((options) => {
    this.add(`log ${options.logLevel} message`, options.message)
    if (options.cause.reasons.length > 0) this.add(`log ${options.logLevel} cause`, Cause.pretty(options.cause))
    this.add(`log ${options.logLevel} annotations`, options.fiber.getRef(References.CurrentLogAnnotations))
    this.add(`log ${options.logLevel} spans`, options.fiber.getRef(References.CurrentLogSpans))
  })

  readonly tracer = Tracer.make({
    span: (options) => {
      const span = new RecordingSpan(options)
      this.spans.push(span)
      return span
    }
  })

  /** Spans (names, attributes, events, exits) into texts. */
  collectSpans(): void {
    for (const span of this.spans) {
      this.add(`span ${span.name} name`, span.name)
      this.add(`span ${span.name} attributes`, Object.fromEntries(span.attributes))
      this.add(`span ${span.name} events`, span.recordedEvents.map(([name, , attributes]) => ({ name, attributes })))
      if (span.exit !== undefined) this.exit(`span ${span.name} exit`, span.exit)
    }
  }

  /**
   * Where each secret appears: `source ← label`, never the secret. Also checks the secrets'
   * URL-encoded forms (identical for the alphabet used here, but kept in case a secret changes).
   */
  leaks(secrets: Readonly<Record<string, string>>): ReadonlyArray<string> {
    const found = new Set<string>()
    for (const { source, text } of this.texts) {
      for (const [label, secret] of Object.entries(secrets)) {
        if (text.includes(secret) || text.includes(encodeURIComponent(secret))) found.add(`${source} <- ${label}`)
      }
    }
    return [...found].sort()
  }

  /** The texts recorded from sources starting with `prefix`. */
  from(prefix: string): ReadonlyArray<string> {
    return this.texts.filter((t) => t.source.startsWith(prefix)).map((t) => t.text)
  }

  /**
   * The scan only means something if the capture worked: each of these sources recorded a text
   * matching its pattern (an error's tag, a span's name, a metric's name).
   */
  missing(expected: ReadonlyArray<readonly [prefix: string, pattern: RegExp]>): ReadonlyArray<string> {
    return expected.filter(([prefix, pattern]) => !this.from(prefix).some((text) => pattern.test(text)))
      .map(([prefix, pattern]) => `${prefix} ~ ${pattern}`)
  }
}

class RecordingSpan extends Tracer.NativeSpan {
  exit: Exit.Exit<unknown, unknown> | undefined = undefined
  readonly recordedEvents: Array<[string, bigint, Record<string, unknown>]> = []
  override end(endTime: bigint, exit: Exit.Exit<unknown, unknown>): void {
    this.exit = exit
    super.end(endTime, exit)
  }
  override event(name: string, startTime: bigint, attributes?: Record<string, unknown>): void {
    this.recordedEvents.push([name, startTime, attributes ?? {}])
    super.event(name, startTime, attributes)
  }
}

/** Runs `effect` with the recorder as the only logger (all levels) and as the tracer. */
const recorded = <A, E, R>(recorder: Recorder, effect: Effect.Effect<A, E, R>) =>
  effect.pipe(
    Effect.provideService(Tracer.Tracer, recorder.tracer),
    Effect.provideService(References.MinimumLogLevel, "All"),
    Effect.provide(Logger.layer([recorder.logger]))
  )

/** A unique secret: letters and digits only, so every encoding of it is itself. */
const secret = (label: string) => `Sx${label.replace(/[^A-Za-z0-9]/g, "")}${crypto.randomBytes(9).toString("hex")}`

/** A loopback port nothing listens on (connections are refused). */
const closedPort = Effect.promise(() =>
  new Promise<number>((resolve, reject) => {
    const server = net.createServer()
    server.once("error", reject)
    server.listen(0, "127.0.0.1", () => {
      const port = (server.address() as net.AddressInfo).port
      server.close(() => resolve(port))
    })
  })
)

/** Runs an operation, records its exit, and says whether it succeeded. */
const attempt = <A, E>(recorder: Recorder, source: string, effect: Effect.Effect<A, E>) =>
  Effect.gen(function*() {
    const exit = yield* Effect.exit(Effect.timeout(effect, "20 seconds"))
    recorder.exit(source, exit)
    return Exit.isSuccess(exit)
  })

/** Builds a client in the current scope; a typed construction error is recorded (a valid answer to a bad URL). */
const build = <C, E, R>(recorder: Recorder, source: string, make: Effect.Effect<C, E, R>) =>
  Effect.gen(function*() {
    const exit = yield* Effect.exit(make)
    if (Exit.isFailure(exit)) {
      recorder.exit(`${source} construction`, exit)
      return undefined
    }
    return exit.value
  })

class EndUser extends Identity.Service<EndUser>()("secrets-test/EndUser") {}

// ---------------------------------------------------------------------------------------------

describe("no secret is ever shown", () => {
  it.effect("configuration values (fromEnv before and after load, decode, options) print no password", () =>
    Effect.gen(function*() {
      const recorder = new Recorder()
      const secrets = {
        "ldap env TETHER_LDAP_PASSWORD": secret("ldapenv"),
        "ldap decode password": secret("ldapdecode"),
        "pg env TETHER_PG_PASSWORD": secret("pgenv"),
        "pg decode password": secret("pgdecode")
      }
      // LDAP from the environment: the value of the Config, then what `load` makes of it.
      const ldapEnv = yield* LdapConfig.fromEnv.parse(ConfigProvider.fromEnv({
        env: {
          TETHER_LDAP_URLS: "ldap://127.0.0.1:389",
          TETHER_LDAP_BIND_DN: "cn=app,dc=example,dc=com",
          TETHER_LDAP_PASSWORD: secrets["ldap env TETHER_LDAP_PASSWORD"]
        }
      }))
      recorder.add("LdapConfig.fromEnv value", ldapEnv)
      recorder.add("LdapConfig.load(fromEnv) options", yield* LdapConfig.load(ldapEnv))
      recorder.add(
        "LdapConfig.decode options",
        yield* LdapConfig.decode({
          endpoints: ["ldap://127.0.0.1:389"],
          bindDn: "cn=app,dc=example,dc=com",
          password: secrets["ldap decode password"]
        })
      )
      // Decode failures must not quote the password either.
      recorder.exit(
        "LdapConfig.decode failure",
        yield* Effect.exit(LdapConfig.decode({ endpoints: ["http://x"], password: secrets["ldap decode password"] }))
      )
      // PostgreSQL.
      const pgEnv = yield* PgConfig.fromEnv.parse(ConfigProvider.fromEnv({
        env: {
          TETHER_PG_URLS: "postgres://127.0.0.1:5432/app",
          TETHER_PG_USER: "app",
          TETHER_PG_PASSWORD: secrets["pg env TETHER_PG_PASSWORD"]
        }
      }))
      recorder.add("PgConfig.fromEnv value", pgEnv)
      recorder.add(
        "PgConfig.decode options",
        yield* PgConfig.decode({
          endpoints: ["postgres://127.0.0.1:5432/app"],
          user: "app",
          password: secrets["pg decode password"]
        })
      )
      recorder.exit(
        "PgConfig.decode failure",
        yield* Effect.exit(PgConfig.decode({ endpoints: [], user: "", password: secrets["pg decode password"] }))
      )
      expect(recorder.leaks(secrets)).toEqual([])
    }))

  it.live("PostgreSQL: config, env, URLs and identities; wrong passwords, refused and hung servers", () =>
    Effect.gen(function*() {
      const recorder = new Recorder()
      const secrets = {
        "pg fixture password user": secret("pgfixture"),
        "pg config (decode) password": secret("pgcfg"),
        "pg env password": secret("pgenv"),
        "pg URL user:password": secret("pgurl"),
        "pg URL ?password=": secret("pgquery"),
        "pg identity password": secret("pgid"),
        "pg wrong identity password": secret("pgwrongid"),
        "pg wrong default-user password": secret("pgwrongcfg"),
        "pg refused-server password": secret("pgrefused"),
        "pg refused URL password": secret("pgrefusedurl"),
        "pg hung-server password": secret("pghung")
      }
      const cluster = yield* PostgresCluster.make({
        replicas: 0,
        passwordUser: { user: "sec_fixture", password: secrets["pg fixture password user"] }
      })
      const node = cluster.primary
      const roles: ReadonlyArray<readonly [string, string]> = [
        ["sec_cfg", secrets["pg config (decode) password"]],
        ["sec_env", secrets["pg env password"]],
        ["sec_url", secrets["pg URL user:password"]],
        ["sec_query", secrets["pg URL ?password="]],
        ["sec_id", secrets["pg identity password"]],
        ["sec_hung", secrets["pg hung-server password"]]
      ]
      yield* Effect.promise(async () => {
        const sql = postgres(node.url, { max: 1, onnotice: () => {} })
        try {
          for (const [role, password] of roles) {
            await sql.unsafe(`create role ${role} login password '${password}' in role ${cluster.passwordGroup}`)
          }
        } finally {
          await sql.end({ timeout: 5 })
        }
      })
      const hostPort = `${node.host}:${node.port}`
      const refused = yield* closedPort
      const proxy = yield* FaultProxy.make({ target: node })
      const common = {
        health: { interval: "100 millis", timeout: "500 millis" },
        connectTimeout: "1 second",
        queryTimeout: "2 seconds",
        retry: false
      } as const

      yield* recorded(
        recorder,
        Effect.gen(function*() {
          // 1. Configuration decoded from a file's content; a working client.
          const fromConfig = yield* PgConfig.decode({
            endpoints: [`postgres://${hostPort}/postgres`],
            user: "sec_cfg",
            password: secrets["pg config (decode) password"]
          })
          recorder.add("PgConfig.decode options", fromConfig)
          const db = yield* PgClient.make({ ...fromConfig, ...common, name: "sec-cfg" })
          expect(yield* attempt(recorder, "pg config read", db.read`select current_user`)).toBe(true)

          // 2. The environment.
          const fromEnv = yield* PgConfig.fromEnv.parse(ConfigProvider.fromEnv({
            env: {
              TETHER_PG_URLS: `postgres://${hostPort}/postgres`,
              TETHER_PG_USER: "sec_env",
              TETHER_PG_PASSWORD: secrets["pg env password"]
            }
          }))
          recorder.add("PgConfig.fromEnv value", fromEnv)
          const dbEnv = yield* PgClient.make({ ...fromEnv, ...common, name: "sec-env" })
          yield* attempt(recorder, "pg env read", dbEnv.read`select current_user`)

          // 3. Passwords inside URLs: a client may refuse them (typed) or strip them; never print them.
          const urlClient = yield* build(
            recorder,
            "pg URL user:password",
            PgClient.make({
              ...common,
              name: "sec-url",
              endpoints: [`postgres://sec_url:${secrets["pg URL user:password"]}@${hostPort}/postgres`],
              user: "sec_url"
            })
          )
          if (urlClient !== undefined) yield* attempt(recorder, "pg URL user:password read", urlClient.read`select 1`)
          const queryClient = yield* build(
            recorder,
            "pg URL ?password=",
            PgClient.make({
              ...common,
              name: "sec-query",
              endpoints: [`postgres://${hostPort}/postgres?password=${secrets["pg URL ?password="]}`],
              user: "sec_query"
            })
          )
          if (queryClient !== undefined) yield* attempt(recorder, "pg URL ?password= read", queryClient.read`select 1`)

          // 4. Identities, right and wrong.
          const right = Identity.make("sec_id", Redacted.make(secrets["pg identity password"]), { label: "sec-id" })
          yield* attempt(recorder, "pg identity read", db.as(EndUser).read`select current_user`.pipe(Effect.provideService(EndUser, right)))
          yield* attempt(recorder, "pg identity write", db.as(EndUser).write`select current_user`.pipe(Effect.provideService(EndUser, right)))
          const wrong = Identity.make("sec_id", Redacted.make(secrets["pg wrong identity password"]), { label: "sec-id" })
          const wrongOk = yield* attempt(
            recorder,
            "pg wrong identity read",
            db.as(EndUser).read`select 1`.pipe(Effect.provideService(EndUser, wrong))
          )
          expect(wrongOk).toBe(false)
          yield* attempt(
            recorder,
            "pg wrong identity transaction",
            db.as(EndUser).transaction((tx) => tx.sql`select 1`).pipe(Effect.provideService(EndUser, wrong))
          )

          // 5. A wrong password for the default role: every operation and every health probe fails.
          const wrongDefault = yield* PgClient.make({
            ...common,
            name: "sec-wrong-default",
            endpoints: [`postgres://${hostPort}/postgres`],
            user: "sec_cfg",
            password: Redacted.make(secrets["pg wrong default-user password"])
          })
          yield* attempt(recorder, "pg wrong default read", wrongDefault.read`select 1`)
          yield* attempt(recorder, "pg wrong default write", wrongDefault.write`select 1`)

          // 6. Connection refused, with the password in the options and in a URL.
          const refusedDb = yield* PgClient.make({
            ...common,
            name: "sec-refused",
            endpoints: [`postgres://127.0.0.1:${refused}/postgres`],
            user: "sec_cfg",
            password: Redacted.make(secrets["pg refused-server password"])
          })
          yield* attempt(recorder, "pg refused read", refusedDb.read`select 1`)
          yield* attempt(recorder, "pg refused write", refusedDb.write`select 1`)
          const refusedUrl = yield* build(
            recorder,
            "pg refused URL",
            PgClient.make({
              ...common,
              name: "sec-refused-url",
              endpoints: [`postgres://sec_cfg:${secrets["pg refused URL password"]}@127.0.0.1:${refused}/postgres`],
              user: "sec_cfg"
            })
          )
          if (refusedUrl !== undefined) yield* attempt(recorder, "pg refused URL read", refusedUrl.read`select 1`)

          // 7. A hung server (black-holed proxy): connect and query timeouts.
          const hung = yield* PgClient.make({
            ...common,
            name: "sec-hung",
            endpoints: [`postgres://${proxy.address}/postgres`],
            user: "sec_hung",
            password: Redacted.make(secrets["pg hung-server password"])
          })
          yield* attempt(recorder, "pg hung warm-up read", hung.read`select 1`)
          yield* proxy.blackhole(true)
          yield* attempt(recorder, "pg hung read", hung.read`select pg_sleep(0)`)
          yield* attempt(recorder, "pg hung write", hung.write`select 1`)
          yield* attempt(recorder, "pg hung identity read", hung.as(EndUser).read`select 1`.pipe(Effect.provideService(EndUser, right)))
          // Let health probes fail and log for a while.
          yield* Effect.sleep("1500 millis")
          yield* proxy.heal

          // Status snapshots of every client.
          for (const [name, client] of [
            ["config", db],
            ["env", dbEnv],
            ["url", urlClient],
            ["query", queryClient],
            ["wrong default", wrongDefault],
            ["refused", refusedDb],
            ["refused url", refusedUrl],
            ["hung", hung]
          ] as const) {
            if (client !== undefined) recorder.add(`pg status (${name})`, yield* client.status)
          }
        }).pipe(Effect.scoped)
      )
      recorder.add("metric snapshot", yield* Metric.snapshot)
      recorder.collectSpans()
      const missing = recorder.missing([
        ["pg config read value", /sec_cfg/],
        ["pg identity read value", /sec_id/],
        ["pg wrong identity read Cause.pretty", /./],
        ["pg wrong default read Cause.pretty", /./],
        ["pg refused read Cause.pretty", /./],
        ["pg hung read Cause.pretty", /./],
        ["log ", /./],
        ["span tether.", /./],
        ["metric snapshot (JSON)", /tether_/],
        ["pg status (hung)", /unhealthy|healthy/]
      ])
      // Both at once: the leaks are listed even when a capture check fails, and a clean scan only
      // counts when every capture worked.
      expect({ leaks: recorder.leaks(secrets), missing }).toEqual({ leaks: [], missing: [] })
    }).pipe(Effect.scoped))

  it.live("LDAP: config, env, URLs and identities; wrong passwords, refused and hung servers", () =>
    Effect.gen(function*() {
      const recorder = new Recorder()
      const secrets = {
        "ldap admin (service account) password": secret("ldapadmin"),
        "ldap env password": secret("ldapenv"),
        "ldap identity password": secret("ldapid"),
        "ldap wrong identity password": secret("ldapwrongid"),
        "ldap wrong service password": secret("ldapwrongsvc"),
        "ldap URL X-BINDPW": secret("ldapxbindpw"),
        "ldap URL user:password": secret("ldapuserinfo"),
        "ldap refused-server password": secret("ldaprefused"),
        "ldap hung-server password": secret("ldaphung"),
        "ldap rotated identity password": secret("ldaprotated")
      }
      const directory = yield* Slapd.make({ users: 5, adminPassword: secrets["ldap admin (service account) password"] })
      const [, envUser, idUser, hungUser, rotUser] = directory.users
      // Give the users unique passwords (the fixture's are predictable).
      yield* Effect.promise(async () => {
        const client = new Client({ url: directory.server.url })
        try {
          await client.bind(directory.adminDn, directory.adminPassword)
          for (const [user, password] of [
            [envUser!, secrets["ldap env password"]],
            [idUser!, secrets["ldap identity password"]],
            [hungUser!, secrets["ldap hung-server password"]],
            [rotUser!, secrets["ldap rotated identity password"]]
          ] as const) {
            await client.modify(
              user.dn,
              new Change({ operation: "replace", modification: new Attribute({ type: "userPassword", values: [password] }) })
            )
          }
        } finally {
          await client.unbind()
        }
      })
      const url = directory.server.url
      const hostPort = url.slice("ldap://".length)
      const refused = yield* closedPort
      const proxy = yield* FaultProxy.make({ target: directory.server })
      const common = {
        health: { interval: "100 millis", timeout: "500 millis" },
        connectTimeout: "1 second",
        timeout: "2 seconds",
        retry: false
      } as const

      yield* recorded(
        recorder,
        Effect.gen(function*() {
          // 1. Configuration decoded from a file's content (the service account).
          const fromConfig = yield* LdapConfig.decode({
            endpoints: [url],
            bindDn: directory.adminDn,
            password: secrets["ldap admin (service account) password"]
          })
          recorder.add("LdapConfig.decode options", fromConfig)
          const ldap = yield* LdapClient.make({ ...fromConfig, ...common, name: "sec-cfg" })
          expect(yield* attempt(recorder, "ldap config whoami", ldap.whoami)).toBe(true)
          yield* attempt(recorder, "ldap config search", ldap.searchAll(directory.peopleDn, { filter: "(uid=user1)" }))

          // 2. The environment: the Config's value, then the loaded options.
          const fromEnv = yield* LdapConfig.fromEnv.parse(ConfigProvider.fromEnv({
            env: {
              TETHER_LDAP_URLS: url,
              TETHER_LDAP_BIND_DN: envUser!.dn,
              TETHER_LDAP_PASSWORD: secrets["ldap env password"]
            }
          }))
          recorder.add("LdapConfig.fromEnv value", fromEnv)
          const envOptions = yield* LdapConfig.load(fromEnv)
          recorder.add("LdapConfig.load(fromEnv) options", envOptions)
          const ldapEnv = yield* LdapClient.make({ ...envOptions, ...common, name: "sec-env" })
          yield* attempt(recorder, "ldap env whoami", ldapEnv.whoami)

          // 3. Passwords inside URLs: refused (typed) or stripped, never printed.
          const bindname = encodeURIComponent(directory.adminDn)
          const xBindPw = yield* build(
            recorder,
            "ldap URL X-BINDPW",
            LdapClient.make({
              ...common,
              name: "sec-xbindpw",
              endpoints: [`${url}/????bindname=${bindname},X-BINDPW=${secrets["ldap URL X-BINDPW"]}`]
            })
          )
          if (xBindPw !== undefined) yield* attempt(recorder, "ldap URL X-BINDPW whoami", xBindPw.whoami)
          const userInfo = yield* build(
            recorder,
            "ldap URL user:password",
            LdapClient.make({
              ...common,
              name: "sec-userinfo",
              endpoints: [`ldap://admin:${secrets["ldap URL user:password"]}@${hostPort}`]
            })
          )
          if (userInfo !== undefined) yield* attempt(recorder, "ldap URL user:password whoami", userInfo.whoami)

          // 4. Identities: right, wrong, and a rotation (old secret, then the new one).
          const right = Identity.make(idUser!.dn, Redacted.make(secrets["ldap identity password"]), { label: "sec-id" })
          yield* attempt(recorder, "ldap identity whoami", ldap.as(EndUser).whoami.pipe(Effect.provideService(EndUser, right)))
          const wrong = Identity.make(idUser!.dn, Redacted.make(secrets["ldap wrong identity password"]), { label: "sec-id" })
          const wrongOk = yield* attempt(
            recorder,
            "ldap wrong identity whoami",
            ldap.as(EndUser).whoami.pipe(Effect.provideService(EndUser, wrong))
          )
          expect(wrongOk).toBe(false)
          yield* attempt(
            recorder,
            "ldap wrong identity search",
            ldap.as(EndUser).searchAll(directory.peopleDn).pipe(Effect.provideService(EndUser, wrong))
          )
          const rotated = Identity.make(rotUser!.dn, Redacted.make(secrets["ldap rotated identity password"]), { label: "sec-rot" })
          yield* attempt(recorder, "ldap rotated identity whoami", ldap.as(EndUser).whoami.pipe(Effect.provideService(EndUser, rotated)))

          // 5. A wrong service-account password: operations and health probes fail.
          const wrongService = yield* LdapClient.make({
            ...common,
            name: "sec-wrong-service",
            endpoints: [url],
            bindDn: directory.adminDn,
            password: Redacted.make(secrets["ldap wrong service password"])
          })
          yield* attempt(recorder, "ldap wrong service whoami", wrongService.whoami)
          yield* attempt(recorder, "ldap wrong service add", wrongService.add(`cn=x,${directory.suffix}`, { objectClass: "device", cn: "x" }))

          // 6. Connection refused.
          const refusedLdap = yield* LdapClient.make({
            ...common,
            name: "sec-refused",
            endpoints: [`ldap://127.0.0.1:${refused}`],
            bindDn: directory.adminDn,
            password: Redacted.make(secrets["ldap refused-server password"])
          })
          yield* attempt(recorder, "ldap refused whoami", refusedLdap.whoami)
          yield* attempt(
            recorder,
            "ldap refused identity whoami",
            refusedLdap.as(EndUser).whoami.pipe(Effect.provideService(EndUser, right))
          )

          // 7. A hung server (black-holed proxy): connect and operation timeouts.
          const hung = yield* LdapClient.make({
            ...common,
            name: "sec-hung",
            endpoints: [proxy.url("ldap")],
            bindDn: hungUser!.dn,
            password: Redacted.make(secrets["ldap hung-server password"])
          })
          yield* attempt(recorder, "ldap hung warm-up whoami", hung.whoami)
          yield* proxy.blackhole(true)
          yield* attempt(recorder, "ldap hung whoami", hung.whoami)
          yield* attempt(recorder, "ldap hung identity whoami", hung.as(EndUser).whoami.pipe(Effect.provideService(EndUser, right)))
          yield* Effect.sleep("1500 millis")
          yield* proxy.heal

          for (const [name, client] of [
            ["config", ldap],
            ["env", ldapEnv],
            ["X-BINDPW", xBindPw],
            ["user:password", userInfo],
            ["wrong service", wrongService],
            ["refused", refusedLdap],
            ["hung", hung]
          ] as const) {
            if (client !== undefined) recorder.add(`ldap status (${name})`, yield* client.status)
          }
        }).pipe(Effect.scoped)
      )
      recorder.add("metric snapshot", yield* Metric.snapshot)
      recorder.collectSpans()
      const missing = recorder.missing([
        ["ldap config whoami value", /cn=admin/],
        ["ldap identity whoami value", /uid=user3/],
        ["ldap rotated identity whoami value", /uid=user5/],
        ["ldap wrong identity whoami Cause.pretty", /./],
        ["ldap wrong service whoami Cause.pretty", /./],
        ["ldap refused whoami Cause.pretty", /./],
        ["ldap hung whoami Cause.pretty", /./],
        ["log ", /./],
        ["span tether.", /./],
        ["metric snapshot (JSON)", /tether_/],
        ["ldap status (hung)", /unhealthy|healthy/]
      ])
      // Both at once: the leaks are listed even when a capture check fails, and a clean scan only
      // counts when every capture worked.
      expect({ leaks: recorder.leaks(secrets), missing }).toEqual({ leaks: [], missing: [] })
    }).pipe(Effect.scoped))
})
