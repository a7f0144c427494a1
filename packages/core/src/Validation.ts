/**
 * Up-front checks of constructor options: every public constructor and
 * Layer decodes its options with an `effect/Schema` and reports the first bad
 * one as an {@link InvalidOptions} naming the option path, the value given
 * (never a secret) and what is allowed. Constructing a client never throws.
 * Unknown keys are refused at every level (`passwd`, `pool.maxx`), with a
 * "did you mean …?" when a known option is close.
 *
 * @example
 * ```ts
 * import { Validation } from "@tether/core"
 * import { Effect, Schema } from "effect"
 *
 * const Options = Schema.Struct({ timeout: Schema.optionalKey(Validation.DurationInput) })
 * const program = Validation.validate(Options, { timeout: "banana" }, { component: 'client "app"' }).pipe(
 *   Effect.catchTag("InvalidPoolOptions", (error) => Effect.logError(error.message))
 * ) // client "app": invalid option timeout: got "banana"; expected a duration such as 5000 (milliseconds) or "5 seconds"
 * ```
 *
 * @since 0.2.0
 */
import type { Duration} from "effect";
import { Effect, Schema, SchemaIssue } from "effect"
import * as internalMillis from "./internal/millis.ts"
import { InvalidPoolOptions } from "./PoolError.ts"

const SECRET = /pass|secret|token|key|cert|credential|ca$/i

/** Shows a value in an error without ever quoting a secret or a whole object. @internal */
export const showValue = (value: unknown, path: string): string => {
  if (SECRET.test(path.split(".").at(-1) ?? "")) return "<redacted>"
  if (typeof value === "number" || typeof value === "boolean" || typeof value === "bigint") return String(value)
  if (value === undefined || value === null) return String(value)
  if (typeof value === "string") return JSON.stringify(value.length > 60 ? `${value.slice(0, 59)}…` : value)
  if (typeof value === "symbol") return "a symbol"
  if (typeof value === "function") return "a function"
  return Array.isArray(value) ? `an array of ${value.length}` : "an object"
}

/**
 * An option given to a constructor is invalid: `option` is its path (e.g.
 * `health.interval`, `endpoints`), `value` what was given (secrets shown as
 * `<redacted>`) and `allowed` what is accepted.
 *
 * It is an `InvalidPoolOptions` (same `_tag`), so the constructors report it
 * through the error channel they already declare; `component` says which
 * constructor refused it.
 *
 * @since 0.2.0
 * @category errors
 */
export class InvalidOptions extends InvalidPoolOptions {
  /** The constructor that refused the option, e.g. `server set "directory"`. */
  readonly component: string
  /** The value given (`"<redacted>"` for a secret). */
  readonly value: unknown
  /** What the option accepts. */
  readonly allowed: string

  constructor(args: {
    readonly component: string
    readonly option: string
    readonly value: unknown
    readonly allowed: string
    /** The whole reason, when "got …; expected …" does not read well (an unknown option). */
    readonly reason?: string | undefined
  }) {
    const shown = showValue(args.value, args.option)
    super({ pool: args.component, option: args.option, reason: args.reason ?? `got ${shown}; expected ${args.allowed}` })
    this.component = args.component
    this.value = shown === "<redacted>" ? shown : args.value
    this.allowed = args.allowed
  }

  override get message(): string {
    return `${this.component}: invalid option ${this.option === "" ? "(options)" : this.option}: ${this.reason}`
  }
}

/**
 * The milliseconds of a `Duration.Input` option (a number of milliseconds,
 * `"5 seconds"`, a `Duration`, …): with a `fallback`, its milliseconds when
 * the option is absent or not a duration; without one, `undefined` then.
 * Never throws (options are checked up front by the schemas here; this only
 * reads them).
 *
 * @example
 * ```ts
 * import { Validation } from "@tether/core"
 *
 * Validation.millis("2 seconds", 5_000) // 2000
 * Validation.millis(undefined, "5 seconds") // 5000
 * Validation.millis(undefined) // undefined
 * ```
 *
 * @since 0.3.0
 * @category utils
 */
export function millis(input: Duration.Input | undefined, fallback: Duration.Input): number
export function millis(input: Duration.Input | undefined): number | undefined
export function millis(input: Duration.Input | undefined, fallback?: Duration.Input): number | undefined {
  return fallback === undefined ? internalMillis.optional(input) : internalMillis.withFallback(input, fallback)
}

const DURATION = `a duration such as 5000 (milliseconds) or "5 seconds"`

/**
 * A `Duration.Input` (milliseconds, `"5 seconds"`, a `Duration`, …) that is
 * not negative.
 *
 * @since 0.2.0
 * @category schemas
 */
export const DurationInput: Schema.Codec<Duration.Input> = Schema.Unknown.check(
  Schema.makeFilter((u) => {
    const ms = internalMillis.optional(u)
    return ms !== undefined && ms >= 0 ? undefined : `${DURATION}, not negative`
  })
) as unknown as Schema.Codec<Duration.Input>

/**
 * A finite `Duration.Input` greater than zero (intervals, timeouts that must
 * leave time to work).
 *
 * @since 0.2.0
 * @category schemas
 */
export const PositiveDurationInput: Schema.Codec<Duration.Input> = Schema.Unknown.check(
  Schema.makeFilter((u) => {
    const ms = internalMillis.optional(u)
    return ms !== undefined && ms > 0 && Number.isFinite(ms) ? undefined : `${DURATION}, greater than 0`
  })
) as unknown as Schema.Codec<Duration.Input>

/**
 * An integer ≥ `min`.
 *
 * @since 0.2.0
 * @category schemas
 */
export const IntAtLeast = (min: number): Schema.Codec<number> =>
  Schema.Number.check(Schema.makeFilter((n) => Number.isInteger(n) && n >= min ? undefined : `an integer ≥ ${min}`))
    .annotate({ message: `an integer ≥ ${min}` })

/**
 * Any value of the given `typeof` (functions, schedules, drivers: checked only for being present).
 *
 * @since 0.2.0
 * @category schemas
 */
export const Opaque = (what: string, test: (u: unknown) => boolean): Schema.Codec<unknown> =>
  Schema.Unknown.check(Schema.makeFilter((u) => test(u) ? undefined : what))

const UNKNOWN = "\u0000unknown-option\u0000"

/** Unknown keys are reported with the keys that are known there (never with the value given: it may be a secret). */
const formatter = SchemaIssue.makeFormatterStandardSchemaV1({
  leafHook: (issue) => {
    if (issue._tag !== "UnexpectedKey") return SchemaIssue.defaultLeafHook(issue)
    const ast = issue.ast as { readonly propertySignatures?: ReadonlyArray<{ readonly name: PropertyKey }> }
    const known = (ast.propertySignatures ?? []).map((p) => p.name).filter((k): k is string => typeof k === "string")
    return UNKNOWN + known.join("\u0000")
  }
})

/** Edits (insert, delete, substitute, swap two neighbours) from `a` to `b`. */
const distance = (a: string, b: string): number => {
  const d: Array<Array<number>> = Array.from({ length: a.length + 1 }, (_, i) =>
    Array.from({ length: b.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)))
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1
      let best = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + cost)
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) best = Math.min(best, d[i - 2]![j - 2]! + 1)
      d[i]![j] = best
    }
  }
  return d[a.length]![b.length]!
}

/**
 * The known option closest to `key` (same letters in another case, or a
 * few typos away), if any.
 *
 * @since 0.2.0
 * @category errors
 */
export const closest = (key: string, known: ReadonlyArray<string>): string | undefined => {
  const lower = key.toLowerCase()
  let best: string | undefined
  let bestDistance = Infinity
  for (const candidate of known) {
    const d = distance(lower, candidate.toLowerCase())
    if (d < bestDistance) {
      best = candidate
      bestDistance = d
    }
  }
  const limit = Math.max(1, Math.min(3, Math.floor(key.length / 3)))
  return best !== undefined && bestDistance <= limit ? best : undefined
}

/**
 * The error for an option nobody reads (a typo, a key of another client):
 * its value is never shown (it may be a secret), and a close known option
 * is suggested.
 *
 * @since 0.2.0
 * @category errors
 */
export const unknownOption = (component: string, option: string, known: ReadonlyArray<string>): InvalidOptions => {
  const key = option.split(".").at(-1) ?? option
  const suggestion = closest(key, known)
  const allowed = suggestion === undefined
    ? known.length === 0 ? "no option here" : `one of the known options: ${known.join(", ")}`
    : `did you mean "${suggestion}"?`
  return new InvalidOptions({
    component,
    option,
    value: "<redacted>",
    allowed,
    reason: `unknown option ${JSON.stringify(key)}${suggestion === undefined ? "" : ` (did you mean "${suggestion}"?)`}`
  })
}

/**
 * Refuses the keys of `input` that are not in `known`: for the few options
 * objects checked by hand rather than by a Schema.
 *
 * @since 0.2.0
 * @category decoding
 */
export const checkKnownKeys = (
  input: unknown,
  known: ReadonlyArray<string>,
  component: string,
  prefix = ""
): InvalidOptions | undefined => {
  if (typeof input !== "object" || input === null || Array.isArray(input)) return undefined
  for (const key of Reflect.ownKeys(input)) {
    if (!Object.prototype.propertyIsEnumerable.call(input, key)) continue
    if (typeof key === "string" && known.includes(key)) continue
    return unknownOption(component, `${prefix}${String(key)}`, known)
  }
  return undefined
}

const valueAt = (input: unknown, path: ReadonlyArray<PropertyKey>): unknown => {
  let current = input
  for (const key of path) {
    if (typeof current !== "object" || current === null) return undefined
    current = (current as Record<PropertyKey, unknown>)[key]
  }
  return current
}

/**
 * Turns a Schema issue into an {@link InvalidOptions} for its first problem:
 * the option path, the value found there and what is allowed.
 *
 * @since 0.2.0
 * @category errors
 */
export const fromIssue = (issue: SchemaIssue.Issue, input: unknown, component: string): InvalidOptions =>
  fromIssues(issue, input, component)[0]!

/**
 * Every problem of a Schema issue (decode with `errors: "all"`) as an
 * {@link InvalidOptions}, for configuration files whose errors are best
 * reported all at once.
 *
 * @since 0.2.0
 * @category errors
 */
export const fromIssues = (
  issue: SchemaIssue.Issue,
  input: unknown,
  component: string
): ReadonlyArray<InvalidOptions> => {
  const issues = formatter(issue).issues
  return issues.length === 0
    ? [new InvalidOptions({ component, option: "", value: undefined, allowed: "valid options" })]
    : issues.map((one) => fromOne(one, input, component))
}

const fromOne = (
  first: { readonly message: string; readonly path?: ReadonlyArray<PropertyKey | { readonly key: PropertyKey }> | undefined },
  input: unknown,
  component: string
): InvalidOptions => {
  const keys = (first?.path ?? []).map((key) => (typeof key === "object" && key !== null ? key.key : key))
  const option = keys.map(String).join(".")
  const message = first?.message ?? "a valid value"
  if (message.startsWith(UNKNOWN)) {
    const known = message.slice(UNKNOWN.length).split("\u0000").filter((k) => k !== "")
    return unknownOption(component, option, known)
  }
  if (message === "Missing key") {
    return new InvalidOptions({ component, option, value: undefined, allowed: "a value (this option is required)" })
  }
  return new InvalidOptions({
    component,
    option,
    value: valueAt(input, keys),
    allowed: message.replace(/^Expected /, "")
  })
}

/**
 * Decodes `input` with `schema`; fails with an {@link InvalidOptions} for the
 * first bad option. Unknown keys are refused (`onExcessProperty: "error"`, the
 * default): a misspelt option is an error, never silently ignored.
 *
 * @since 0.2.0
 * @category decoding
 */
export const validate = <S extends Schema.ConstraintDecoder<unknown>>(
  schema: S,
  input: unknown,
  options: { readonly component: string; readonly onExcessProperty?: "ignore" | "error" | undefined }
): Effect.Effect<S["Type"], InvalidOptions> =>
  Effect.suspend(() => {
    const exit = Schema.decodeUnknownExit(schema)(input, { onExcessProperty: options.onExcessProperty ?? "error" })
    if (exit._tag === "Success") return Effect.succeed(exit.value)
    const reason = exit.cause.reasons.find((r) => r._tag === "Fail")
    if (reason === undefined || reason._tag !== "Fail") {
      return Effect.fail(new InvalidOptions({ component: options.component, option: "", value: undefined, allowed: "valid options" }))
    }
    return Effect.fail(fromIssue((reason.error as Schema.SchemaError).issue, input, options.component))
  })
