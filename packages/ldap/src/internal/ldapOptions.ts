/**
 * The schemas of `LdapClient.Options` and `LdapDriver.Options`: one
 * `InvalidOptions` (an `InvalidPoolOptions`) naming the option, the value
 * given and what is allowed. `LdapDriver.make` hands {@link checkDriverOptions}
 * to `ServerSet.make` (the driver's `checkOptions`), which runs it before it
 * builds anything, so `LdapClient.make` refuses bad connection settings; the
 * set's own options are checked by `ServerSet.make` itself.
 * {@link checkOptions} checks a whole `LdapClient.Options` at once.
 *
 * @internal
 */
import { ServerSetConfig, Validation } from "@tether/core"
import type { InvalidPoolOptions } from "@tether/core"
import { Effect, Redacted, Schema } from "effect"

const optional = Schema.optional
const isObject = (u: unknown) => typeof u === "object" && u !== null

/** The resilience options LdapClient takes (no `hedge`: the client does not hedge). */
const { hedge: _hedge, ...resilienceFields } = ServerSetConfig.ResilienceOptionsFields

const Sasl = optional(
  Validation.Opaque("SASL credentials (Sasl.external(), Sasl.scramSha256(...), …)", (u) => u === undefined || isObject(u))
)

/** @internal */
export const LdapOptionsSchema = Schema.Struct({
  name: optional(Schema.String.check(Schema.makeFilter((s) => s.length > 0 ? undefined : "a non-empty name"))),
  endpoints: Schema.Array(Schema.Unknown).annotate({ message: "an array of endpoints (URLs like ldap://host:389, or endpoint objects)" }).check(
    Schema.makeFilter((a) => a.length > 0 ? undefined : "at least one endpoint (a URL like ldap://host:389)")
  ),
  bindDn: optional(Schema.String.check(Schema.makeFilter((s) => s.length > 0 ? undefined : "a non-empty DN"))),
  password: optional(
    Validation.Opaque("a Redacted string (Redacted.make(...))", (u) => u === undefined || Redacted.isRedacted(u))
  ),
  sasl: Sasl,
  startTls: optional(Schema.Boolean),
  allowPlaintext: optional(Schema.Boolean),
  tls: optional(Validation.Opaque("an object of TLS options (tls.ConnectionOptions)", (u) => u === undefined || isObject(u))),
  connectTimeout: optional(Validation.PositiveDurationInput),
  timeout: optional(Validation.PositiveDurationInput),
  pipeline: optional(
    Schema.Union([Schema.Literal(false), Validation.IntAtLeast(1)]).annotate({ message: "false or an integer ≥ 1" })
  ),
  binaryAttributes: optional(Schema.Array(Schema.String).annotate({ message: "an array of attribute type names" })),
  readSchema: optional(Schema.Boolean),
  ...resilienceFields
})

/**
 * Checks `LdapClient.Options`, including the rule that `bindDn` needs a
 * `password` (a bind with a DN and no password is an unauthenticated bind,
 * which servers refuse or, worse, accept as anonymous).
 *
 * @internal
 */
export const checkOptions = (options: unknown): Effect.Effect<void, InvalidPoolOptions> => {
  const record = isObject(options) ? (options as { name?: unknown }) : undefined
  return checkWith(LdapOptionsSchema, options, `LdapClient "${typeof record?.name === "string" ? record.name : "ldap"}"`)
}

const checkWith = (
  schema: Schema.ConstraintDecoder<unknown>,
  options: unknown,
  component: string
): Effect.Effect<void, InvalidPoolOptions> => {
  const record = isObject(options) ? (options as { bindDn?: unknown; password?: unknown; sasl?: unknown }) : undefined
  return Effect.andThen(
    Validation.validate(schema, options, { component }),
    (): Effect.Effect<void, InvalidPoolOptions> =>
      record?.sasl !== undefined && (record.bindDn !== undefined || record.password !== undefined)
        ? Effect.fail(
          new Validation.InvalidOptions({
            component,
            option: "sasl",
            value: "(SASL credentials)",
            allowed: "either sasl or bindDn/password for the default identity, not both"
          })
        )
        : record?.bindDn !== undefined && record.password === undefined
        ? Effect.fail(
          new Validation.InvalidOptions({
            component,
            option: "password",
            value: undefined,
            allowed: "a Redacted password whenever bindDn is set (or neither, for anonymous binds)"
          })
        )
        : Effect.void
  )
}

const driverFields = {
  bindDn: LdapOptionsSchema.fields.bindDn,
  password: LdapOptionsSchema.fields.password,
  sasl: Sasl,
  startTls: LdapOptionsSchema.fields.startTls,
  allowPlaintext: LdapOptionsSchema.fields.allowPlaintext,
  tls: LdapOptionsSchema.fields.tls,
  connectTimeout: LdapOptionsSchema.fields.connectTimeout,
  timeout: LdapOptionsSchema.fields.timeout
}

/** @internal */
export const LdapDriverOptionsSchema = Schema.Struct(driverFields)

/**
 * Checks `LdapDriver.Options` (the connection settings `LdapClient.make`
 * passes on): run by `ServerSet.make` through the driver's `checkOptions`.
 *
 * @internal
 */
export const checkDriverOptions = (options: unknown): Effect.Effect<void, InvalidPoolOptions> =>
  checkWith(LdapDriverOptionsSchema, options, "LDAP connection options")
