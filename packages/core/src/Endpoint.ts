/**
 * One server that Tether may connect to: its URL, its weight and priority for
 * the balancer, its declared role, TLS settings and free-form tags.
 *
 * An endpoint holds no secrets: credentials belong to identities, so a URL
 * with a user name or password in it (`postgres://u:pw@host`, or a password
 * parameter such as `?password=`, `?sslpassword=` or LDAP's `X-BINDPW`) is
 * rejected with {@link InvalidEndpoint}, whose message shows the URL with
 * the secret masked (`postgres://***@host`, `?password=***`). To accept such
 * URLs from a source you do not control (an environment variable), split the
 * secret off first with {@link splitCredentials}: it comes back `Redacted`.
 *
 * It runs past 400 lines because it documents the endpoint model (URLs, roles, weights,
 * priorities, host lists) with an example per constructor: a third of it is doc comments.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { Endpoint } from "@tether/core"
 *
 * const program = Effect.gen(function*() {
 *   const primary = yield* Endpoint.decode({ url: "ldap://ldap1.example.com:389", priority: 0 })
 *   const backup = yield* Endpoint.decode("ldap://ldap2.example.com:389")
 *   return [primary, backup]
 * })
 * ```
 *
 * @since 0.1.0
 */
import * as Data from "effect/Data"
import * as Effect from "effect/Effect"
import * as Schema from "effect/Schema"
import * as SchemaGetter from "effect/SchemaGetter"
import * as SchemaIssue from "effect/SchemaIssue"
import * as SchemaTransformation from "effect/SchemaTransformation"
import * as Redacted from "effect/Redacted"
import { truncate } from "./internal/format.ts"

/**
 * The identifier of an endpoint, unique within a server set. Derived from the
 * URL when not given (see {@link deriveId}).
 *
 * @since 0.1.0
 * @category models
 */
export type EndpointId = string

/**
 * What a server is declared to be. Writes only go to `primary` and `any`
 * endpoints; reads may go anywhere.
 *
 * @since 0.1.0
 * @category models
 */
export type Role = "primary" | "replica" | "any"

/**
 * Whether an endpoint with this role may receive writes.
 *
 * @since 0.1.0
 * @category predicates
 */
export const acceptsWrites = (role: Role): boolean => role !== "replica"

const ROLE_MESSAGE = `must be "primary", "replica" or "any"`
const URL_MESSAGE = "must be a URL like ldap://host:389"

/**
 * Schema of {@link Role}.
 *
 * @since 0.1.0
 * @category schemas
 */
export const Role: Schema.Codec<Role> = Schema.Literals(["primary", "replica", "any"]).annotate({
  message: ROLE_MESSAGE
})

const string = (what: string) => Schema.String.annotate({ message: `must be ${what}` })
const boolean = Schema.Boolean.annotate({ message: "must be true or false" })
const int = (message: string) => Schema.Number.annotate({ message }).check(Schema.isInt({ message }))

/**
 * An optional field (absent or `undefined`) that decodes to `value` when
 * missing, and reports a bad value with `message` (the stock
 * `withDecodingDefault` reports "Expected X | undefined" instead).
 */
const withDefault = <A>(schema: Schema.Codec<A>, value: A, message: string) =>
  Schema.UndefinedOr(schema).annotate({ message }).pipe(
    Schema.optionalKey,
    Schema.decodeTo(Schema.toType(schema), {
      decode: SchemaGetter.withDefault(Effect.succeed(value)),
      encode: SchemaGetter.passthrough()
    })
  )

/**
 * TLS settings of an endpoint.
 *
 * - `ca`: the CA certificate(s) to trust, as PEM text or a file path (the
 *   driver reads the file).
 * - `rejectUnauthorized`: verify the server certificate (default `true`).
 * - `servername`: the name to verify the certificate against (SNI), when it
 *   differs from the URL's host.
 *
 * @since 0.1.0
 * @category schemas
 */
export const Tls = Schema.Struct({
  ca: Schema.optionalKey(string("PEM text or a file path")),
  rejectUnauthorized: withDefault(boolean, true, "must be true or false"),
  servername: Schema.optionalKey(string("a host name"))
}).annotate({ message: "must be an object like { ca: \"/etc/ssl/ca.pem\" }" })

/**
 * Decoded TLS settings.
 *
 * @since 0.1.0
 * @category models
 */
export type Tls = typeof Tls.Type

/** A query parameter (or LDAP URL extension) that carries a password: its name and `=`. */
const PASSWORD_PARAM = /([?&;,]!?(?:password|passwd|pass|pwd|sslpassword|bindpw|x-bindpw)=)([^&;,#?]*)/gi

/**
 * A URL as it may be shown: the user-info part (`user:password@`) becomes
 * `***@` and the value of every password parameter (`password`, `pass`,
 * `pwd`, `sslpassword`, `bindpw`, `X-BINDPW`) becomes `***`.
 *
 * @example
 * ```ts
 * import { Endpoint } from "@tether/core"
 *
 * Endpoint.redactUrl("postgres://app:s3cret@db1:5432/app?sslmode=require&password=s3cret")
 * // "postgres://***@db1:5432/app?sslmode=require&password=***"
 * ```
 *
 * @since 0.1.0
 * @category formatting
 */
export const redactUrl = (url: string): string =>
  url.replace(/^([a-z][a-z0-9+.-]*:\/\/)[^@/?#]*@/i, "$1***@").replace(PASSWORD_PARAM, "$1***")

const hasPasswordParam = (url: string): boolean => {
  PASSWORD_PARAM.lastIndex = 0
  const found = PASSWORD_PARAM.test(url)
  PASSWORD_PARAM.lastIndex = 0
  return found
}

/**
 * Splits the credentials off a URL: the URL without its user-info part and
 * password parameters, the user name it held, and the password, `Redacted`
 * from here on. For configuration sources where a URL may carry a password
 * (e.g. `DATABASE_URL`-style environment variables); {@link decode} itself
 * rejects such URLs.
 *
 * @example
 * ```ts
 * import { Endpoint } from "@tether/core"
 *
 * const { url, user, password } = Endpoint.splitCredentials("postgres://app:s3cret@db1:5432/app")
 * // url: "postgres://db1:5432/app", user: "app", password: <redacted>
 * ```
 *
 * @since 0.1.0
 * @category decoding
 */
export const splitCredentials = (url: string): {
  readonly url: string
  readonly user: string | undefined
  readonly password: Redacted.Redacted<string> | undefined
} => {
  let user: string | undefined
  let password: string | undefined
  let rest = url
  const userInfo = /^([a-z][a-z0-9+.-]*:\/\/)([^@/?#]*)@/i.exec(url)
  if (userInfo !== null) {
    const [name, ...secret] = userInfo[2]!.split(":")
    user = name === "" ? undefined : safeDecode(name!)
    if (secret.length > 0) password = safeDecode(secret.join(":"))
    rest = userInfo[1]! + url.slice(userInfo[0].length)
  }
  rest = rest.replace(PASSWORD_PARAM, (_match, name: string, value: string) => {
    password ??= safeDecode(value)
    // Keep the separator a following parameter needs.
    return name.startsWith("?") ? "?" : ""
  }).replace(/\?(&|$)/, (_m, next: string) => (next === "&" ? "?" : ""))
  return { url: rest, user, password: password === undefined ? undefined : Redacted.make(password) }
}

const safeDecode = (text: string): string => {
  try {
    return decodeURIComponent(text)
  } catch {
    return text
  }
}

const checkUrl = (url: string): string | undefined => {
  if (!/^[a-z][a-z0-9+.-]*:\/\//i.test(url)) return URL_MESSAGE
  // Credentials first, on the text: a URL that does not parse (a host list) may still hold them.
  if (/^[a-z][a-z0-9+.-]*:\/\/[^@/?#]*@/i.test(url)) {
    return "must not contain credentials: remove the user:password@ part and declare an identity instead"
  }
  if (hasPasswordParam(url)) {
    return "must not contain credentials: remove the password parameter and declare an identity " +
      "(or the client's password option) instead"
  }
  let parsed: URL
  try {
    parsed = new URL(url)
  } catch {
    return URL_MESSAGE
  }
  if (parsed.username !== "" || parsed.password !== "") {
    return "must not contain credentials: remove the user:password@ part and declare an identity instead"
  }
  return undefined
}

const Url = string("a URL like ldap://host:389").check(Schema.makeFilter(checkUrl))

const Id = string("a non-empty string").check(Schema.isMinLength(1, { message: "must be a non-empty string" }))
const WEIGHT_MESSAGE = "must be a positive integer"
const PRIORITY_MESSAGE = "must be an integer (lower is preferred)"
const TAGS_MESSAGE = "must be an object of strings"
const Weight = int(WEIGHT_MESSAGE).check(Schema.isGreaterThan(0, { message: WEIGHT_MESSAGE }))
const Priority = int(PRIORITY_MESSAGE)
const Tags: Schema.Codec<{ readonly [key: string]: string }> = Schema.Record(
  Schema.String,
  string("a string (tag values are strings)")
).annotate({ message: TAGS_MESSAGE })

const EncodedFields = {
  id: Schema.optionalKey(Id),
  url: Url.pipe(Schema.annotateKey({ messageMissingKey: "is required (a URL like ldap://host:389)" })),
  weight: withDefault(Weight, 1, WEIGHT_MESSAGE),
  priority: withDefault(Priority, 0, PRIORITY_MESSAGE),
  role: withDefault(Role, "any", ROLE_MESSAGE),
  tls: Schema.optionalKey(Tls),
  tags: withDefault(Tags, {}, TAGS_MESSAGE)
}

const Decoded = Schema.toType(Schema.Struct({
  id: Id,
  url: Url,
  weight: Weight,
  priority: Priority,
  role: Role,
  tls: Schema.optionalKey(Schema.toType(Tls)),
  tags: Tags
}))

/**
 * A decoded endpoint: every default is filled in and the id is set.
 *
 * @since 0.1.0
 * @category models
 */
export interface Endpoint {
  readonly id: EndpointId
  readonly url: string
  /** Share of the traffic under weighted strategies; a positive integer (default 1). */
  readonly weight: number
  /** Lower is preferred by the priority strategy (default 0). */
  readonly priority: number
  readonly role: Role
  readonly tls?: Tls
  readonly tags: { readonly [key: string]: string }
}

/**
 * Derives an endpoint id from its URL: scheme, host and port, plus the path
 * when there is one (`ldap://ldap1:389`, `postgres://db1:5432/app`). When the
 * URL has no host (a Unix socket given in the query string), the query is
 * kept so that different sockets get different ids. Credentials never appear.
 *
 * @since 0.1.0
 * @category constructors
 */
export const deriveId = (url: string): EndpointId => {
  const parsed = new URL(url)
  const path = parsed.pathname === "/" ? "" : parsed.pathname
  return parsed.host === ""
    ? `${parsed.protocol}//${path}${parsed.search}`
    : `${parsed.protocol}//${parsed.host}${path}`
}

/**
 * Schema of an endpoint. Encoded, only `url` is required; decoding fills in
 * `weight` (1), `priority` (0), `role` (`"any"`), `tags` (`{}`),
 * `tls.rejectUnauthorized` (`true`) and the id (see {@link deriveId}).
 *
 * @since 0.1.0
 * @category schemas
 */
export const Endpoint: Schema.Codec<Endpoint, EndpointInput> = Schema.Struct(EncodedFields)
  .annotate({ message: "must be a URL string or an object like { url: \"ldap://host:389\" }" })
  .pipe(
    Schema.decodeTo(
      Decoded,
      SchemaTransformation.transform({
        decode: (input) => ({ ...input, id: input.id ?? deriveId(input.url) }),
        encode: (endpoint) => endpoint
      })
    )
  )

/**
 * What {@link decode} accepts for one endpoint (besides a bare URL string).
 *
 * @since 0.1.0
 * @category models
 */
export interface EndpointInput {
  readonly id?: string
  readonly url: string
  readonly weight?: number | undefined
  readonly priority?: number | undefined
  readonly role?: Role | undefined
  readonly tls?: {
    readonly ca?: string
    readonly rejectUnauthorized?: boolean | undefined
    readonly servername?: string
  }
  readonly tags?: { readonly [key: string]: string } | undefined
}

/**
 * One problem found in an endpoint definition: the field (a dotted path,
 * empty for the whole value) and what is wrong with it.
 *
 * @since 0.1.0
 * @category models
 */
export interface Problem {
  readonly field: string
  readonly message: string
}

/**
 * An endpoint definition could not be decoded. The message names the
 * endpoint, each bad field and what it must be, e.g.
 * `endpoint "ldap//x": url must be a URL like ldap://host:389`.
 *
 * @since 0.1.0
 * @category errors
 */
export class InvalidEndpoint extends Data.TaggedError("InvalidEndpoint")<{
  /** The endpoint as the user wrote it (its URL, id or position), credentials redacted. */
  readonly endpoint: string
  readonly problems: ReadonlyArray<Problem>
}> {
  override get message(): string {
    return `endpoint ${JSON.stringify(this.endpoint)}: ${
      this.problems.map((p) => (p.field === "" ? p.message : `${p.field} ${p.message}`)).join("; ")
    }`
  }
}

const decodeUnknown = Schema.decodeUnknownEffect(Endpoint)
const formatter = SchemaIssue.makeFormatterStandardSchemaV1()

const valueAt = (input: unknown, path: ReadonlyArray<PropertyKey>): { readonly found: boolean; readonly value?: unknown } => {
  let current = input
  for (const key of path) {
    if (typeof current !== "object" || current === null || !Object.hasOwn(current, key)) return { found: false }
    current = (current as Record<PropertyKey, unknown>)[key]
  }
  return { found: true, value: current }
}

const show = (value: unknown, field: string): string => {
  if (field === "tls.ca") return "<certificate>"
  if (typeof value === "string") return JSON.stringify(truncate(field === "url" ? redactUrl(value) : value, 80))
  if (typeof value === "number" || typeof value === "boolean" || value === null) return String(value)
  if (value === undefined) return "undefined"
  return Array.isArray(value) ? "an array" : typeof value === "object" ? "an object" : typeof value
}

const labelOf = (input: unknown, fallback: string): string => {
  if (typeof input === "string") return truncate(redactUrl(input), 120)
  if (typeof input === "object" && input !== null) {
    const { id, url } = input as { id?: unknown; url?: unknown }
    if (typeof url === "string") return truncate(redactUrl(url), 120)
    if (typeof id === "string") return truncate(id, 120)
  }
  return fallback
}

const toProblems = (issue: SchemaIssue.Issue, input: unknown, label: string): ReadonlyArray<Problem> => {
  const seen = new Set<string>()
  const problems: Array<Problem> = []
  for (const { message, path } of formatter(issue).issues) {
    const field = (path ?? []).map((key) => (typeof key === "object" ? String(key.key) : String(key))).join(".")
    const at = valueAt(input, (path ?? []).map((key) => (typeof key === "object" ? key.key : key)))
    let text = message
    if (at.found && field !== "") {
      const shown = show(at.value, field)
      if (shown !== JSON.stringify(label)) text = `${message} (got ${shown})`
    }
    const key = `${field}\u0000${text}`
    if (!seen.has(key)) {
      seen.add(key)
      problems.push({ field, message: text })
    }
  }
  return problems
}

/**
 * Decodes one endpoint from configuration: either a URL string or an object
 * (see {@link EndpointInput}). Fails with {@link InvalidEndpoint} listing
 * every bad field.
 *
 * @example
 * ```ts
 * import { Endpoint } from "@tether/core"
 *
 * Endpoint.decode({ url: "ldap://ldap1:389", weight: 3, tags: { zone: "a" } })
 * // Effect<Endpoint, InvalidEndpoint>: { id: "ldap://ldap1:389", weight: 3, priority: 0, role: "any", ... }
 * ```
 *
 * @since 0.1.0
 * @category decoding
 */
export const decode = (input: unknown, options?: { readonly label?: string }): Effect.Effect<Endpoint, InvalidEndpoint> => {
  const value = typeof input === "string" ? { url: input } : input
  return Effect.mapError(
    decodeUnknown(value, { errors: "all" }),
    (error) => {
      const endpoint = labelOf(input, options?.label ?? truncate(show(input, ""), 60))
      return new InvalidEndpoint({ endpoint, problems: toProblems(error.issue, value, endpoint) })
    }
  )
}

/**
 * Decodes a list of endpoints and checks that their ids are unique. Fails
 * with the {@link InvalidEndpoint} of the first bad entry (entries without a
 * URL are labelled by their position, `#0`, `#1`, …).
 *
 * @since 0.1.0
 * @category decoding
 */
export const decodeAll = (
  inputs: ReadonlyArray<unknown>
): Effect.Effect<ReadonlyArray<Endpoint>, InvalidEndpoint> =>
  Effect.flatMap(
    Effect.forEach(inputs, (input, i) => decode(input, { label: `#${i}` })),
    (endpoints) => {
      const ids = new Set<string>()
      for (const endpoint of endpoints) {
        if (ids.has(endpoint.id)) {
          return Effect.fail(
            new InvalidEndpoint({
              endpoint: endpoint.url,
              problems: [{
                field: "id",
                message: `${JSON.stringify(endpoint.id)} is used by more than one endpoint; give each endpoint a distinct id`
              }]
            })
          )
        }
        ids.add(endpoint.id)
      }
      return Effect.succeed(endpoints)
    }
  )
