/**
 * How a driver classifies a failure, so that the core can decide — without
 * knowing anything about LDAP or PostgreSQL — whether the failure says
 * something about the *server* (count it against the breaker, fail over,
 * maybe retry) or about the *request* (hand it straight back to the caller).
 *
 * @since 0.1.0
 */
import { ConnectTimeout, PoolClosed, PoolTimeout } from "./PoolError.ts"

/**
 * The kinds of failure the core distinguishes.
 *
 * - `connection`: the connection could not be opened, or broke (refused,
 *   reset, timed out, TLS handshake failed). The server may be down.
 * - `overload`: the server answered but is too busy (LDAP `busy` /
 *   `unavailable`, PostgreSQL `57P03`, too many connections).
 * - `authentication`: the credentials were rejected. Says nothing about the
 *   server's health; never retried, never opens a breaker.
 * - `semantic`: the server processed the request and said no (no such
 *   object, syntax error, constraint violation). Never retried.
 * - `unknown`: the driver cannot tell. Treated as a server fault for the
 *   breaker but never retried.
 *
 * @since 0.1.0
 * @category models
 */
export type FaultKind = "connection" | "overload" | "authentication" | "semantic" | "unknown"

/**
 * A driver's verdict on one failure.
 *
 * `mayHaveReachedServer` is `true` when the operation might have been
 * executed (the request was written before the connection broke): such an
 * operation is only replayed if it was declared idempotent.
 *
 * @since 0.1.0
 * @category models
 */
export interface Fault {
  readonly kind: FaultKind
  readonly mayHaveReachedServer: boolean
}

/**
 * A function from any failure to its {@link Fault}.
 *
 * @since 0.1.0
 * @category models
 */
export type Classifier = (error: unknown) => Fault

/**
 * Whether a fault counts against a server's circuit breaker and health.
 * Authentication failures and semantic errors never do: a wrong password
 * must not take a healthy server out of rotation.
 *
 * @since 0.1.0
 * @category predicates
 */
export const isServerFault = (fault: Fault): boolean =>
  fault.kind === "connection" || fault.kind === "overload" || fault.kind === "unknown"

/**
 * Whether a fault may be retried on another (or the same) server.
 * Only connection and overload faults are; and an operation that may have
 * reached the server is retried only when `idempotent` is `true`.
 *
 * @since 0.1.0
 * @category predicates
 */
export const isRetryable = (fault: Fault, idempotent: boolean): boolean =>
  (fault.kind === "connection" || fault.kind === "overload") && (idempotent || !fault.mayHaveReachedServer)

/**
 * Makes a {@link Fault}.
 *
 * @example
 * ```ts
 * import { Fault } from "@tether/core"
 *
 * const refused = Fault.make("connection", { mayHaveReachedServer: false })
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (kind: FaultKind, options?: { readonly mayHaveReachedServer?: boolean }): Fault => ({
  kind,
  mayHaveReachedServer: options?.mayHaveReachedServer ?? kind !== "connection"
})

/**
 * How a driver's errors map to {@link Fault}s, one entry per `_tag` of `E`:
 * a fixed verdict, or a function of the error (for a verdict that depends on
 * a field, such as an SQLSTATE). The compiler checks that every tag of `E`
 * has its entry and that each function is given its own error type.
 *
 * @since 0.2.0
 * @category models
 */
export type Table<E extends { readonly _tag: string }> = {
  readonly [K in E["_tag"]]: Fault | ((error: Extract<E, { readonly _tag: K }>) => Fault)
}

/**
 * Builds a driver's {@link Classifier} from a {@link Table} over its own
 * error type `E`: `is` recognises an `E`, its `_tag` picks the entry, and
 * anything else (a failure that is not the driver's) is `otherwise`
 * (default: `unknown`). The pool's own errors and a breaker's refusal never
 * reach a driver's classifier: the core classifies them itself (see
 * {@link ofPoolError}).
 *
 * @example
 * ```ts
 * import { Fault } from "@tether/core"
 * import { Data } from "effect"
 *
 * class Refused extends Data.TaggedError("Refused")<{ readonly port: number }> {}
 * class Rejected extends Data.TaggedError("Rejected")<{ readonly busy: boolean }> {}
 * type MyError = Refused | Rejected
 * const isMyError = (u: unknown): u is MyError => u instanceof Refused || u instanceof Rejected
 *
 * const classify = Fault.table(isMyError, {
 *   Refused: Fault.make("connection", { mayHaveReachedServer: false }),
 *   Rejected: (error) => error.busy ? Fault.make("overload", { mayHaveReachedServer: false }) : Fault.make("semantic")
 * })
 * ```
 *
 * @since 0.2.0
 * @category constructors
 */
export const table = <E extends { readonly _tag: string }>(
  is: (u: unknown) => u is E,
  cases: Table<E>,
  otherwise: Fault = make("unknown")
): Classifier =>
(error) => {
  if (!is(error)) return otherwise
  const tag: E["_tag"] = error._tag
  const entry: Fault | ((error: never) => Fault) = cases[tag]
  // Sound: the entry was picked by this error's own `_tag`, so its parameter is exactly
  // `Extract<E, { _tag: error._tag }>`; TypeScript cannot correlate the index with the union member.
  return typeof entry === "function" ? (entry as (error: E) => Fault)(error) : entry
}

/**
 * The errors a pool fails with on its own, besides the driver's connect errors.
 *
 * @since 0.2.0
 * @category models
 */
export type PoolFailure = PoolTimeout | ConnectTimeout | PoolClosed

/**
 * Whether a failure is one of the pool's own ({@link PoolFailure}), by class.
 *
 * @since 0.2.0
 * @category predicates
 */
export const isPoolFailure = (u: unknown): u is PoolFailure =>
  u instanceof PoolTimeout || u instanceof ConnectTimeout || u instanceof PoolClosed

const connectionNotReached: Fault = { kind: "connection", mayHaveReachedServer: false }
const overloadNotReached: Fault = { kind: "overload", mayHaveReachedServer: false }
const localNotReached: Fault = { kind: "semantic", mayHaveReachedServer: false }

/**
 * What a pool's own error says, for failover (`"failover"`) or for the
 * endpoint's circuit breaker (`"breaker"`). None of them reached the server.
 *
 * - `ConnectTimeout`: a connect that hung; the server may be down. A
 *   connection fault for both.
 * - `PoolTimeout`: every connection of this endpoint is busy. Failover tries
 *   another endpoint (`overload`); the breaker ignores it (`semantic`): a
 *   local queue says nothing about the server's health.
 * - `PoolClosed`: the endpoint is being removed or the set is closing.
 *   Failover goes elsewhere (`connection`); the breaker ignores it.
 *
 * @since 0.2.0
 * @category constructors
 */
export const ofPoolError = (error: PoolFailure, purpose: "failover" | "breaker"): Fault => {
  switch (error._tag) {
    case "ConnectTimeout":
      return connectionNotReached
    case "PoolTimeout":
      return purpose === "failover" ? overloadNotReached : localNotReached
    case "PoolClosed":
      return purpose === "failover" ? connectionNotReached : localNotReached
  }
}
