/**
 * `PgClient` configuration as an `effect/Schema` (for JSON or YAML files)
 * and from environment variables (`effect/Config`).
 *
 * @example
 * ```ts
 * import { PgClient, PgConfig } from "@tether/pg"
 * import { Effect, Layer } from "effect"
 *
 * // TETHER_PG_URLS=postgres://db1:5432/app,postgres://db2:5432/app TETHER_PG_USER=app TETHER_PG_PASSWORD=…
 * const Live = Layer.unwrap(
 *   Effect.gen(function*() {
 *     const options = yield* PgConfig.fromEnv // a Config is an Effect: yield it to read it
 *     return PgClient.layer(options)
 *   })
 * )
 * ```
 *
 * @since 0.1.0
 */
import { Endpoint, ServerSet, ServerSetConfig, Validation } from "@tether/core"
import { Config, ConfigProvider, Data, Duration, Effect, Redacted, Schema } from "effect"
import type { Scope } from "effect"
import { expandHostList } from "./internal/pgClient.ts"
import { SSL_MODES } from "./internal/tls.ts"
import type * as PgClient from "./PgClient.ts"

const Millis = Schema.Number.check(Schema.isGreaterThanOrEqualTo(0))

/**
 * The shape of a configuration file's PostgreSQL section, with the shared
 * pool, balancing, health, breaker and retry settings (`ServerSetConfig`).
 * Durations are milliseconds. The password is read as text and kept
 * `Redacted` from then on.
 *
 * @since 0.1.0
 * @category schemas
 */
export const PgConfigSchema = Schema.Struct({
  ...ServerSetConfig.ServerSetConfigSchema.fields,
  name: Schema.optionalKey(Schema.String),
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
  user: Schema.String.check(Schema.isNonEmpty()),
  password: Schema.optionalKey(Schema.String),
  database: Schema.optionalKey(Schema.String),
  ssl: Schema.optionalKey(Schema.Literals(SSL_MODES)),
  ca: Schema.optionalKey(Schema.String),
  connectTimeoutMillis: Schema.optionalKey(Millis),
  statementTimeoutMillis: Schema.optionalKey(Millis),
  queryTimeoutMillis: Schema.optionalKey(Millis),
  readFrom: Schema.optionalKey(Schema.Literals(["replica-preferred", "replica-only", "any"])),
  multiplex: Schema.optionalKey(Schema.Int.check(Schema.isGreaterThanOrEqualTo(1))),
  slowQueryThresholdMillis: Schema.optionalKey(Millis)
})

/**
 * The decoded (plain) configuration.
 *
 * @since 0.1.0
 * @category models
 */
export type PgConfig = typeof PgConfigSchema.Type

/**
 * The configuration is invalid: `problems` names each bad setting. It never
 * shows the password.
 *
 * @since 0.1.0
 * @category errors
 */
export class InvalidPgConfig extends Data.TaggedError("InvalidPgConfig")<{
  readonly problems: string
  /** The path of the bad setting (e.g. `pool.max`, `passwd`), when one is at fault. */
  readonly option?: string | undefined
}> {
  override get message() {
    return `invalid PostgreSQL configuration: ${this.problems}`
  }
}

const decodeUnknown = Schema.decodeUnknownEffect(PgConfigSchema)

/**
 * Decodes a configuration (e.g. parsed JSON) into `PgClient.Options`.
 *
 * @since 0.1.0
 * @category decoding
 */
export const decode = (input: unknown): Effect.Effect<PgClient.Options, InvalidPgConfig> => {
  // The password is checked apart, so that no decoding message can quote it.
  const record = typeof input === "object" && input !== null ? (input as Record<string, unknown>) : undefined
  const password = record?.["password"]
  const checked = record !== undefined && "password" in record ? { ...record, password: "<redacted>" } : input
  if (password !== undefined && typeof password !== "string") {
    return Effect.fail(new InvalidPgConfig({ option: "password", problems: "password: must be a string" }))
  }
  // A URL with a password in it is refused before decoding, so no message can quote it either.
  const urls = Array.isArray(record?.["endpoints"])
    ? (record["endpoints"] as ReadonlyArray<unknown>).map((e, i) =>
      [i, typeof e === "string" ? e : typeof e === "object" && e !== null ? (e as { url?: unknown }).url : undefined] as const
    )
    : []
  for (const [i, url] of urls) {
    if (typeof url === "string" && Endpoint.splitCredentials(url).url !== url) {
      return Effect.fail(
        new InvalidPgConfig({
          option: `endpoints.${i}`,
          problems: `endpoints[${i}]: the URL ${Endpoint.redactUrl(url)} holds credentials: ` +
            "remove them and set user and password instead"
        })
      )
    }
  }
  return decodeUnknown(checked, { errors: "all", onExcessProperty: "error" }).pipe(
    Effect.mapError((error) => {
      // Reported by path, value and what is allowed: a misspelt key's value (it may be a password) is never quoted.
      const all = Validation.fromIssues(error.issue, checked, "PostgreSQL configuration")
      const invalid = all[0]!
      const problems = all.map((i) => `${i.option}: ${i.reason}`).join("; ")
      return new InvalidPgConfig({ option: invalid.option, problems })
    }),
    Effect.map((config) => toOptions({ ...config, ...(password === undefined ? {} : { password }) }))
  )
}

/**
 * Turns a decoded configuration into `PgClient.Options`.
 *
 * @since 0.1.0
 * @category decoding
 */
export const toOptions = (config: PgConfig): PgClient.Options => ({
  ...ServerSetConfig.toOptions(config),
  name: config.name,
  endpoints: config.endpoints,
  user: config.user,
  password: config.password === undefined ? undefined : Redacted.make(config.password),
  database: config.database,
  ssl: config.ssl,
  ca: config.ca,
  connectTimeout: config.connectTimeoutMillis,
  statementTimeout: config.statementTimeoutMillis,
  queryTimeout: config.queryTimeoutMillis,
  readFrom: config.readFrom,
  multiplex: config.multiplex,
  slowQueryThreshold: config.slowQueryThresholdMillis
})

/** The environment as read: every variable optional, each checked by {@link parseEnv}. */
const envConfig = Config.all({
  urls: Config.option(Config.Redacted("TETHER_PG_URLS")),
  user: Config.option(Config.String("TETHER_PG_USER")),
  password: Config.option(Config.Redacted("TETHER_PG_PASSWORD")),
  database: Config.option(Config.String("TETHER_PG_DATABASE")),
  ssl: Config.option(Config.String("TETHER_PG_SSL")),
  readFrom: Config.option(Config.String("TETHER_PG_READ_FROM")),
  multiplex: Config.option(Config.String("TETHER_PG_MULTIPLEX")),
  statementTimeout: Config.option(Config.String("TETHER_PG_STATEMENT_TIMEOUT"))
})

const READ_FROM = ["replica-preferred", "replica-only", "any"] as const

const some = <A>(o: { readonly _tag: "Some"; readonly value: A } | { readonly _tag: "None" }): A | undefined =>
  o._tag === "Some" ? o.value : undefined

/** A bad variable: named, with the value given (never a secret's) and what is allowed. */
const badVariable = (variable: string, value: string | undefined, allowed: string) =>
  new InvalidPgConfig({
    option: variable,
    problems: value === undefined
      ? `${variable}: is not set; expected ${allowed}`
      : `${variable}: got ${Validation.showValue(value, variable)}; expected ${allowed}`
  })

/** A duration variable: milliseconds, or anything `Duration` reads ("5 seconds"); never negative. */
const envDuration = (variable: string, text: string | undefined): number | undefined | InvalidPgConfig => {
  if (text === undefined) return undefined
  const trimmed = text.trim()
  const exit = Schema.decodeUnknownExit(Validation.DurationInput)(/^\d+(\.\d+)?$/.test(trimmed) ? Number(trimmed) : trimmed)
  if (exit._tag === "Failure") {
    return badVariable(variable, text, `a duration such as 5000 (milliseconds) or "5 seconds", not negative`)
  }
  return Duration.toMillis(Duration.fromInputUnsafe(exit.value))
}

const parseEnv = (env: Config.Success<typeof envConfig>): Effect.Effect<PgClient.Options, InvalidPgConfig> =>
  Effect.suspend(() => {
    const urls = some(env.urls)
    if (urls === undefined) return Effect.fail(badVariable("TETHER_PG_URLS", undefined, "comma-separated postgres:// URLs"))
    const split = Redacted.value(urls).split(",").map((url) => url.trim()).filter((url) => url !== "")
      .map(Endpoint.splitCredentials)
    if (split.length === 0) {
      return Effect.fail(
        new InvalidPgConfig({
          option: "TETHER_PG_URLS",
          problems: "TETHER_PG_URLS: holds no URL; expected comma-separated postgres:// URLs"
        })
      )
    }
    const notPg = split.find((s) => !/^postgres(?:ql)?:\/\/[^/?#]/i.test(s.url))
    if (notPg !== undefined) {
      return Effect.fail(
        new InvalidPgConfig({
          option: "TETHER_PG_URLS",
          problems: `TETHER_PG_URLS: ${Endpoint.redactUrl(notPg.url)} is not a postgres:// URL; ` +
            "expected comma-separated URLs like postgres://host:5432/db"
        })
      )
    }
    const user = some(env.user)
    if (user === undefined || user.trim() === "") {
      return Effect.fail(badVariable("TETHER_PG_USER", user, "a user name (a non-empty string)"))
    }
    const ssl = some(env.ssl)
    if (ssl !== undefined && !(SSL_MODES as ReadonlyArray<string>).includes(ssl)) {
      return Effect.fail(badVariable("TETHER_PG_SSL", ssl, `one of ${SSL_MODES.join(", ")}`))
    }
    const readFrom = some(env.readFrom)
    if (readFrom !== undefined && !(READ_FROM as ReadonlyArray<string>).includes(readFrom)) {
      return Effect.fail(badVariable("TETHER_PG_READ_FROM", readFrom, `one of ${READ_FROM.join(", ")}`))
    }
    const multiplexText = some(env.multiplex)
    const multiplex = multiplexText === undefined ? undefined : Number(multiplexText.trim())
    if (
      multiplexText !== undefined &&
      (multiplexText.trim() === "" || !Number.isInteger(multiplex) || (multiplex as number) < 1)
    ) {
      return Effect.fail(badVariable("TETHER_PG_MULTIPLEX", multiplexText, "an integer ≥ 1"))
    }
    const statementTimeout = envDuration("TETHER_PG_STATEMENT_TIMEOUT", some(env.statementTimeout))
    if (statementTimeout instanceof InvalidPgConfig) return Effect.fail(statementTimeout)
    const password = some(env.password)
    return Effect.succeed({
      endpoints: split.map((s) => s.url),
      user,
      password: password ?? split.find((s) => s.password !== undefined)?.password,
      database: some(env.database),
      ssl: ssl as PgClient.Options["ssl"],
      readFrom: readFrom as PgClient.Options["readFrom"],
      multiplex,
      statementTimeout
    })
  })

/** A variable that could not be read at all (the source failed): no value to show. */
const unreadable = (error: Config.ConfigError) =>
  new InvalidPgConfig({ option: "(environment)", problems: `the environment could not be read: ${error.message}` })

/**
 * From the environment, as an `Effect` that fails with the same
 * {@link InvalidPgConfig} as a bad configuration file: `option` names the
 * variable, and the problem says the value given (never a password) and
 * what is allowed. Variables as {@link fromEnv}.
 *
 * @example
 * ```ts
 * import { PgClient, PgConfig } from "@tether/pg"
 * import { Effect, Layer } from "effect"
 *
 * // TETHER_PG_MULTIPLEX=0 fails with InvalidPgConfig: "TETHER_PG_MULTIPLEX: got "0"; expected an integer ≥ 1"
 * const Live = Layer.unwrap(PgConfig.loadEnv.pipe(Effect.map(PgClient.layer)))
 * ```
 *
 * @since 0.2.0
 * @category config
 */
export const loadEnv: Effect.Effect<PgClient.Options, InvalidPgConfig> = Effect.flatMap(
  Effect.mapError(envConfig, unreadable),
  parseEnv
)

/**
 * From the environment: `TETHER_PG_URLS` (comma-separated), `TETHER_PG_USER`,
 * `TETHER_PG_PASSWORD`, and optionally `TETHER_PG_DATABASE`, `TETHER_PG_SSL`,
 * `TETHER_PG_READ_FROM`, `TETHER_PG_MULTIPLEX` (an integer ≥ 1),
 * `TETHER_PG_STATEMENT_TIMEOUT` (a duration, e.g. `5 seconds`, or
 * milliseconds). Roles are detected by the health probes.
 *
 * `TETHER_PG_URLS` is read as a secret: a password in a URL
 * (`postgres://app:pw@db1/app`, `?password=`) is split off at once, kept
 * `Redacted`, and used when `TETHER_PG_PASSWORD` is not set; the endpoints
 * get the URLs without credentials.
 *
 * Every variable is checked as a configuration file is: a bad one fails
 * with a `ConfigError` whose message is the {@link InvalidPgConfig}'s (and
 * whose `cause.cause` is it); {@link loadEnv} fails with the
 * `InvalidPgConfig` itself.
 *
 * @since 0.1.0
 * @category config
 */
export const fromEnv: Config.Config<PgClient.Options> = envConfig.pipe(
  Config.mapEffect((env) =>
    Effect.mapError(
      parseEnv(env),
      (error) => new Config.ConfigError(new ConfigProvider.SourceError({ message: error.message, cause: error }))
    )
  )
)

/**
 * Options of {@link watch}: the poll interval, and the password when the file leaves it out.
 *
 * @since 0.1.0
 * @category models
 */
export type WatchOptions = ServerSet.WatchFileOptions

/**
 * Watches a JSON configuration file (a `PgConfig`, or a file with a `pg`
 * section) until the scope closes, and applies each change to the running
 * client through `client.reconfigure` (see `ServerSet.watchConfig`): servers
 * added, removed, re-weighted, pool limits, breaker thresholds, strategy —
 * each logged at INFO. Other settings (user, password, TLS, database) need a
 * restart. A bad file is logged as an `InvalidPgConfig` and changes nothing.
 *
 * @example
 * ```ts
 * import { PgClient, PgConfig } from "@tether/pg"
 * import { Effect, Redacted, SubscriptionRef } from "effect"
 *
 * const program = Effect.gen(function*() {
 *   const client = yield* PgClient.PgClient
 *   const watch = yield* PgConfig.watch("/etc/app/pg.json", client.reconfigure, {
 *     interval: "2 seconds",
 *     password: Redacted.make(process.env["PGPASSWORD"] ?? "")
 *   })
 *   const current = yield* SubscriptionRef.get(watch.config) // the last configuration applied
 *   console.log(current.endpoints)
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
  ServerSet.ConfigWatch<PgClient.Options, InvalidPgConfig>,
  InvalidPgConfig | ServerSet.ApplyError,
  Scope.Scope
> =>
  ServerSet.watchJsonFile({
    ...options,
    file,
    section: "pg",
    label: `PostgreSQL configuration ${file}`,
    invalid: (problem) => new InvalidPgConfig({ option: "(file)", problems: problem }),
    decode,
    toReconfiguration: (o) => ({
      // As the client expands them: a host list is one endpoint per host.
      endpoints: o.endpoints.flatMap((e): ReadonlyArray<Endpoint.EndpointInput | string> =>
        typeof e === "string" ? expandHostList(e) : [e]
      ),
      strategy: o.strategy,
      pool: o.pool,
      breaker: o.breaker
    }),
    target
  })
