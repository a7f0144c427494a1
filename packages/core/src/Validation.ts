/**
 * Up-front checks of constructor options: every public constructor and
 * Layer decodes its options with an `effect/Schema` and reports the first bad
 * one as an {@link InvalidOptions} naming the option path, the value given
 * (never a secret) and what is allowed. Constructing a client never throws.
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
import { Duration, Effect, Schema, SchemaIssue } from "effect"
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
  }) {
    const shown = showValue(args.value, args.option)
    super({ pool: args.component, option: args.option, reason: `got ${shown}; expected ${args.allowed}` })
    this.component = args.component
    this.value = shown === "<redacted>" ? shown : args.value
    this.allowed = args.allowed
  }

  override get message(): string {
    return `${this.component}: invalid option ${this.option === "" ? "(options)" : this.option}: ${this.reason}`
  }
}

const durationOf = (input: unknown): number | undefined => {
  if (input === undefined || input === null) return undefined
  if (typeof input === "number" && Number.isNaN(input)) return undefined
  try {
    const decoded = Duration.fromInput(input as Duration.Input)
    return decoded._tag === "Some" ? Duration.toMillis(decoded.value) : undefined
  } catch {
    return undefined
  }
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
    const millis = durationOf(u)
    return millis !== undefined && millis >= 0 ? undefined : `${DURATION}, not negative`
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
    const millis = durationOf(u)
    return millis !== undefined && millis > 0 && Number.isFinite(millis) ? undefined : `${DURATION}, greater than 0`
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

const formatter = SchemaIssue.makeFormatterStandardSchemaV1()

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
  if (message === "Expected no excess property") {
    return new InvalidOptions({ component, option, value: "<redacted>", allowed: "no such option (check its spelling)" })
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
 * first bad option. `onExcessProperty: "error"` rejects unknown keys (use it
 * for configuration files).
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
    const exit = Schema.decodeUnknownExit(schema)(input, { onExcessProperty: options.onExcessProperty ?? "ignore" })
    if (exit._tag === "Success") return Effect.succeed(exit.value)
    const reason = exit.cause.reasons.find((r) => r._tag === "Fail")
    if (reason === undefined || reason._tag !== "Fail") {
      return Effect.fail(new InvalidOptions({ component: options.component, option: "", value: undefined, allowed: "valid options" }))
    }
    return Effect.fail(fromIssue((reason.error as Schema.SchemaError).issue, input, options.component))
  })
