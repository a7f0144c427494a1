/**
 * Bad configurations, as a careless user writes them: every one must fail
 * construction with a typed error naming the option — never a defect, a
 * throw, a hang, or a client that fails later on its first operation.
 */
import { assert, describe, it } from "@effect/vitest"
import { ConnectionPool, Fault, IdentityPool, ServerSet } from "@tether/core"
import type { Driver } from "@tether/core"
import { LdapClient, LdapConfig, LdapDriver } from "@tether/ldap"
import { PgClient, PgConfig, PgDriver, PgSql } from "@tether/pg"
import { Cause, ConfigProvider, Duration, Effect, Exit, Redacted } from "effect"
import * as Reactivity from "effect/reactivity/Reactivity"
import type { Scope } from "effect"

/** A driver that never connects: no row may get as far as using it. */
const driver: Driver.Driver<unknown, Error> = {
  connect: () => Effect.fail(new Error("a bad configuration must be refused before connecting")),
  classify: () => Fault.make("connection")
}

const pg = (options: Record<string, unknown>) =>
  PgClient.make({ endpoints: ["postgres://127.0.0.1:1/db"], user: "app", ...options } as PgClient.Options)
const ldap = (options: Record<string, unknown>) =>
  LdapClient.make({ endpoints: ["ldap://127.0.0.1:1"], ...options } as LdapClient.Options)
const set = (options: Record<string, unknown>) =>
  ServerSet.make({ name: "s", endpoints: ["fake://a:1"], driver, ...options } as ServerSet.Options<unknown, Error>)
const pool = (options: Record<string, unknown>) =>
  ConnectionPool.make({ name: "p", acquire: Effect.succeed(1), ...options } as ConnectionPool.Options<number, never, never>)
const pgConfig = (input: Record<string, unknown>) =>
  PgConfig.decode({ endpoints: ["postgres://db1:5432/app"], user: "app", ...input })
const ldapConfig = (input: Record<string, unknown>) => LdapConfig.decode({ endpoints: ["ldap://ldap1:389"], ...input })
const sql = (options: Record<string, unknown>) =>
  PgSql.make({ endpoints: ["postgres://127.0.0.1:1/db"], user: "app", ...options } as PgSql.Options).pipe(
    Effect.provide(Reactivity.layer)
  )
const identityPool = (options: Record<string, unknown>) =>
  IdentityPool.make({ name: "i", connect: () => Effect.succeed(1), ...options } as IdentityPool.Options<number, never>)
const withEnv = <A, E>(env: Record<string, string>, effect: Effect.Effect<A, E>) =>
  Effect.provide(effect, ConfigProvider.layer(ConfigProvider.fromEnv({ env })))
const pgEnv = (env: Record<string, string>) =>
  withEnv({ TETHER_PG_URLS: "postgres://db1:5432/app", TETHER_PG_USER: "app", TETHER_PG_PASSWORD: "s3cret", ...env }, PgConfig.loadEnv)
const ldapEnv = (env: Record<string, string>) =>
  withEnv({ TETHER_LDAP_URLS: "ldap://ldap1:389", ...env }, LdapConfig.loadEnv)
const secret = Redacted.make("s3cret")

interface Row {
  readonly target: string
  readonly what: string
  readonly run: Effect.Effect<unknown, unknown, Scope.Scope>
  readonly tag: "InvalidPoolOptions" | "InvalidEndpoint" | "InvalidPgConfig" | "InvalidLdapConfig"
  /** The option the error must name (its `option`/`setting`, or in its message for `InvalidEndpoint`). */
  readonly option: string
  /** Text the message must hold (e.g. the "did you mean" of an unknown key). */
  readonly says?: string
}

const rows: ReadonlyArray<Row> = [
  // --- ConnectionPool
  { target: "ConnectionPool", what: "max 0", run: pool({ max: 0 }), tag: "InvalidPoolOptions", option: "max" },
  { target: "ConnectionPool", what: "min > max", run: pool({ min: 5, max: 2 }), tag: "InvalidPoolOptions", option: "min" },
  { target: "ConnectionPool", what: "acquireTimeout banana", run: pool({ acquireTimeout: "banana" }), tag: "InvalidPoolOptions", option: "acquireTimeout" },
  { target: "ConnectionPool", what: "connectTimeout NaN", run: pool({ connectTimeout: NaN }), tag: "InvalidPoolOptions", option: "connectTimeout" },
  { target: "ConnectionPool", what: "idleTimeToLive a symbol", run: pool({ idleTimeToLive: Symbol("x") }), tag: "InvalidPoolOptions", option: "idleTimeToLive" },
  { target: "ConnectionPool", what: "concurrency 1.5", run: pool({ concurrency: 1.5 }), tag: "InvalidPoolOptions", option: "concurrency" },
  { target: "ConnectionPool", what: "no acquire", run: pool({ acquire: undefined }), tag: "InvalidPoolOptions", option: "acquire" },
  { target: "ConnectionPool", what: "empty name", run: pool({ name: "" }), tag: "InvalidPoolOptions", option: "name" },
  // --- ServerSet
  { target: "ServerSet", what: "unknown strategy", run: set({ strategy: "fastests" }), tag: "InvalidPoolOptions", option: "strategy" },
  { target: "ServerSet", what: "strategy constructor", run: set({ strategy: "constructor" }), tag: "InvalidPoolOptions", option: "strategy" },
  { target: "ServerSet", what: "no endpoints", run: set({ endpoints: [] }), tag: "InvalidPoolOptions", option: "endpoints" },
  { target: "ServerSet", what: "endpoints not a list", run: set({ endpoints: "fake://a:1" }), tag: "InvalidPoolOptions", option: "endpoints" },
  { target: "ServerSet", what: "health.interval banana", run: set({ health: { interval: "banana" } }), tag: "InvalidPoolOptions", option: "health.interval" },
  { target: "ServerSet", what: "health.interval 0", run: set({ health: { interval: 0 } }), tag: "InvalidPoolOptions", option: "health.interval" },
  { target: "ServerSet", what: "health.interval negative", run: set({ health: { interval: "-5 seconds" } }), tag: "InvalidPoolOptions", option: "health.interval" },
  { target: "ServerSet", what: "health.timeout banana", run: set({ health: { timeout: "banana" } }), tag: "InvalidPoolOptions", option: "health.timeout" },
  { target: "ServerSet", what: "unhealthyAfter 0", run: set({ health: { unhealthyAfter: 0 } }), tag: "InvalidPoolOptions", option: "health.unhealthyAfter" },
  { target: "ServerSet", what: "healthyAfter -1", run: set({ health: { healthyAfter: -1 } }), tag: "InvalidPoolOptions", option: "health.healthyAfter" },
  { target: "ServerSet", what: "health true", run: set({ health: true }), tag: "InvalidPoolOptions", option: "health" },
  { target: "ServerSet", what: "breaker consecutiveFailures -1", run: set({ breaker: { consecutiveFailures: -1 } }), tag: "InvalidPoolOptions", option: "consecutiveFailures" },
  { target: "ServerSet", what: "pool.max 0", run: set({ pool: { max: 0 } }), tag: "InvalidPoolOptions", option: "pool.max" },
  { target: "ServerSet", what: "pool.acquireTimeout banana", run: set({ pool: { acquireTimeout: "banana" } }), tag: "InvalidPoolOptions", option: "pool.acquireTimeout" },
  { target: "ServerSet", what: "hedge.delay banana", run: set({ hedge: { delay: "banana" } }), tag: "InvalidPoolOptions", option: "hedge.delay" },
  { target: "ServerSet", what: "no driver", run: set({ driver: undefined }), tag: "InvalidPoolOptions", option: "driver" },
  {
    target: "ServerSet",
    what: "a PgDriver with probeTimeout banana",
    run: set({ driver: PgDriver.make({ user: "app", probeTimeout: "banana" as Duration.Input }) }),
    tag: "InvalidPoolOptions",
    option: "probeTimeout"
  },
  {
    target: "ServerSet",
    what: "an LdapDriver with timeout -1",
    run: set({ driver: LdapDriver.make({ timeout: -1 }) }),
    tag: "InvalidPoolOptions",
    option: "timeout"
  },
  { target: "ServerSet", what: "empty name", run: set({ name: "" }), tag: "InvalidPoolOptions", option: "name" },
  // --- PgClient
  { target: "PgClient", what: "queryTimeout -1", run: pg({ queryTimeout: -1 }), tag: "InvalidPoolOptions", option: "queryTimeout" },
  { target: "PgClient", what: "queryTimeout banana", run: pg({ queryTimeout: "banana" }), tag: "InvalidPoolOptions", option: "queryTimeout" },
  { target: "PgClient", what: "statementTimeout banana", run: pg({ statementTimeout: "banana" }), tag: "InvalidPoolOptions", option: "statementTimeout" },
  { target: "PgClient", what: "connectTimeout 0", run: pg({ connectTimeout: 0 }), tag: "InvalidPoolOptions", option: "connectTimeout" },
  { target: "PgClient", what: "slowQueryThreshold banana", run: pg({ slowQueryThreshold: "banana" }), tag: "InvalidPoolOptions", option: "slowQueryThreshold" },
  { target: "PgClient", what: "multiplex 0", run: pg({ multiplex: 0 }), tag: "InvalidPoolOptions", option: "multiplex" },
  { target: "PgClient", what: "multiplex -2", run: pg({ multiplex: -2 }), tag: "InvalidPoolOptions", option: "multiplex" },
  { target: "PgClient", what: "readFrom typo", run: pg({ readFrom: "replica-prefered" }), tag: "InvalidPoolOptions", option: "readFrom" },
  { target: "PgClient", what: "ssl typo", run: pg({ ssl: "verify_full" }), tag: "InvalidPoolOptions", option: "ssl" },
  { target: "PgClient", what: "no endpoints", run: pg({ endpoints: [] }), tag: "InvalidPoolOptions", option: "endpoints" },
  { target: "PgClient", what: "empty user", run: pg({ user: "" }), tag: "InvalidPoolOptions", option: "user" },
  { target: "PgClient", what: "password not Redacted", run: pg({ password: "s3cret" }), tag: "InvalidPoolOptions", option: "password" },
  { target: "PgClient", what: "unknown strategy", run: pg({ strategy: "banana" }), tag: "InvalidPoolOptions", option: "strategy" },
  { target: "PgClient", what: "health.interval -1", run: pg({ health: { interval: -1 } }), tag: "InvalidPoolOptions", option: "health.interval" },
  { target: "PgClient", what: "cache.ttl banana", run: pg({ cache: { ttl: "banana" } }), tag: "InvalidPoolOptions", option: "cache.ttl" },
  { target: "PgClient", what: "an ldap:// URL", run: pg({ endpoints: ["ldap://db1:389"] }), tag: "InvalidEndpoint", option: "postgres://" },
  { target: "PgClient", what: "not a URL", run: pg({ endpoints: ["db1:5432"] }), tag: "InvalidEndpoint", option: "postgres://host" },
  // --- LdapClient
  { target: "LdapClient", what: "an http:// URL", run: ldap({ endpoints: ["http://ldap1:389"] }), tag: "InvalidEndpoint", option: "url" },
  { target: "LdapClient", what: "a host-less URL", run: ldap({ endpoints: ["ldap:///dc=example"] }), tag: "InvalidEndpoint", option: "host" },
  { target: "LdapClient", what: "no endpoints", run: ldap({ endpoints: [] }), tag: "InvalidPoolOptions", option: "endpoints" },
  { target: "LdapClient", what: "unknown strategy", run: ldap({ strategy: "select" }), tag: "InvalidPoolOptions", option: "strategy" },
  { target: "LdapClient", what: "health.interval 0", run: ldap({ health: { interval: 0 } }), tag: "InvalidPoolOptions", option: "health.interval" },
  { target: "LdapClient", what: "unhealthyAfter 0", run: ldap({ health: { unhealthyAfter: 0 } }), tag: "InvalidPoolOptions", option: "health.unhealthyAfter" },
  { target: "LdapClient", what: "timeout banana", run: ldap({ timeout: "banana" }), tag: "InvalidPoolOptions", option: "timeout" },
  { target: "LdapClient", what: "connectTimeout 0", run: ldap({ connectTimeout: 0 }), tag: "InvalidPoolOptions", option: "connectTimeout" },
  { target: "LdapClient", what: "bindDn without password", run: ldap({ bindDn: "cn=app,dc=example" }), tag: "InvalidPoolOptions", option: "password" },
  { target: "LdapClient", what: "password as a plain string", run: ldap({ bindDn: "cn=app", password: "s3cret" }), tag: "InvalidPoolOptions", option: "password" },
  { target: "LdapClient", what: "startTls yes", run: ldap({ startTls: "yes" }), tag: "InvalidPoolOptions", option: "startTls" },
  // --- PgConfig (configuration files)
  { target: "PgConfig", what: "unknown key passwd", run: pgConfig({ passwd: "s3cret" }), tag: "InvalidPgConfig", option: "passwd" },
  { target: "PgConfig", what: "queryTimeoutMillis -1", run: pgConfig({ queryTimeoutMillis: -1 }), tag: "InvalidPgConfig", option: "queryTimeoutMillis" },
  { target: "PgConfig", what: "statementTimeoutMillis banana", run: pgConfig({ statementTimeoutMillis: "banana" }), tag: "InvalidPgConfig", option: "statementTimeoutMillis" },
  { target: "PgConfig", what: "ssl typo", run: pgConfig({ ssl: "requir" }), tag: "InvalidPgConfig", option: "ssl" },
  { target: "PgConfig", what: "readFrom typo", run: pgConfig({ readFrom: "replicas" }), tag: "InvalidPgConfig", option: "readFrom" },
  { target: "PgConfig", what: "empty endpoints", run: pgConfig({ endpoints: [] }), tag: "InvalidPgConfig", option: "endpoints" },
  { target: "PgConfig", what: "health.intervalMillis 0", run: pgConfig({ health: { intervalMillis: 0 } }), tag: "InvalidPgConfig", option: "health.intervalMillis" },
  { target: "PgConfig", what: "unknown nested key", run: pgConfig({ pool: { maxx: 3 } }), tag: "InvalidPgConfig", option: "pool.maxx" },
  { target: "PgConfig", what: "strategy typo", run: pgConfig({ strategy: "fastst" }), tag: "InvalidPgConfig", option: "strategy" },
  { target: "PgConfig", what: "retry.maxDelayMillis 0", run: pgConfig({ retry: { maxDelayMillis: 0 } }), tag: "InvalidPgConfig", option: "retry.maxDelayMillis" },
  { target: "PgConfig", what: "multiplex 0", run: pgConfig({ multiplex: 0 }), tag: "InvalidPgConfig", option: "multiplex" },
  // --- LdapConfig (configuration files)
  { target: "LdapConfig", what: "unknown key passwd", run: ldapConfig({ passwd: "s3cret" }), tag: "InvalidLdapConfig", option: "passwd" },
  { target: "LdapConfig", what: "bindDn without password", run: ldapConfig({ bindDn: "cn=app" }), tag: "InvalidLdapConfig", option: "password" },
  { target: "LdapConfig", what: "timeoutMillis banana", run: ldapConfig({ timeoutMillis: "banana" }), tag: "InvalidLdapConfig", option: "timeoutMillis" },
  { target: "LdapConfig", what: "an http:// URL", run: ldapConfig({ endpoints: ["http://ldap1"] }), tag: "InvalidLdapConfig", option: "endpoints" },
  { target: "LdapConfig", what: "breaker consecutiveFailures 0", run: ldapConfig({ breaker: { consecutiveFailures: 0 } }), tag: "InvalidLdapConfig", option: "breaker.consecutiveFailures" },
  { target: "LdapConfig", what: "unhealthyAfter 0", run: ldapConfig({ health: { unhealthyAfter: 0 } }), tag: "InvalidLdapConfig", option: "health.unhealthyAfter" },
  { target: "LdapConfig", what: "startTls yes", run: ldapConfig({ startTls: "yes" }), tag: "InvalidLdapConfig", option: "startTls" },
  // --- unknown keys (a typo is refused, never ignored), on every constructor and at every level
  { target: "PgClient", what: "unknown key passwd", run: pg({ passwd: "s3cret" }), tag: "InvalidPoolOptions", option: "passwd", says: `did you mean "password"?` },
  { target: "PgClient", what: "unknown key queryTimout", run: pg({ queryTimout: "5 seconds" }), tag: "InvalidPoolOptions", option: "queryTimout", says: `did you mean "queryTimeout"?` },
  { target: "PgClient", what: "unknown nested key pool.maxx", run: pg({ pool: { maxx: 3 } }), tag: "InvalidPoolOptions", option: "pool.maxx", says: `did you mean "max"?` },
  { target: "PgClient", what: "unknown nested key health.intervall", run: pg({ health: { intervall: 5 } }), tag: "InvalidPoolOptions", option: "health.intervall", says: `did you mean "interval"?` },
  { target: "PgClient", what: "unknown nested key retry.schedul", run: pg({ retry: { schedul: undefined } }), tag: "InvalidPoolOptions", option: "retry.schedul", says: `did you mean "schedule"?` },
  { target: "PgClient", what: "unknown nested key breaker.consecutiveFailure", run: pg({ breaker: { consecutiveFailure: 3 } }), tag: "InvalidPoolOptions", option: "breaker.consecutiveFailure", says: `did you mean "consecutiveFailures"?` },
  { target: "PgClient", what: "unknown nested key sql.pipelin", run: pg({ sql: { pipelin: 4 } }), tag: "InvalidPoolOptions", option: "sql.pipelin", says: `did you mean "pipeline"?` },
  { target: "PgClient", what: "a key of PgSql only (pgbouncer)", run: pg({ pgbouncer: "transaction" }), tag: "InvalidPoolOptions", option: "pgbouncer" },
  { target: "PgSql", what: "unknown key passwd", run: sql({ passwd: "s3cret" }), tag: "InvalidPoolOptions", option: "passwd", says: `did you mean "password"?` },
  { target: "PgSql", what: "a key of PgClient only (multiplex)", run: sql({ multiplex: 4 }), tag: "InvalidPoolOptions", option: "multiplex" },
  { target: "PgSql", what: "unknown nested key exclusivePool.mx", run: sql({ exclusivePool: { mx: 4 } }), tag: "InvalidPoolOptions", option: "exclusivePool.mx" },
  { target: "LdapClient", what: "unknown keys bindDN and pasword (no silent anonymous bind)", run: ldap({ bindDN: "cn=app", pasword: secret }), tag: "InvalidPoolOptions", option: "bindDN", says: `did you mean "bindDn"?` },
  { target: "LdapClient", what: "unknown key pasword beside bindDn", run: ldap({ bindDn: "cn=app", pasword: secret }), tag: "InvalidPoolOptions", option: "pasword", says: `did you mean "password"?` },
  { target: "LdapClient", what: "unknown key startTLS", run: ldap({ startTLS: true }), tag: "InvalidPoolOptions", option: "startTLS", says: `did you mean "startTls"?` },
  { target: "LdapClient", what: "unknown nested key pool.maxPerIdentiy", run: ldap({ pool: { maxPerIdentiy: 2 } }), tag: "InvalidPoolOptions", option: "pool.maxPerIdentiy", says: `did you mean "maxPerIdentity"?` },
  { target: "LdapClient", what: "hedge (not an LdapClient option)", run: ldap({ hedge: { delay: 10 } }), tag: "InvalidPoolOptions", option: "hedge" },
  { target: "ServerSet", what: "unknown key endpoint", run: set({ endpoint: "fake://b:1" }), tag: "InvalidPoolOptions", option: "endpoint", says: `did you mean "endpoints"?` },
  { target: "ServerSet", what: "unknown nested key hedge.dealy", run: set({ hedge: { delay: 5, dealy: 5 } }), tag: "InvalidPoolOptions", option: "hedge.dealy", says: `did you mean "delay"?` },
  { target: "ServerSet", what: "unknown nested key breaker.failureRate.treshold", run: set({ breaker: { failureRate: { threshold: 0.5, treshold: 0.5 } } }), tag: "InvalidPoolOptions", option: "breaker.failureRate.treshold", says: `did you mean "threshold"?` },
  { target: "ServerSet", what: "a PgDriver with unknown key passwrd", run: set({ driver: PgDriver.make({ user: "app", passwrd: secret } as PgDriver.Options) }), tag: "InvalidPoolOptions", option: "passwrd", says: `did you mean "password"?` },
  { target: "ConnectionPool", what: "unknown key maxSize", run: pool({ maxSize: 4 }), tag: "InvalidPoolOptions", option: "maxSize" },
  { target: "ConnectionPool", what: "unknown key acquireTimout", run: pool({ acquireTimout: 5 }), tag: "InvalidPoolOptions", option: "acquireTimout", says: `did you mean "acquireTimeout"?` },
  { target: "IdentityPool", what: "unknown key maxPerIdentiy", run: identityPool({ maxPerIdentiy: 2 }), tag: "InvalidPoolOptions", option: "maxPerIdentiy", says: `did you mean "maxPerIdentity"?` },
  { target: "IdentityPool", what: "unknown nested key pool.idleTimeToLife", run: identityPool({ pool: { idleTimeToLife: 5 } }), tag: "InvalidPoolOptions", option: "pool.idleTimeToLife", says: `did you mean "idleTimeToLive"?` },
  // --- environment variables (PgConfig.loadEnv / LdapConfig.loadEnv): the same typed errors as a file
  { target: "PgConfig", what: "env TETHER_PG_MULTIPLEX=0", run: pgEnv({ TETHER_PG_MULTIPLEX: "0" }), tag: "InvalidPgConfig", option: "TETHER_PG_MULTIPLEX", says: "an integer ≥ 1" },
  { target: "PgConfig", what: "env TETHER_PG_MULTIPLEX not a number", run: pgEnv({ TETHER_PG_MULTIPLEX: "four" }), tag: "InvalidPgConfig", option: "TETHER_PG_MULTIPLEX", says: `"four"` },
  { target: "PgConfig", what: "env TETHER_PG_STATEMENT_TIMEOUT banana", run: pgEnv({ TETHER_PG_STATEMENT_TIMEOUT: "banana" }), tag: "InvalidPgConfig", option: "TETHER_PG_STATEMENT_TIMEOUT", says: "duration" },
  { target: "PgConfig", what: "env TETHER_PG_STATEMENT_TIMEOUT negative", run: pgEnv({ TETHER_PG_STATEMENT_TIMEOUT: "-5 seconds" }), tag: "InvalidPgConfig", option: "TETHER_PG_STATEMENT_TIMEOUT", says: "not negative" },
  { target: "PgConfig", what: "env TETHER_PG_SSL typo", run: pgEnv({ TETHER_PG_SSL: "verify_full" }), tag: "InvalidPgConfig", option: "TETHER_PG_SSL", says: "verify-full" },
  { target: "PgConfig", what: "env TETHER_PG_READ_FROM typo", run: pgEnv({ TETHER_PG_READ_FROM: "replicas" }), tag: "InvalidPgConfig", option: "TETHER_PG_READ_FROM", says: "replica-preferred" },
  { target: "PgConfig", what: "env TETHER_PG_URLS not postgres://", run: pgEnv({ TETHER_PG_URLS: "http://app:s3cret@db1/app" }), tag: "InvalidPgConfig", option: "TETHER_PG_URLS", says: "postgres://" },
  { target: "PgConfig", what: "env TETHER_PG_URLS empty", run: pgEnv({ TETHER_PG_URLS: " , " }), tag: "InvalidPgConfig", option: "TETHER_PG_URLS" },
  { target: "PgConfig", what: "env TETHER_PG_USER missing", run: withEnv({ TETHER_PG_URLS: "postgres://db1/app" }, PgConfig.loadEnv), tag: "InvalidPgConfig", option: "TETHER_PG_USER", says: "is not set" },
  { target: "LdapConfig", what: "env TETHER_LDAP_START_TLS maybe", run: ldapEnv({ TETHER_LDAP_START_TLS: "maybe" }), tag: "InvalidLdapConfig", option: "TETHER_LDAP_START_TLS", says: "true or false" },
  { target: "LdapConfig", what: "env TETHER_LDAP_SASL_MECHANISM typo", run: ldapEnv({ TETHER_LDAP_SASL_MECHANISM: "SCRAM-SHA256", TETHER_LDAP_SASL_USER: "app" }), tag: "InvalidLdapConfig", option: "TETHER_LDAP_SASL_MECHANISM", says: "SCRAM-SHA-256" },
  { target: "LdapConfig", what: "env TETHER_LDAP_URLS http://", run: ldapEnv({ TETHER_LDAP_URLS: "http://ldap1" }), tag: "InvalidLdapConfig", option: "TETHER_LDAP_URLS", says: "ldap://" },
  { target: "LdapConfig", what: "env bind DN without password", run: ldapEnv({ TETHER_LDAP_BIND_DN: "cn=app" }), tag: "InvalidLdapConfig", option: "TETHER_LDAP_PASSWORD" },
  { target: "LdapConfig", what: "env TETHER_LDAP_URLS missing", run: withEnv({}, LdapConfig.loadEnv), tag: "InvalidLdapConfig", option: "TETHER_LDAP_URLS", says: "is not set" },
]

/** The option an error names: its `option`/`setting` field, or its message for `InvalidEndpoint`. */
const named = (error: unknown): string => {
  const e = error as { option?: unknown; setting?: unknown; message: string }
  return typeof e.option === "string" ? e.option : typeof e.setting === "string" ? e.setting : e.message
}

describe("bad configurations", () => {
  it("cover every public constructor and config source, at least 40 in all", () => {
    assert.isAtLeast(rows.length, 40)
    const targets = new Set(rows.map((r) => r.target))
    for (const t of ["ConnectionPool", "IdentityPool", "ServerSet", "LdapClient", "PgClient", "PgSql", "LdapConfig", "PgConfig"]) {
      assert.isTrue(targets.has(t), t)
    }
  })

  for (const row of rows) {
    // `it.live`: the hang guard runs on the real clock (under the TestClock it would never fire).
    it.live(`${row.target}: ${row.what} → ${row.tag} naming ${row.option}`, () =>
      Effect.gen(function*() {
        const exit = yield* Effect.scoped(row.run).pipe(
          // A hang guard, not a time bound: generous, the point is that it answers at all.
          Effect.timeoutOrElse({ duration: Duration.seconds(20), orElse: () => Effect.die("hung") }),
          Effect.exit
        )
        assert.isTrue(Exit.isFailure(exit), "the bad configuration was accepted")
        if (!Exit.isFailure(exit)) return
        const error = Cause.findErrorOption(exit.cause)
        assert.isTrue(error._tag === "Some", `not a typed error: ${Cause.pretty(exit.cause)}`)
        if (error._tag !== "Some") return
        const failure = error.value as { _tag: string; message: string }
        assert.strictEqual(failure._tag, row.tag, failure.message)
        assert.include(named(failure), row.option, failure.message)
        // A typed failure alone: no defect beside it.
        assert.isFalse(Cause.hasDies(exit.cause), `a defect beside the typed error: ${Cause.pretty(exit.cause)}`)
        if (row.says !== undefined) assert.include(failure.message, row.says)
        // Never quote a secret.
        assert.notInclude(failure.message, "s3cret")
        assert.notInclude(JSON.stringify(failure), "s3cret")
      }))
  }

  it.effect("PgConfig.fromEnv / LdapConfig.fromEnv (Config): a bad variable is a ConfigError holding the typed error", () =>
    Effect.gen(function*() {
      const pgError = yield* Effect.flip(
        PgConfig.fromEnv.parse(ConfigProvider.fromEnv({
          env: { TETHER_PG_URLS: "postgres://db1/app", TETHER_PG_USER: "app", TETHER_PG_PASSWORD: "s3cret", TETHER_PG_MULTIPLEX: "0" }
        }))
      )
      assert.strictEqual(pgError._tag, "ConfigError")
      assert.include(pgError.message, "TETHER_PG_MULTIPLEX")
      assert.notInclude(pgError.message, "s3cret")
      const pgCause = (pgError.cause as { cause?: unknown }).cause
      assert.instanceOf(pgCause, PgConfig.InvalidPgConfig)
      const ldapError = yield* Effect.flip(
        LdapConfig.fromEnv.parse(ConfigProvider.fromUnknown({ TETHER_LDAP_URLS: "ldap://ldap1", TETHER_LDAP_ALLOW_PLAINTEXT: "sure" }))
      )
      assert.include(ldapError.message, "TETHER_LDAP_ALLOW_PLAINTEXT")
      assert.instanceOf((ldapError.cause as { cause?: unknown }).cause, LdapConfig.InvalidLdapConfig)
    }))

  it.effect("good environments still load (every variable, both sources)", () =>
    Effect.gen(function*() {
      const options = yield* pgEnv({
        TETHER_PG_DATABASE: "app",
        TETHER_PG_SSL: "require",
        TETHER_PG_READ_FROM: "any",
        TETHER_PG_MULTIPLEX: "4",
        TETHER_PG_STATEMENT_TIMEOUT: "5 seconds"
      })
      assert.strictEqual(options.multiplex, 4)
      assert.strictEqual(options.statementTimeout, 5000)
      assert.strictEqual(options.ssl, "require")
      const millis = yield* pgEnv({ TETHER_PG_STATEMENT_TIMEOUT: "2500" })
      assert.strictEqual(millis.statementTimeout, 2500)
      const ldapOptions = yield* ldapEnv({
        TETHER_LDAP_BIND_DN: "cn=app",
        TETHER_LDAP_PASSWORD: "s3cret",
        TETHER_LDAP_START_TLS: "yes",
        TETHER_LDAP_ALLOW_PLAINTEXT: "false"
      })
      assert.strictEqual(ldapOptions.startTls, true)
      assert.strictEqual(ldapOptions.allowPlaintext, false)
      assert.strictEqual(ldapOptions.bindDn, "cn=app")
    }))

  it.effect("a PostgreSQL endpoint error gives a postgres:// example, not an ldap:// one", () =>
    Effect.gen(function*() {
      const error = yield* Effect.flip(Effect.scoped(pg({ endpoints: [{ url: "nope" }] })))
      assert.include(error.message, "postgres://")
      assert.notInclude(error.message, "ldap://")
    }))

  it.effect("the error says the value given and what is allowed", () =>
    Effect.gen(function*() {
      const error = yield* Effect.flip(Effect.scoped(pg({ health: { interval: "banana" }, password: Redacted.make("s3cret") })))
      assert.include(error.message, `"banana"`)
      assert.include(error.message, "duration")
      assert.include(error.message, "health.interval")
    }))
})
