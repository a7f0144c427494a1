/**
 * Drain: on shutdown, new borrowers fail with `PoolClosed`, waiters are
 * failed, borrowed connections are awaited up to `drainTimeout` (then their
 * borrowers are interrupted), and every connection is closed.
 */
import { Effect } from "effect"
import type { Admission } from "./admission.ts"
import type { Connector } from "./connector.ts"
import type { PoolState } from "./state.ts"

export const make = <C, E>(state: PoolState<C>, admission: Admission<C>, connector: Connector<C, E>, drainTimeout: number) => {
  let onDrained: (() => void) | undefined
  let onClosed: (() => void) | undefined
  const drain = Effect.gen(function*() {
    state.draining = true
    admission.closeAll()
    for (const conn of [...state.idle]) yield* connector.retire(conn)
    if (state.leases.size > 0) {
      yield* Effect.timeoutOption(
        Effect.callback<void>((resume) => {
          onDrained = () => resume(Effect.void)
          if (state.leases.size === 0) resume(Effect.void)
        }),
        drainTimeout
      )
    }
    if (state.leases.size > 0) {
      yield* Effect.logWarning(
        `pool "${state.name}": ${state.leases.size} borrow(s) still borrowed after the ${drainTimeout} ms drain timeout; ` +
          `interrupting their borrowers`
      )
      // Each borrower closes its connection on the way out (the pool is draining).
      for (const lease of [...state.leases]) lease.fiber.interruptUnsafe()
    }
    for (const conn of [...state.conns]) yield* connector.close(conn)
    // Closes run in fibers of their own: the pool is closed once the last one is done.
    if (state.closing > 0) {
      yield* Effect.callback<void>((resume) => {
        onClosed = () => resume(Effect.void)
        if (state.closing === 0) resume(Effect.void)
      })
    }
  })
  return {
    drain,
    /** Called by lease when the last borrow ends. */
    onIdle: () => {
      if (onDrained !== undefined) onDrained()
    },
    /** Called by the connector when the last close in progress ends. */
    onClosed: () => {
      if (onClosed !== undefined) onClosed()
    }
  }
}
