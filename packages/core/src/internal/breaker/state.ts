/**
 * The breaker's state as a tagged union. Values are immutable: a transition
 * (or a trial call starting or ending) replaces the whole state, so an
 * outcome can tell whether the state it started in is still current by
 * identity.
 *
 * @internal
 */
import type { Status } from "../../CircuitBreaker.ts"

/** Calls go through; the policies watch their outcomes. @internal */
export interface Closed {
  readonly _tag: "Closed"
}

/**
 * Calls are rejected until `until` (epoch milliseconds; `Infinity` while the
 * open duration is being computed). `attempt`: openings since last closed.
 *
 * @internal
 */
export interface Open {
  readonly _tag: "Open"
  readonly until: number
  readonly attempt: number
}

/** Up to `halfOpenTrials` trial calls at once; `trials` are in flight. @internal */
export interface HalfOpen {
  readonly _tag: "HalfOpen"
  readonly trials: number
  readonly successes: number
  readonly attempt: number
}

/** @internal */
export type State = Closed | Open | HalfOpen

/** @internal */
export const closed: Closed = { _tag: "Closed" }

/** @internal */
export const open = (until: number, attempt: number): Open => ({ _tag: "Open", until, attempt })

/** @internal */
export const halfOpen = (attempt: number, trials: number, successes: number): HalfOpen => ({
  _tag: "HalfOpen",
  trials,
  successes,
  attempt
})

/** @internal */
export const status = (state: State): Status =>
  state._tag === "Closed" ? "closed" : state._tag === "Open" ? "open" : "half-open"
