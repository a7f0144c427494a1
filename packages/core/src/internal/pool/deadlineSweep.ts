/**
 * The waiters' deadline timer both pools share: one fiber that parks while
 * nobody waits, sleeps on the `Clock` until the first waiter's deadline
 * (waiters are in deadline order: FIFO under one timeout), and then lets the
 * pool fail every waiter whose deadline has passed.
 *
 * @internal
 */
import { Effect } from "effect"
import type { Clock } from "effect"

/** A deadline timer; `run` is forked into the pool's scope. */
export interface DeadlineSweep {
  /** The timer's loop (never ends; interrupted with the pool's scope). */
  readonly run: Effect.Effect<never>
  /** Wakes the parked timer: call when a waiter was queued. */
  readonly wake: () => void
}

/**
 * `first` is the earliest waiter's deadline (`undefined`: nobody waits);
 * `expire(now)` fails every waiter whose deadline is at or before `now`.
 */
export const make = (
  clock: Clock.Clock,
  first: () => number | undefined,
  expire: (now: number) => void
): DeadlineSweep => {
  let parked: (() => void) | undefined
  const run = Effect.gen(function*() {
    while (true) {
      const deadline = first()
      if (deadline === undefined) {
        yield* Effect.callback<void>((resume) => {
          parked = () => {
            parked = undefined
            resume(Effect.void)
          }
          return Effect.sync(() => {
            parked = undefined
          })
        })
        continue
      }
      const now = clock.currentTimeMillisUnsafe()
      if (deadline > now) {
        yield* Effect.sleep(deadline - now)
        continue
      }
      expire(now)
    }
  })
  return {
    run,
    wake: () => {
      if (parked !== undefined) parked()
    }
  }
}
