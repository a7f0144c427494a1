/**
 * The state of a `ConnectionPool` beside Effect's `Pool`: what it knows
 * about each connection (`Entry`), the borrows in progress (`Lease`), the
 * statistics counters and the flags of drain. Plain mutable structures,
 * touched only synchronously by the one-job modules beside this one
 * (admission, lease, housekeeping) and by `connectionPool.ts`, which wires them.
 */
import type { Fiber } from "effect"
import type { Counters } from "../../poolMetrics.ts"
import { makeCounters } from "../../poolMetrics.ts"

/** One pooled connection and what the pool knows about it. */
export interface Entry<A> {
  readonly connection: A
  readonly id: number
  readonly createdAt: number
  lastUsedAt: number
  /** Whether it has been lent at least once. */
  lent: boolean
  /** The borrows in progress (at most `concurrency`). */
  readonly holders: Array<Lease<A>>
  retired: boolean
}

/** One borrow in progress, tracked for leak detection and drain. */
export interface Lease<A> {
  readonly entry: Entry<A>
  readonly fiber: Fiber.Fiber<unknown, unknown>
  readonly since: number
  reported: boolean
}

/** A borrower's claim to have `Pool` open a new connection for it. */
export interface DirectToken {
  direct: boolean
}

/**
 * What a borrow fails with when the connection it got turned out unusable: borrow again. A failure,
 * not a success value, so the common path needs no step to tell a result from it (a `catchCause`
 * frame costs a successful borrow about half what a `flatMap` does); never seen outside `use`.
 */
export class Retry {
  readonly _tag = "Retry"
}
export const RETRY = new Retry()

export type { Counters }

export interface State<A> {
  readonly name: string
  readonly max: number
  readonly entries: Set<Entry<A>>
  readonly byConnection: Map<A, Entry<A>>
  /** Borrows in progress, across all entries. */
  activeLeases: number
  readonly counters: Counters
  nextId: number
  /** Borrows that took no time since the last flush (counted, not timed). */
  immediateBorrows: number
  draining: boolean
  /** Called when the last lease ends while draining. */
  onDrained: (() => void) | undefined
  /** Borrowers sent to `Pool` to open a new connection, not yet served. */
  directBorrowers: number
}

export const make = <A>(name: string, max: number): State<A> => ({
  name,
  max,
  entries: new Set(),
  byConnection: new Map(),
  activeLeases: 0,
  counters: makeCounters(),
  nextId: 1,
  immediateBorrows: 0,
  draining: false,
  onDrained: undefined,
  directBorrowers: 0
})

export const allLeases = <A>(state: State<A>): Array<Lease<A>> => {
  const all: Array<Lease<A>> = []
  for (const entry of state.entries) all.push(...entry.holders)
  return all
}
