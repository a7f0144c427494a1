/**
 * What a *when to open* policy is: a value describing the rule, which makes
 * a fresh mutable {@link Tracker} for each breaker. The breaker feeds every
 * closed-state outcome to each tracker; the first one that returns a reason
 * opens it.
 *
 * @internal
 */

/** An invalid parameter of a policy, before the breaker names its endpoint. @internal */
export interface Invalid {
  readonly option: string
  readonly value: unknown
  readonly allowed: string
}

/** @internal */
export interface Tracker {
  /**
   * Records one closed-state outcome. `now` and `elapsed` (milliseconds) are
   * only measured when the policy is `timed`, and are 0 otherwise.
   * Returns why the breaker should open, or `undefined`.
   */
  record(failure: boolean, now: number, elapsed: number): string | undefined
  /** Forgets everything (on every transition). */
  reset(): void
}

/** @internal */
export interface PolicyDescription {
  readonly _tag: string
  /** The policy's parameters checked; the first invalid one, if any. */
  readonly check: () => Invalid | undefined
  /** Whether its tracker needs the time of each outcome and the call's duration. */
  readonly timed: boolean
  /** Calls at least this slow (milliseconds) are slow; a slow half-open trial fails. */
  readonly slowCallMillis: number | undefined
  /** A fresh tracker for one breaker (only called once `check` passed). */
  readonly makeTracker: () => Tracker
}

/** @internal */
export const percent = (n: number): string => `${Math.round(n * 1000) / 10}%`

/** A positive integer, or `Infinity` when `infinite` is allowed. @internal */
export const checkCount = (option: string, value: number, infinite: boolean): Invalid | undefined =>
  (Number.isInteger(value) && value > 0) || (infinite && value === Infinity)
    ? undefined
    : { option, value, allowed: infinite ? "a positive integer or Infinity" : "a positive integer" }

/** A share in (0, 1]. @internal */
export const checkShare = (option: string, value: number): Invalid | undefined =>
  typeof value === "number" && value > 0 && value <= 1
    ? undefined
    : { option, value, allowed: "a share in (0, 1], e.g. 0.5 for 50%" }
