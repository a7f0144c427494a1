/**
 * The one adapter that reads Effect's `Pool` runtime state (`pool.state`:
 * `items`, `waiters`, `availableHead`). `Pool` exposes that state as a
 * model "for inspection and implementation support", but no operation of
 * its high-level API answers these questions synchronously, and the
 * `ConnectionPool` needs them on every borrow (its own admission queue
 * decides who may go to `Pool` now) and on every stats/metrics read. Nothing
 * else in Tether touches `pool.state`.
 *
 * What would remove it: a synchronous, read-only `Pool` API, e.g.
 * `Pool.canLendUnsafe(pool)` (an item is available and nobody waits inside
 * `Pool`), `Pool.waitingUnsafe(pool)` (borrowers waiting inside `Pool`),
 * `Pool.sizesUnsafe(pool)` (`{ idle, inUse }` of the acquired items) and
 * `Pool.holdsUnsafe(pool, value)` (whether `Pool` has taken a just-acquired
 * value into its items). With those, this file goes and the callers use them.
 */
import type { Pool } from "effect"

/** True when `Pool` can lend an idle item at once (nobody waits inside it, and its next available item is open). */
export const canLendNow = <A, E>(pool: Pool.Pool<A, E>): boolean => {
  const head = pool.state.availableHead
  return pool.state.waiters.size === 0 && head !== undefined && head.exit._tag === "Success"
}

/** Borrowers waiting inside `Pool` itself. */
export const waiting = <A, E>(pool: Pool.Pool<A, E>): number => pool.state.waiters.size

/** Whether `Pool` holds the value among its items yet (a just-acquired one is handed to `Pool` a step later). */
export const holds = <A, E>(pool: Pool.Pool<A, E>, value: A): boolean => {
  for (const item of pool.state.items) {
    if (item.exit._tag === "Success" && item.exit.value === value) return true
  }
  return false
}

/** The open items of `Pool`: idle ones and those lent at least once now. */
export const sizes = <A, E>(pool: Pool.Pool<A, E>): { readonly idle: number; readonly inUse: number } => {
  let idle = 0
  let inUse = 0
  for (const item of pool.state.items) {
    if (item.exit._tag !== "Success") continue
    if (item.refCount > 0) inUse++
    else idle++
  }
  return { idle, inUse }
}
