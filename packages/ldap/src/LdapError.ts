/**
 * The typed errors of `@tether/ldap`, mapped from ldapts result-code errors
 * and socket failures, and how each is classified for breakers and retries.
 * No error carries a password.
 *
 * @since 0.1.0
 */
import { Fault } from "@tether/core"
import { Data } from "effect"

/**
 * The connection failed or was lost (refused, reset, closed, unknown host,
 * TLS handshake refused).
 *
 * @since 0.1.0
 * @category errors
 */
export class LdapConnectionError extends Data.TaggedError("LdapConnectionError")<{
  readonly endpoint: string
  readonly code: string | undefined
  readonly reason: string
  /** `false`: the operation certainly did not reach the server (it may be retried elsewhere). */
  readonly mayHaveReachedServer: boolean
}> {
  override get message() {
    return `LDAP server ${this.endpoint}: connection failed (${this.code ?? "no code"}): ${this.reason}. ` +
      `Check that it is up and reachable, and its TLS settings; Tether fails over when another server is configured.`
  }
}

/**
 * A bind was refused: wrong DN or password (result code 49), or the method
 * is not allowed (48, 50). Never counts toward the breaker, never retried.
 *
 * @since 0.1.0
 * @category errors
 */
export class LdapInvalidCredentials extends Data.TaggedError("LdapInvalidCredentials")<{
  readonly endpoint: string
  readonly dn: string
  readonly resultCode: number
}> {
  override get message() {
    return `LDAP server ${this.endpoint} refused the bind as "${this.dn}" (result code ${this.resultCode}). ` +
      `Check the DN and its password.`
  }
}

/**
 * An operation failed on the server. `kind` sorts result codes:
 * `no-such-object` (32), `already-exists` (68), `constraint` (19, 20, 21,
 * 64, 65, 66, 67, 69: constraint, naming or object-class violations),
 * `invalid-dn` (34), `invalid-filter` (a filter that does not parse),
 * `assertion-failed` (122: an assertion control's filter did not match),
 * `insufficient-access` (50; 123, a proxied authorization refused), `unavailable` (51 busy, 52 unavailable, 53
 * unwilling), `limit` (3 time, 4 size, 11 admin limit), `other`.
 *
 * @since 0.1.0
 * @category errors
 */
export class LdapOperationError extends Data.TaggedError("LdapOperationError")<{
  readonly endpoint: string
  readonly operation: string
  readonly kind: OperationErrorKind
  readonly resultCode: number | undefined
  readonly reason: string
}> {
  override get message() {
    return `LDAP ${this.operation} on ${this.endpoint} failed: ${this.reason} ` +
      `(${this.resultCode === undefined ? this.kind : `result code ${this.resultCode}, ${this.kind}`})${hints[this.kind]}`
  }
}

/**
 * What an {@link LdapOperationError} is about.
 *
 * @since 0.1.0
 * @category models
 */
export type OperationErrorKind =
  | "no-such-object"
  | "already-exists"
  | "constraint"
  | "invalid-dn"
  | "invalid-filter"
  | "assertion-failed"
  | "insufficient-access"
  | "unavailable"
  | "limit"
  | "other"

const hints: Record<OperationErrorKind, string> = {
  "no-such-object": ". Check the DN (and that its parent exists).",
  "already-exists": ". The entry exists; modify it, or import with onExists \"skip\" or \"replace\".",
  constraint: ". The entry breaks the schema or a constraint; fix its attributes.",
  "invalid-dn": ". Build DNs with Dn.make / Dn.escape.",
  "invalid-filter": ". Build filters with the Filter.filter template, which escapes values.",
  "assertion-failed": ". The entry no longer matches the assertion: read it again and decide.",
  "insufficient-access": ". The bound identity may not do this; check the ACLs.",
  unavailable: ". The server is busy or unavailable; Tether retries idempotent operations elsewhere.",
  limit: ". Narrow the search, page it, or raise the limit.",
  other: "."
}

/**
 * No answer within the operation timeout (ldapts's "Operation timed out");
 * the connection is destroyed. Classified as a connection fault: an
 * idempotent read is retried on another server, a write is not replayed.
 * `timeoutMillis` is the configured timeout when known.
 *
 * @since 0.1.0
 * @category errors
 */
export class LdapTimeout extends Data.TaggedError("LdapTimeout")<{
  readonly endpoint: string
  readonly operation: string
  readonly timeoutMillis: number | undefined
}> {
  override get message() {
    return `LDAP ${this.operation} on ${this.endpoint}: no answer within ` +
      `${this.timeoutMillis === undefined ? "the operation timeout" : `${this.timeoutMillis} ms`}. ` +
      `The server may be hung or overloaded; Tether retries idempotent reads on another server. ` +
      `Raise the client's timeout if the operation is legitimately slow.`
  }
}

/**
 * Every error of `@tether/ldap`'s operations.
 *
 * @since 0.1.0
 * @category errors
 */
export type LdapError = LdapConnectionError | LdapInvalidCredentials | LdapOperationError | LdapTimeout

const TAGS = new Set(["LdapConnectionError", "LdapInvalidCredentials", "LdapOperationError", "LdapTimeout"])

/**
 * Whether a value is one of this package's errors.
 *
 * @since 0.1.0
 * @category guards
 */
export const isLdapError = (u: unknown): u is LdapError =>
  typeof u === "object" && u !== null && "_tag" in u && TAGS.has((u as { _tag: string })._tag)

const NOT_SENT = new Set(["ECONNREFUSED", "ENOTFOUND", "EAI_AGAIN", "EHOSTUNREACH", "ENETUNREACH"])

const kindOf = (resultCode: number): OperationErrorKind => {
  switch (resultCode) {
    case 32:
      return "no-such-object"
    case 68:
      return "already-exists"
    case 19:
    case 20:
    case 21:
    case 64:
    case 65:
    case 66:
    case 67:
    case 69:
      return "constraint"
    case 34:
      return "invalid-dn"
    case 122:
      return "assertion-failed"
    case 50:
    case 123:
      return "insufficient-access"
    case 51:
    case 52:
    case 53:
      return "unavailable"
    case 3:
    case 4:
    case 11:
      return "limit"
    default:
      return "other"
  }
}

const field = (error: unknown, name: string): unknown =>
  typeof error === "object" && error !== null && name in error ? (error as Record<string, unknown>)[name] : undefined

/**
 * Maps anything ldapts (or the socket) threw to an {@link LdapError}.
 *
 * @since 0.1.0
 * @category mapping
 */
export const fromUnknown = (
  cause: unknown,
  context: {
    readonly endpoint: string
    readonly operation: string
    readonly dn?: string | undefined
    readonly timeoutMillis?: number | undefined
  }
): LdapError => {
  if (isLdapError(cause)) return cause
  const message = cause instanceof Error ? cause.message : String(cause)
  // ldapts rejects with a plain Error "<Request>: Operation timed out" (and destroys the socket);
  // later versions may throw a TimeoutError class.
  if (/operation timed out/i.test(message) || (cause instanceof Error && cause.name === "TimeoutError")) {
    return new LdapTimeout({ endpoint: context.endpoint, operation: context.operation, timeoutMillis: context.timeoutMillis })
  }
  const resultCode = field(cause, "code")
  if (typeof resultCode === "number") {
    if (context.operation === "bind" && (resultCode === 49 || resultCode === 48)) {
      return new LdapInvalidCredentials({ endpoint: context.endpoint, dn: context.dn ?? "", resultCode })
    }
    return new LdapOperationError({
      endpoint: context.endpoint,
      operation: context.operation,
      kind: kindOf(resultCode),
      resultCode,
      reason: message
    })
  }
  const code = typeof resultCode === "string" ? resultCode : undefined
  if (code !== undefined || /socket|connection|closed|ECONN|timeout|TLS|certificate|self[- ]signed|hostname/i.test(message)) {
    // ldapts builds DNs and filters before sending: their parse errors are input errors.
    if (cause instanceof TypeError || /invalid (dn|filter)|unbalanced|unexpected/i.test(message)) {
      return invalidInput(context, message)
    }
    return new LdapConnectionError({
      endpoint: context.endpoint,
      code,
      reason: message,
      mayHaveReachedServer: !(code !== undefined && NOT_SENT.has(code))
    })
  }
  return invalidInput(context, message)
}

/** A failure before anything was sent: a DN or filter that does not parse. */
const invalidInput = (context: { readonly endpoint: string; readonly operation: string }, message: string) =>
  new LdapOperationError({
    endpoint: context.endpoint,
    operation: context.operation,
    kind: context.operation === "search" && !/\bdn\b|rdn/i.test(message)
      ? "invalid-filter"
      : /\bdn\b|rdn/i.test(message)
      ? "invalid-dn"
      : "other",
    resultCode: undefined,
    reason: message
  })

/**
 * Classifies an error for the breaker and for failover (see `Fault`).
 *
 * @since 0.1.0
 * @category classification
 */
export const classify: Fault.Classifier = Fault.table(isLdapError, {
  LdapConnectionError: (error) => Fault.make("connection", { mayHaveReachedServer: error.mayHaveReachedServer }),
  LdapTimeout: Fault.make("connection", { mayHaveReachedServer: true }),
  LdapInvalidCredentials: Fault.make("authentication"),
  LdapOperationError: (error) =>
    error.kind === "unavailable" ? Fault.make("overload", { mayHaveReachedServer: false }) : Fault.make("semantic")
})

/**
 * Whether the error means the connection itself is unusable.
 *
 * @since 0.1.0
 * @category classification
 */
export const isBroken = (error: unknown): boolean =>
  isLdapError(error) && (error._tag === "LdapConnectionError" || error._tag === "LdapTimeout")
