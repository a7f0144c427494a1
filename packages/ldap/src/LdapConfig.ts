/**
 * `LdapClient` configuration as an `effect/Schema` (for JSON or YAML files)
 * and from environment variables (`effect/Config`). TLS files (CA, client
 * certificate and key) are read when the configuration is loaded: a missing
 * or unreadable file is a typed error naming the setting.
 *
 * It runs past 400 lines because it documents every configuration key with its default and
 * environment variable: a quarter is doc comments, the rest the schema those docs describe.
 *
 * @example
 * ```ts
 * import { LdapClient, LdapConfig } from "@tether/ldap"
 * import { Effect, Layer } from "effect"
 *
 * // TETHER_LDAP_URLS=ldaps://ldap1:636,ldaps://ldap2:636 TETHER_LDAP_BIND_DN=… TETHER_LDAP_PASSWORD=… TETHER_LDAP_CA_FILE=/etc/ssl/ldap-ca.pem
 * const Live = Layer.unwrap(
 *   Effect.gen(function*() {
 *     const config = yield* LdapConfig.fromEnv // a Config is an Effect: yield it to read it
 *     const options = yield* LdapConfig.load(config) // reads the TLS files
 *     return LdapClient.layer(options)
 *   })
 * )
 * ```
 *
 * @since 0.1.0
 */
import { ServerSet, ServerSetConfig, Validation } from "@tether/core"
import { Config, ConfigProvider, Data, Effect, Redacted, Schema } from "effect"
import type { Scope } from "effect"
import * as fs from "node:fs/promises"
import type * as LdapClient from "./LdapClient.ts"
import * as Sasl from "./Sasl.ts"

const Millis = Schema.Number.check(Schema.isGreaterThanOrEqualTo(0))

/**
 * The shape of a configuration file's LDAP section, with the shared pool,
 * balancing, health, breaker and retry settings (`ServerSetConfig`).
 * Durations are milliseconds; the password is read as text and decoded
 * straight into `Redacted`. Endpoint URLs must not hold credentials
 * (`user:password@`, or an RFC 4516 `bindname` / `X-BINDPW` extension).
 *
 * @since 0.1.0
 * @category schemas
 */
export const LdapConfigSchema = Schema.Struct({
  ...ServerSetConfig.ServerSetConfigSchema.fields,
  name: Schema.optionalKey(Schema.String),
  /** URLs, or endpoint definitions (a weight, priority, role or tags: see `Endpoint`). */
  endpoints: Schema.Array(
    Schema.Union([
      Schema.String,
      Schema.Struct({
        url: Schema.String,
        id: Schema.optionalKey(Schema.String),
        tags: Schema.optionalKey(Schema.Record(Schema.String, Schema.String)),
        role: Schema.optionalKey(Schema.Literals(["primary", "replica", "any"])),
        weight: Schema.optionalKey(Schema.Number),
        priority: Schema.optionalKey(Schema.Number)
      })
    ])
  ).check(Schema.isMinLength(1)),
  bindDn: Schema.optionalKey(Schema.String),
  password: Schema.optionalKey(Schema.RedactedFromValue(Schema.String)),
  /** The service identity binds with SASL (`password` is its password; not with `bindDn`). */
  sasl: Schema.optionalKey(Schema.Struct({
    mechanism: Schema.Literals(["PLAIN", "SCRAM-SHA-1", "SCRAM-SHA-256", "EXTERNAL"]),
    user: Schema.optionalKey(Schema.String),
    authzId: Schema.optionalKey(Schema.String)
  })),
  startTls: Schema.optionalKey(Schema.Boolean),
  /** Accept passwords over plain ldap:// without StartTLS (otherwise logged at WARN). */
  allowPlaintext: Schema.optionalKey(Schema.Boolean),
  tls: Schema.optionalKey(Schema.Struct({
    caFile: Schema.optionalKey(Schema.String),
    certFile: Schema.optionalKey(Schema.String),
    keyFile: Schema.optionalKey(Schema.String),
    servername: Schema.optionalKey(Schema.String),
    /** Turning verification off must be explicit; it is logged as a warning. */
    rejectUnauthorized: Schema.optionalKey(Schema.Boolean)
  })),
  connectTimeoutMillis: Schema.optionalKey(Millis),
  timeoutMillis: Schema.optionalKey(Millis)
})

/**
 * The decoded (plain) configuration.
 *
 * @since 0.1.0
 * @category models
 */
export type LdapConfig = typeof LdapConfigSchema.Type

/**
 * The configuration is invalid or names a file that cannot be read.
 * `setting` names the culprit; the password is never shown.
 *
 * @since 0.1.0
 * @category errors
 */
export class InvalidLdapConfig extends Data.TaggedError("InvalidLdapConfig")<{
  readonly setting: string
  readonly problem: string
}> {
  override get message() {
    return `invalid LDAP configuration: ${this.setting}: ${this.problem}`
  }
}

const decodeUnknown = Schema.decodeUnknownEffect(LdapConfigSchema)

/**
 * Decodes a configuration (e.g. parsed JSON) and loads its TLS files.
 *
 * @since 0.1.0
 * @category decoding
 */
export const decode = (input: unknown): Effect.Effect<LdapClient.Options, InvalidLdapConfig> => {
  const record = typeof input === "object" && input !== null ? (input as Record<string, unknown>) : undefined
  const password = record?.["password"]
  if (password !== undefined && typeof password !== "string") {
    return Effect.fail(new InvalidLdapConfig({ setting: "password", problem: "must be a string" }))
  }
  // The password is checked apart, so that no decoding message can quote it.
  const checked = record !== undefined && "password" in record ? { ...record, password: "<redacted>" } : input
  return decodeUnknown(checked, { errors: "all", onExcessProperty: "error" }).pipe(
    Effect.mapError((error) => {
      // Reported by path, value and what is allowed: a misspelt key's value (it may be a password) is never quoted.
      const all = Validation.fromIssues(error.issue, checked, "LDAP configuration")
      const invalid = all[0]!
      const others = all.slice(1).map((i) => `; ${i.option}: ${i.reason}`).join("")
      return new InvalidLdapConfig({ setting: invalid.option, problem: `${invalid.reason}${others}` })
    }),
    Effect.flatMap((config) => load({ ...config, ...(password === undefined ? {} : { password: Redacted.make(password) }) }))
  )
}

/** Userinfo before the host (`ldap://user:pw@host`), or an RFC 4516 bind extension (`X-BINDPW`, `bindname`). */
const hasCredentials = (url: string): boolean =>
  /^[a-z][a-z0-9+.-]*:\/\/[^/?#]*@/i.test(url) || /\?.*\b(x-bindpw|bindname)\s*(=|%3d)/i.test(url)

/** The URL with any userinfo and everything after the host dropped: safe to print. */
const withoutCredentials = (url: string): string => {
  const match = /^([a-z][a-z0-9+.-]*:\/\/)(?:[^/?#]*@)?([^/?#]*)/i.exec(url)
  return match === null ? "<not a URL>" : `${match[1]}${match[2]}`
}

const readSetting = (setting: string, file: string | undefined) =>
  file === undefined ? Effect.succeed(undefined) : Effect.tryPromise({
    try: () => fs.readFile(file, "utf8"),
    catch: (cause) =>
      new InvalidLdapConfig({
        setting,
        problem: `cannot read ${file}: ${(cause as NodeJS.ErrnoException).code ?? String(cause)}`
      })
  })

/**
 * Turns a decoded configuration into `LdapClient.Options`, reading its TLS files.
 *
 * @since 0.1.0
 * @category decoding
 */
export const load = (config: LdapConfig): Effect.Effect<LdapClient.Options, InvalidLdapConfig> =>
  Effect.gen(function*() {
    if (config.bindDn !== undefined && config.password === undefined) {
      return yield* Effect.fail(
        new InvalidLdapConfig({
          setting: "password",
          problem: "bindDn is set but password is not: give both (or neither, for anonymous binds)"
        })
      )
    }
    const sasl = config.sasl
    if (sasl !== undefined) {
      const problem = config.bindDn !== undefined
        ? "sasl and bindDn are both set: the service identity binds one way (remove bindDn)"
        : sasl.mechanism === "EXTERNAL"
        ? config.password !== undefined ? "EXTERNAL takes no password (the TLS client certificate is the identity)" : undefined
        : sasl.user === undefined || sasl.user === ""
        ? `${sasl.mechanism} needs sasl.user (the SASL user name)`
        : config.password === undefined
        ? `${sasl.mechanism} needs a password`
        : undefined
      if (problem !== undefined) return yield* Effect.fail(new InvalidLdapConfig({ setting: "sasl", problem }))
    }
    for (const url of config.endpoints.map((e) => typeof e === "string" ? e : e.url)) {
      if (hasCredentials(url)) {
        return yield* Effect.fail(
          new InvalidLdapConfig({
            setting: "endpoints",
            problem: `"${withoutCredentials(url)}" holds credentials (user:password@, bindname or X-BINDPW); ` +
              `give them as bindDn and password (kept Redacted) instead`
          })
        )
      }
      if (!/^ldaps?:\/\/[^/:?#]/i.test(url)) {
        return yield* Effect.fail(
          new InvalidLdapConfig({ setting: "endpoints", problem: `"${url}" is not an ldap:// or ldaps:// URL` })
        )
      }
    }
    const ca = yield* readSetting("tls.caFile", config.tls?.caFile)
    const cert = yield* readSetting("tls.certFile", config.tls?.certFile)
    const key = yield* readSetting("tls.keyFile", config.tls?.keyFile)
    const tls = {
      ...(ca === undefined ? {} : { ca: [ca] }),
      ...(cert === undefined ? {} : { cert }),
      ...(key === undefined ? {} : { key }),
      ...(config.tls?.servername === undefined ? {} : { servername: config.tls.servername }),
      ...(config.tls?.rejectUnauthorized === undefined ? {} : { rejectUnauthorized: config.tls.rejectUnauthorized })
    }
    return {
      ...ServerSetConfig.toOptions(config),
      name: config.name,
      endpoints: config.endpoints,
      bindDn: config.bindDn,
      ...(sasl === undefined
        ? { password: config.password }
        : {
          sasl: sasl.mechanism === "EXTERNAL"
            ? Sasl.external({ authzId: sasl.authzId, label: "service" })
            : Sasl.credentials(sasl.mechanism, sasl.user!, config.password!, { authzId: sasl.authzId, label: "service" })
        }),
      startTls: config.startTls,
      allowPlaintext: config.allowPlaintext,
      tls,
      connectTimeout: config.connectTimeoutMillis,
      timeout: config.timeoutMillis
    }
  })

/** The environment as read: every variable optional, each checked by {@link parseEnv}. */
const envConfig = Config.all({
  urls: Config.option(Config.String("TETHER_LDAP_URLS")),
  bindDn: Config.option(Config.String("TETHER_LDAP_BIND_DN")),
  password: Config.option(Config.Redacted("TETHER_LDAP_PASSWORD")),
  startTls: Config.option(Config.String("TETHER_LDAP_START_TLS")),
  allowPlaintext: Config.option(Config.String("TETHER_LDAP_ALLOW_PLAINTEXT")),
  caFile: Config.option(Config.String("TETHER_LDAP_CA_FILE")),
  certFile: Config.option(Config.String("TETHER_LDAP_CERT_FILE")),
  keyFile: Config.option(Config.String("TETHER_LDAP_KEY_FILE")),
  saslMechanism: Config.option(Config.String("TETHER_LDAP_SASL_MECHANISM")),
  saslUser: Config.option(Config.String("TETHER_LDAP_SASL_USER"))
})

const MECHANISMS = ["PLAIN", "SCRAM-SHA-1", "SCRAM-SHA-256", "EXTERNAL"] as const
const TRUE = ["true", "yes", "on", "1", "y"]
const FALSE = ["false", "no", "off", "0", "n"]

/** A bad variable: named, with the value given (never a secret's) and what is allowed. */
const badVariable = (variable: string, value: string | undefined, allowed: string) =>
  new InvalidLdapConfig({
    setting: variable,
    problem: value === undefined
      ? `is not set; expected ${allowed}`
      : `got ${Validation.showValue(value, variable)}; expected ${allowed}`
  })

const parseEnv = (env: Config.Success<typeof envConfig>): Effect.Effect<LdapConfig, InvalidLdapConfig> =>
  Effect.suspend(() => {
    const some = <A>(o: { readonly _tag: "Some"; readonly value: A } | { readonly _tag: "None" }) =>
      o._tag === "Some" ? o.value : undefined
    const urlsText = some(env.urls)
    if (urlsText === undefined) {
      return Effect.fail(badVariable("TETHER_LDAP_URLS", undefined, "comma-separated ldap:// or ldaps:// URLs"))
    }
    const urls = urlsText.split(",").map((u) => u.trim()).filter((u) => u !== "")
    if (urls.length === 0) {
      return Effect.fail(
        new InvalidLdapConfig({ setting: "TETHER_LDAP_URLS", problem: "holds no URL; expected comma-separated ldap:// or ldaps:// URLs" })
      )
    }
    for (const url of urls) {
      if (hasCredentials(url)) {
        return Effect.fail(
          new InvalidLdapConfig({
            setting: "TETHER_LDAP_URLS",
            problem: `"${withoutCredentials(url)}" holds credentials; set TETHER_LDAP_BIND_DN and TETHER_LDAP_PASSWORD instead`
          })
        )
      }
      if (!/^ldaps?:\/\/[^/:?#]/i.test(url)) {
        return Effect.fail(
          new InvalidLdapConfig({
            setting: "TETHER_LDAP_URLS",
            problem: `"${withoutCredentials(url)}" is not an ldap:// or ldaps:// URL with a host`
          })
        )
      }
    }
    const flags: Record<string, boolean> = {}
    for (const [key, variable] of [["startTls", "TETHER_LDAP_START_TLS"], ["allowPlaintext", "TETHER_LDAP_ALLOW_PLAINTEXT"]] as const) {
      const text = some(env[key])
      if (text === undefined) continue
      const lower = text.trim().toLowerCase()
      if (!TRUE.includes(lower) && !FALSE.includes(lower)) {
        return Effect.fail(badVariable(variable, text, "true or false (also yes/no, on/off, 1/0)"))
      }
      flags[key] = TRUE.includes(lower)
    }
    const mechanism = some(env.saslMechanism)
    if (mechanism !== undefined && !(MECHANISMS as ReadonlyArray<string>).includes(mechanism)) {
      return Effect.fail(badVariable("TETHER_LDAP_SASL_MECHANISM", mechanism, `one of ${MECHANISMS.join(", ")}`))
    }
    const bindDn = some(env.bindDn)
    const password = some(env.password)
    if (bindDn !== undefined && password === undefined) {
      return Effect.fail(
        new InvalidLdapConfig({
          setting: "TETHER_LDAP_PASSWORD",
          problem: "is not set but TETHER_LDAP_BIND_DN is: set both (or neither, for anonymous binds)"
        })
      )
    }
    const caFile = some(env.caFile)
    const certFile = some(env.certFile)
    const keyFile = some(env.keyFile)
    const tls = {
      ...(caFile === undefined ? {} : { caFile }),
      ...(certFile === undefined ? {} : { certFile }),
      ...(keyFile === undefined ? {} : { keyFile })
    }
    const saslUser = some(env.saslUser)
    return Effect.succeed({
      endpoints: urls,
      ...(bindDn === undefined ? {} : { bindDn }),
      // Kept Redacted from the moment it is read.
      ...(password === undefined ? {} : { password }),
      ...(flags["startTls"] === undefined ? {} : { startTls: flags["startTls"] }),
      ...(flags["allowPlaintext"] === undefined ? {} : { allowPlaintext: flags["allowPlaintext"] }),
      ...(Object.keys(tls).length === 0 ? {} : { tls }),
      ...(mechanism === undefined
        ? {}
        : {
          sasl: {
            mechanism: mechanism as (typeof MECHANISMS)[number],
            ...(saslUser === undefined ? {} : { user: saslUser })
          }
        })
    })
  })

/**
 * From the environment: `TETHER_LDAP_URLS` (comma-separated), and optionally
 * `TETHER_LDAP_BIND_DN`, `TETHER_LDAP_PASSWORD` (read as `Redacted` and kept
 * so), `TETHER_LDAP_START_TLS`, `TETHER_LDAP_ALLOW_PLAINTEXT`,
 * `TETHER_LDAP_CA_FILE`, `TETHER_LDAP_CERT_FILE`, `TETHER_LDAP_KEY_FILE`,
 * `TETHER_LDAP_SASL_MECHANISM` (`PLAIN`, `SCRAM-SHA-1`, `SCRAM-SHA-256`,
 * `EXTERNAL`) with `TETHER_LDAP_SASL_USER`.
 * Pass the result to {@link load}, or use {@link loadEnv}.
 *
 * Every variable is checked as a configuration file is: a bad one fails
 * with a `ConfigError` whose message is the {@link InvalidLdapConfig}'s (and
 * whose `cause.cause` is it); {@link loadEnv} fails with the
 * `InvalidLdapConfig` itself.
 *
 * @since 0.1.0
 * @category config
 */
export const fromEnv: Config.Config<LdapConfig> = envConfig.pipe(
  Config.mapEffect((env) =>
    Effect.mapError(
      parseEnv(env),
      (error) => new Config.ConfigError(new ConfigProvider.SourceError({ message: error.message, cause: error }))
    )
  )
)

/**
 * From the environment (variables as {@link fromEnv}), loaded into
 * `LdapClient.Options`, as an `Effect` that fails with the same
 * {@link InvalidLdapConfig} as a bad configuration file: `setting` names the
 * variable, and the problem says the value given (never a password) and
 * what is allowed.
 *
 * @example
 * ```ts
 * import { LdapClient, LdapConfig } from "@tether/ldap"
 * import { Effect, Layer } from "effect"
 *
 * // TETHER_LDAP_START_TLS=maybe fails with InvalidLdapConfig naming TETHER_LDAP_START_TLS
 * const Live = Layer.unwrap(LdapConfig.loadEnv.pipe(Effect.map(LdapClient.layer)))
 * ```
 *
 * @since 0.2.0
 * @category config
 */
export const loadEnv: Effect.Effect<LdapClient.Options, InvalidLdapConfig> = envConfig.pipe(
  Effect.mapError((error) =>
    new InvalidLdapConfig({ setting: "(environment)", problem: `the environment could not be read: ${error.message}` })
  ),
  Effect.flatMap(parseEnv),
  Effect.flatMap(load)
)

/**
 * Options of {@link watch}: the poll interval, and the password when the file leaves it out.
 *
 * @since 0.1.0
 * @category models
 */
export type WatchOptions = ServerSet.WatchFileOptions

/**
 * Watches a JSON configuration file (an `LdapConfig`, or a file with an
 * `ldap` section) until the scope closes, and applies each change to the
 * running client through `client.reconfigure` (see `ServerSet.watchConfig`):
 * servers added, removed, re-weighted, pool limits, breaker thresholds,
 * strategy — each logged at INFO. Other settings (credentials, TLS) need a
 * restart. A bad file is logged as an `InvalidLdapConfig` and changes nothing.
 *
 * @example
 * ```ts
 * import { LdapClient, LdapConfig } from "@tether/ldap"
 * import { Effect } from "effect"
 *
 * const program = Effect.gen(function*() {
 *   const client = yield* LdapClient.LdapClient
 *   const watch = yield* LdapConfig.watch("/etc/app/ldap.json", client.reconfigure)
 *   yield* watch.reload // at once, e.g. on SIGHUP
 * })
 * ```
 *
 * @since 0.1.0
 * @category reconfiguration
 */
export const watch = (
  file: string,
  target: ServerSet.Reconfigure,
  options?: WatchOptions
): Effect.Effect<
  ServerSet.ConfigWatch<LdapClient.Options, InvalidLdapConfig>,
  InvalidLdapConfig | ServerSet.ApplyError,
  Scope.Scope
> =>
  ServerSet.watchJsonFile({
    ...options,
    file,
    section: "ldap",
    label: `LDAP configuration ${file}`,
    invalid: (problem) => new InvalidLdapConfig({ setting: "(file)", problem }),
    decode,
    toReconfiguration: (o) => ({ endpoints: o.endpoints, strategy: o.strategy, pool: o.pool, breaker: o.breaker }),
    target
  })
