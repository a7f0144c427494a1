/**
 * The typed errors a {@link ConnectionPool} can fail with, besides the
 * driver's own connection errors.
 *
 * @since 0.1.0
 */
import { Data } from "effect"

/**
 * A point-in-time summary of a pool, carried by its errors so that a timeout
 * says *why* there was no connection.
 *
 * @since 0.1.0
 * @category models
 */
export interface PoolSnapshot {
  readonly idle: number
  readonly inUse: number
  readonly pending: number
  readonly max: number
}

const describe = (s: PoolSnapshot) => `idle ${s.idle}, in use ${s.inUse}/${s.max}, ${s.pending} waiting`

/**
 * No connection could be borrowed within `acquireTimeout`.
 *
 * @since 0.1.0
 * @category errors
 */
export class PoolTimeout extends Data.TaggedError("PoolTimeout")<{
  readonly pool: string
  readonly timeoutMillis: number
  readonly snapshot: PoolSnapshot
}> {
  override get message(): string {
    return `pool "${this.pool}": no connection available within ${this.timeoutMillis} ms (${
      describe(this.snapshot)
    }). Raise max or acquireTimeout, shorten the work done while holding a connection, or turn on ` +
      `leakDetectionThreshold to find a borrower that never returns its connection.`
  }
}

/**
 * Opening one connection took longer than `connectTimeout`: the server
 * accepted nothing, or hung during the handshake. Classified as a connection
 * fault (the server may be down or stopped).
 *
 * @since 0.1.0
 * @category errors
 */
export class ConnectTimeout extends Data.TaggedError("ConnectTimeout")<{
  readonly pool: string
  readonly timeoutMillis: number
}> {
  override get message(): string {
    return `pool "${this.pool}": opening a connection took longer than ${this.timeoutMillis} ms. ` +
      `Check that the server is up and reachable, or raise connectTimeout.`
  }
}

/**
 * The pool is draining or closed: it accepts no new borrowers.
 *
 * @since 0.1.0
 * @category errors
 */
export class PoolClosed extends Data.TaggedError("PoolClosed")<{
  readonly pool: string
}> {
  override get message(): string {
    return `pool "${this.pool}" is shutting down and lends no more connections. ` +
      `Use it only inside the scope (Layer) that owns it.`
  }
}

/**
 * The options given to a pool are inconsistent.
 *
 * @since 0.1.0
 * @category errors
 */
export class InvalidPoolOptions extends Data.TaggedError("InvalidPoolOptions")<{
  readonly pool: string
  readonly option: string
  readonly reason: string
}> {
  override get message(): string {
    return `pool "${this.pool}": invalid option ${this.option}: ${this.reason}`
  }
}

const formatValue = (value: unknown): string => {
  if (typeof value === "number" || typeof value === "boolean" || value === undefined || value === null) {
    return String(value)
  }
  if (typeof value === "string") return JSON.stringify(value.length > 40 ? `${value.slice(0, 39)}…` : value)
  return typeof value
}

/**
 * The options given to a circuit breaker are invalid: `option` names the
 * option (e.g. `failureRate.threshold`), `value` is what was given and
 * `allowed` says what is accepted.
 *
 * It is an {@link InvalidPoolOptions} (same `_tag`): the constructors that
 * build breakers for their endpoints (`ServerSet.make`, `PgClient`,
 * `LdapClient`) report it through the error channel they already declare.
 * Tell it apart with `instanceof InvalidBreakerOptions` or its
 * `component: "breaker"`.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { CircuitBreaker, InvalidBreakerOptions } from "@tether/core"
 *
 * const program = CircuitBreaker.make({ endpoint: "ldap://ldap1", consecutiveFailures: 0 }).pipe(
 *   Effect.catchTag("InvalidPoolOptions", (error) =>
 *     error instanceof InvalidBreakerOptions
 *       ? Effect.logError(`fix option ${error.option}: ${error.allowed}`)
 *       : Effect.fail(error)),
 *   Effect.scoped
 * )
 * ```
 *
 * @since 0.2.0
 * @category errors
 */
export class InvalidBreakerOptions extends InvalidPoolOptions {
  readonly component = "breaker"
  /** The endpoint whose breaker was being made. */
  readonly endpoint: string
  /** The value given. */
  readonly value: unknown
  /** What the option accepts, e.g. `a share in (0, 1]`. */
  readonly allowed: string

  constructor(args: {
    readonly endpoint: string
    readonly option: string
    readonly value: unknown
    readonly allowed: string
  }) {
    super({ pool: args.endpoint, option: args.option, reason: `got ${formatValue(args.value)}; expected ${args.allowed}` })
    this.endpoint = args.endpoint
    this.value = args.value
    this.allowed = args.allowed
  }

  override get message(): string {
    return `circuit breaker for ${this.endpoint}: invalid option ${this.option}: got ${
      formatValue(this.value)
    }; expected ${this.allowed}`
  }
}

/**
 * The options given to `Retry.makeBackoff` are invalid: `option` names the
 * option, `value` is what was given and `allowed` says what is accepted.
 *
 * @since 0.2.0
 * @category errors
 */
export class InvalidRetryOptions extends Data.TaggedError("InvalidRetryOptions")<{
  readonly option: string
  readonly value: unknown
  readonly allowed: string
}> {
  override get message(): string {
    return `retry: invalid option ${this.option}: got ${formatValue(this.value)}; expected ${this.allowed}`
  }
}
