/**
 * The typed errors of `@tether/pg`, mapped from postgres.js errors and
 * SQLSTATE classes, and how each is classified for breakers and retries.
 *
 * No error carries a password or a statement's parameter values: messages
 * hold the server's message, the SQLSTATE and the endpoint only.
 *
 * @since 0.1.0
 */
import { Fault } from "@tether/core"
import { Data } from "effect"

/**
 * The connection failed or was lost: refused, reset, closed, timed out while
 * connecting, or the server is shutting down (SQLSTATE 08xxx, 57P01–57P03).
 *
 * @since 0.1.0
 * @category errors
 */
export class PgConnectionError extends Data.TaggedError("PgConnectionError")<{
  readonly endpoint: string
  readonly code: string | undefined
  readonly reason: string
  /** Whether the statement may have reached the server (`false`: it certainly did not). */
  readonly mayHaveReachedServer: boolean
}> {
  override get message() {
    return `PostgreSQL at ${this.endpoint}: connection failed (${this.code ?? "no code"}): ${this.reason}. ` +
      `Check that the server is up and reachable; Tether fails over to another endpoint when one is configured.`
  }
}

/**
 * The server rejected the credentials (SQLSTATE 28P01, 28000). Never counts
 * toward the endpoint's breaker and is never retried.
 *
 * @since 0.1.0
 * @category errors
 */
export class PgAuthenticationError extends Data.TaggedError("PgAuthenticationError")<{
  readonly endpoint: string
  readonly user: string
  readonly code: string
}> {
  override get message() {
    return `PostgreSQL at ${this.endpoint} rejected the credentials of role "${this.user}" (${this.code}). ` +
      `Check the role's password and pg_hba.conf.`
  }
}

/**
 * A statement failed on the server. `kind` sorts SQLSTATEs into what a
 * caller may want to handle: `syntax` (42601), `undefined-object` (42P01
 * table, 42703 column, 42883 function), `constraint` (23xxx),
 * `read-only` (25006: a write on a replica or in a read-only transaction),
 * `serialization` (40001) and `deadlock` (40P01) — both retryable only as a
 * whole transaction — `timeout` (57014: statement timeout or cancel),
 * `other`.
 *
 * @since 0.1.0
 * @category errors
 */
export class PgQueryError extends Data.TaggedError("PgQueryError")<{
  readonly endpoint: string
  readonly code: string
  readonly kind: QueryErrorKind
  /** The server's message (no parameter values: PostgreSQL does not echo them here). */
  readonly reason: string
  /** The server's detail line, if any; it may quote row values, so it is kept out of `message`. */
  readonly detail: string | undefined
}> {
  override get message() {
    return `PostgreSQL at ${this.endpoint}: ${this.reason} (SQLSTATE ${this.code}, ${this.kind})${hints[this.kind]}`
  }
}

/**
 * What a {@link PgQueryError} is about.
 *
 * @since 0.1.0
 * @category models
 */
export type QueryErrorKind =
  | "syntax"
  | "undefined-object"
  | "constraint"
  | "read-only"
  | "serialization"
  | "deadlock"
  | "timeout"
  | "other"

const hints: Record<QueryErrorKind, string> = {
  syntax: ". Fix the statement's syntax.",
  "undefined-object": ". Check the name, the schema and the search_path.",
  constraint: ". The data violates a constraint; it was not written.",
  "read-only": ". Writes must run in write mode (they go to the primary).",
  serialization: ". Retry the whole transaction (`transaction` does so on its schedule).",
  deadlock: ". Retry the whole transaction (`transaction` does so on its schedule).",
  timeout: ". The statement was cancelled; raise statementTimeout or make it faster.",
  other: "."
}

/**
 * A write (or a transaction's COMMIT) was sent and then the connection was
 * lost before its answer: it may or may not have been applied. Tether never
 * replays it; check the data before trying again.
 *
 * @since 0.1.0
 * @category errors
 */
export class PgOutcomeUnknown extends Data.TaggedError("PgOutcomeUnknown")<{
  readonly endpoint: string
  readonly reason: string
}> {
  override get message() {
    return `PostgreSQL at ${this.endpoint}: the connection was lost after a write was sent (${this.reason}); ` +
      `it may or may not have been applied. Tether did not replay it: check before retrying.`
  }
}

/**
 * No answer within the client-side timeout (`queryTimeout`, or the connect
 * timeout). The connection is destroyed, not reused.
 *
 * @since 0.1.0
 * @category errors
 */
export class PgTimeout extends Data.TaggedError("PgTimeout")<{
  readonly endpoint: string
  readonly operation: string
  readonly timeoutMillis: number
}> {
  override get message() {
    return `PostgreSQL at ${this.endpoint}: no answer to ${this.operation} within ${this.timeoutMillis} ms. ` +
      `The server may be hung or unreachable.`
  }
}

/**
 * TLS could not be set up as configured: the server's certificate was
 * refused (untrusted chain, or it does not name the URL's host — an IP
 * address must be in the certificate's IP SANs — `code` says which), or the
 * endpoint's TLS settings are invalid (`code: "INVALID_TLS_SETTINGS"`: an
 * unknown `sslmode`, an unreadable CA file). Nothing was sent to the server.
 *
 * @since 0.1.0
 * @category errors
 */
export class PgTlsError extends Data.TaggedError("PgTlsError")<{
  readonly endpoint: string
  readonly code: string
  readonly reason: string
}> {
  override get message() {
    return this.code === "INVALID_TLS_SETTINGS"
      ? `PostgreSQL at ${this.endpoint}: invalid TLS settings: ${this.reason}.`
      : `PostgreSQL at ${this.endpoint}: the server's TLS certificate was refused (${this.code}): ${this.reason}. ` +
        `Check the CA (sslrootcert, tls.ca or ca) and that the certificate names the URL's host ` +
        `(an IP address must be among its IP SANs), or set tls.servername.`
  }
}

/**
 * Every error of `@tether/pg`'s statements.
 *
 * @since 0.1.0
 * @category errors
 */
/**
 * The statement could not be sent because of how it was called, not because
 * of the server or the network: an `undefined` or Symbol parameter, an object
 * that cannot be serialized (circular, BigInt inside JSON), more than 65,534
 * parameters, a template function called without a template. Never retried,
 * never counted by a circuit breaker, and the connection stays in the pool.
 * Fix the call.
 *
 * @since 0.2.0
 * @category errors
 */
export class PgUsageError extends Data.TaggedError("PgUsageError")<{
  readonly endpoint: string
  /** postgres.js's code (e.g. `UNDEFINED_VALUE`, `MAX_PARAMETERS_EXCEEDED`), or the JavaScript error's name. */
  readonly code: string
  readonly reason: string
}> {
  override get message() {
    return `PostgreSQL client usage error (${this.code}): ${this.reason}. The statement was not sent to ${this.endpoint}: ` +
      `fix the call (pass null instead of undefined, serialize values yourself, split huge parameter lists).`
  }
}

export type PgError =
  | PgUsageError
  | PgConnectionError
  | PgAuthenticationError
  | PgQueryError
  | PgOutcomeUnknown
  | PgTimeout
  | PgTlsError

const NOT_SENT_CODES = new Set(["ECONNREFUSED", "ENOTFOUND", "EAI_AGAIN", "EHOSTUNREACH", "ENETUNREACH", "CONNECT_TIMEOUT"])
const CONNECTION_CODES = new Set([
  ...NOT_SENT_CODES,
  "ECONNRESET",
  "EPIPE",
  "ETIMEDOUT",
  "CONNECTION_CLOSED",
  "CONNECTION_ENDED",
  "CONNECTION_DESTROYED",
  "57P01",
  "57P02",
  "57P03"
])

const kindOf = (code: string): QueryErrorKind => {
  if (code === "42601") return "syntax"
  if (code === "42P01" || code === "42703" || code === "42883" || code === "3F000") return "undefined-object"
  if (code.startsWith("23")) return "constraint"
  if (code === "25006") return "read-only"
  if (code === "40001") return "serialization"
  if (code === "40P01") return "deadlock"
  if (code === "57014") return "timeout"
  return "other"
}

const field = (error: unknown, name: string): string | undefined => {
  if (typeof error !== "object" || error === null || !(name in error)) return undefined
  const value = (error as Record<string, unknown>)[name]
  return value === undefined || value === null ? undefined : String(value)
}

/**
 * Maps anything postgres.js (or the socket) threw to a {@link PgError}.
 * `sent`: whether the failing statement was a write that may have reached
 * the server (a lost connection then means "outcome unknown").
 *
 * @since 0.1.0
 * @category mapping
 */
export const fromUnknown = (
  cause: unknown,
  context: { readonly endpoint: string; readonly user: string; readonly write?: boolean | undefined }
): PgError => {
  if (isPgError(cause)) return cause
  const usage = usageCode(cause)
  if (usage !== undefined) {
    return new PgUsageError({ endpoint: context.endpoint, code: usage, reason: field(cause, "message") ?? String(cause) })
  }
  const code = field(cause, "code") ?? field(cause, "errno")
  const reason = field(cause, "message") ?? String(cause)
  if (code === "28P01" || code === "28000") {
    return new PgAuthenticationError({ endpoint: context.endpoint, user: context.user, code })
  }
  if (code !== undefined && TLS_CODE.test(code)) {
    return new PgTlsError({ endpoint: context.endpoint, code, reason })
  }
  if (code !== undefined && (CONNECTION_CODES.has(code) || code.startsWith("08"))) {
    const notSent = NOT_SENT_CODES.has(code) || code === "57P03"
    if (!notSent && context.write === true) return new PgOutcomeUnknown({ endpoint: context.endpoint, reason })
    return new PgConnectionError({ endpoint: context.endpoint, code, reason, mayHaveReachedServer: !notSent })
  }
  if (code !== undefined && /^[0-9A-Z]{5}$/.test(code)) {
    return new PgQueryError({
      endpoint: context.endpoint,
      code,
      kind: kindOf(code),
      reason,
      detail: field(cause, "detail")
    })
  }
  // A plain socket error without a code: the connection is gone.
  return context.write === true
    ? new PgOutcomeUnknown({ endpoint: context.endpoint, reason })
    : new PgConnectionError({ endpoint: context.endpoint, code, reason, mayHaveReachedServer: true })
}

/** Node's certificate-verification and TLS-handshake error codes. */
/** postgres.js's own errors about how it was called (nothing was sent). */
const USAGE_CODES = new Set([
  "UNDEFINED_VALUE",
  "MAX_PARAMETERS_EXCEEDED",
  "NOT_TAGGED_CALL",
  "UNSAFE_TRANSACTION",
  "COPY_IN_PROGRESS"
])

/**
 * The code of a client-side usage error, if `cause` is one: postgres.js's
 * usage codes, or a `TypeError`/`RangeError` thrown while serializing the
 * parameters (a Symbol, a circular object, a BigInt in JSON). Socket errors
 * are plain `Error`s with a system code, never these.
 */
const usageCode = (cause: unknown): string | undefined => {
  const code = field(cause, "code")
  if (code !== undefined && USAGE_CODES.has(code)) return code
  if ((cause instanceof TypeError || cause instanceof RangeError) && (code === undefined || code.startsWith("ERR_INVALID_ARG") || code === "ERR_OUT_OF_RANGE")) {
    return cause.name
  }
  return undefined
}

const TLS_CODE = /^(ERR_TLS_|ERR_SSL_)|CERT|UNABLE_TO_VERIFY|SELF_SIGNED/

const TAGS = new Set([
  "PgUsageError",
  "PgConnectionError",
  "PgAuthenticationError",
  "PgQueryError",
  "PgOutcomeUnknown",
  "PgTimeout",
  "PgTlsError"
])

/**
 * Whether a value is one of this package's errors.
 *
 * @since 0.1.0
 * @category guards
 */
export const isPgError = (u: unknown): u is PgError =>
  typeof u === "object" && u !== null && "_tag" in u && TAGS.has((u as { _tag: string })._tag)

/**
 * Classifies an error for the breaker and for failover (see `Fault`):
 * connection faults and overload (53300 too many connections, 57P03 cannot
 * connect now) are server faults; authentication and statement errors are
 * not, and are never retried on another endpoint.
 *
 * @since 0.1.0
 * @category classification
 */
export const classify: Fault.Classifier = Fault.table(isPgError, {
  // The server was never asked: not its fault, nothing to retry.
  PgUsageError: Fault.make("semantic"),
  PgConnectionError: (error) =>
    error.code === "57P03"
      ? Fault.make("overload", { mayHaveReachedServer: false })
      : Fault.make("connection", { mayHaveReachedServer: error.mayHaveReachedServer }),
  PgTimeout: Fault.make("connection", { mayHaveReachedServer: true }),
  PgOutcomeUnknown: Fault.make("connection", { mayHaveReachedServer: true }),
  PgAuthenticationError: Fault.make("authentication"),
  // Nothing was sent; another endpoint may be configured right.
  PgTlsError: Fault.make("connection", { mayHaveReachedServer: false }),
  PgQueryError: (error) =>
    error.code === "53300" ? Fault.make("overload", { mayHaveReachedServer: false }) : Fault.make("semantic")
})

/**
 * Whether the error means the connection itself is unusable (destroy it).
 *
 * @since 0.1.0
 * @category classification
 */
export const isBroken = (error: unknown): boolean =>
  isPgError(error) &&
  (error._tag === "PgConnectionError" || error._tag === "PgTimeout" || error._tag === "PgOutcomeUnknown" ||
    error._tag === "PgTlsError")
