/**
 * How a driver classifies a failure, so that the core can decide — without
 * knowing anything about LDAP or PostgreSQL — whether the failure says
 * something about the *server* (count it against the breaker, fail over,
 * maybe retry) or about the *request* (hand it straight back to the caller).
 *
 * @since 0.1.0
 */

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
