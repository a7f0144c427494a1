/**
 * The schema of `PgClient.Options`, checked by `PgClient.make` before
 * anything is built: one `InvalidOptions` naming the option, the value given
 * and what is allowed.
 *
 * @internal
 */
import { Endpoint, ServerSetConfig, Validation } from "@tether/core"
import type { InvalidPoolOptions } from "@tether/core"
import { Effect, Redacted, Schema } from "effect"
import { SSL_MODES } from "./tls.ts"

const optional = Schema.optional

const PG_URL = "a URL like postgres://host:5432/db"

/** The resilience options PgOptions.Common has (no `hedge`: the clients do not hedge). */
const { hedge: _hedge, ...resilienceFields } = ServerSetConfig.ResilienceOptionsFields

/** `PgOptions.Common`. */
const commonFields = {
  name: optional(Schema.String.check(Schema.makeFilter((s) => s.length > 0 ? undefined : "a non-empty name"))),
  endpoints: Schema.Array(Schema.Unknown).annotate({ message: `an array of endpoints (${PG_URL}, or an endpoint object)` }).check(
    Schema.makeFilter((a) => a.length > 0 ? undefined : `at least one endpoint (${PG_URL})`)
  ),
  user: Schema.String.check(Schema.makeFilter((s) => s.length > 0 ? undefined : "a non-empty user name"))
    .annotate({ message: "a user name (a non-empty string)" }),
  password: optional(
    Validation.Opaque("a Redacted string (Redacted.make(...))", (u) => u === undefined || Redacted.isRedacted(u))
  ),
  database: optional(Schema.String),
  ssl: optional(Schema.Literals(SSL_MODES)),
  ca: optional(Schema.String),
  applicationName: optional(Schema.String),
  connectTimeout: optional(Validation.PositiveDurationInput),
  statementTimeout: optional(Validation.DurationInput),
  queryTimeout: optional(Validation.PositiveDurationInput),
  readFrom: optional(Schema.Literals(["replica-preferred", "replica-only", "any"])),
  cache: optional(Schema.Struct({
    capacity: optional(Validation.IntAtLeast(0)),
    ttl: optional(Validation.DurationInput)
  })),
  slowQueryThreshold: optional(Validation.DurationInput),
  ...resilienceFields
}

/** @internal */
export const PgOptionsSchema = Schema.Struct({
  ...commonFields,
  enforceReadOnly: optional(Schema.Boolean),
  multiplex: optional(Validation.IntAtLeast(1))
})

const aFunction = optional(Validation.Opaque("a function", (u) => u === undefined || typeof u === "function"))

/** PgSql's own options (what `PgClient.Options.sql` may hold). */
const sqlOwnFields = {
  pipeline: optional(Validation.IntAtLeast(1)),
  pgbouncer: optional(Schema.Literal("transaction")),
  listenEndpoints: optional(Schema.Array(Schema.Unknown).annotate({ message: `an array of endpoints (${PG_URL})` })),
  exclusivePool: commonFields.pool,
  readPool: commonFields.pool,
  transformResultNames: aFunction,
  transformQueryNames: aFunction,
  transformJson: optional(Schema.Boolean),
  spanAttributes: optional(Schema.Record(Schema.String, Schema.Unknown))
}

/** @internal */
export const PgSqlOptionsSchema = Schema.Struct({
  ...commonFields,
  ...sqlOwnFields
})

/** `PgClient.Options`: the shared options, PgClient's own, and `sql` (PgSql's own options, or `false`). */
const PgClientOptionsSchema = Schema.Struct({
  ...PgOptionsSchema.fields,
  sql: optional(
    Schema.Union([Schema.Literal(false), Schema.Struct(sqlOwnFields)])
      .annotate({ message: "false or an object of PgSql options" })
  )
})

const isPgUrl = (url: string) => /^postgres(?:ql)?:\/\/[^/?#]/i.test(url)

/**
 * Checks the options before anything reads them.
 *
 * @internal
 */
export const checkOptions = (options: unknown): Effect.Effect<void, InvalidPoolOptions> => {
  const given = typeof options === "object" && options !== null ? (options as { name?: unknown }).name : undefined
  return Effect.asVoid(
    Validation.validate(PgClientOptionsSchema, options, { component: `PgClient "${typeof given === "string" ? given : "pg"}"` })
  )
}

/**
 * Checks `PgSql.Options` before anything reads them.
 *
 * @internal
 */
export const checkSqlOptions = (options: unknown): Effect.Effect<void, InvalidPoolOptions> => {
  const given = typeof options === "object" && options !== null ? (options as { name?: unknown }).name : undefined
  return Effect.asVoid(
    Validation.validate(PgSqlOptionsSchema, options, { component: `PgSql "${typeof given === "string" ? given : "pg"}"` })
  )
}

/**
 * Checks that every endpoint is a `postgres://` (or `postgresql://`) URL with a host.
 *
 * @internal
 */
export const checkUrls = (endpoints: ReadonlyArray<Endpoint.Endpoint>): Effect.Effect<void, Endpoint.InvalidEndpoint> =>
  Effect.suspend(() => {
    const bad = endpoints.find((endpoint) => !isPgUrl(endpoint.url))
    return bad === undefined ? Effect.void : Effect.fail(
      new Endpoint.InvalidEndpoint({
        endpoint: Endpoint.redactUrl(bad.url),
        problems: [{ field: "url", message: `must be ${PG_URL} (a postgres:// or postgresql:// scheme and a host)` }]
      })
    )
  })

/**
 * An `InvalidEndpoint` as PostgreSQL users read it: the URL example it gives is a `postgres://` one.
 *
 * @internal
 */
export const forPostgres = (error: Endpoint.InvalidEndpoint): Endpoint.InvalidEndpoint =>
  new Endpoint.InvalidEndpoint({
    endpoint: error.endpoint,
    problems: error.problems.map((p) => ({ ...p, message: p.message.replaceAll("a URL like ldap://host:389", PG_URL) }))
  })

/** @internal */
export const PgDriverOptionsSchema = Schema.Struct({
  user: PgOptionsSchema.fields.user,
  password: PgOptionsSchema.fields.password,
  database: PgOptionsSchema.fields.database,
  ssl: PgOptionsSchema.fields.ssl,
  ca: PgOptionsSchema.fields.ca,
  connectTimeout: PgOptionsSchema.fields.connectTimeout,
  statementTimeout: PgOptionsSchema.fields.statementTimeout,
  probeTimeout: optional(Validation.PositiveDurationInput),
  applicationName: optional(Schema.String),
  readOnlySessions: optional(Schema.Boolean),
  warnUnverified: optional(Schema.Boolean)
})

/**
 * Checks `PgDriver.Options`: run by `ServerSet.make` through the driver's `checkOptions`.
 *
 * @internal
 */
export const checkDriverOptions = (options: unknown): Effect.Effect<void, InvalidPoolOptions> =>
  Effect.asVoid(Validation.validate(PgDriverOptionsSchema, options, { component: "PostgreSQL connection options" }))
