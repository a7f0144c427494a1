/**
 * Admission: who may go to `Pool` now, and who waits here.
 *
 * `Pool` queues borrowers itself, but a borrower waiting inside `Pool` can
 * only be bounded by racing a timer fiber against it, which costs more than
 * the borrow. So borrowers wait here instead, in a FIFO queue with one
 * deadline timer for all of them, and go to `Pool` only when it can lend at
 * once, or when it may open a new connection for them (a "direct" borrower).
 */
import type { Clock } from "effect"
import { Effect } from "effect"
import type { PoolTimeout } from "../../../PoolError.ts"
import { PoolClosed } from "../../../PoolError.ts"
import type { Waiter } from "../../waitQueue.ts"
import { WaitQueue } from "../../waitQueue.ts"
import type { DirectToken, State } from "./state.ts"
import * as DeadlineSweep from "../deadlineSweep.ts"

export interface Admission {
  readonly size: () => number
  /** True when `Pool` can lend an idle connection at once. */
  readonly canLendNow: () => boolean
  /** Wakes the next waiter (a connection or capacity was freed). */
  readonly wakeOne: () => void
  /** Fails every waiter with `PoolClosed`. */
  readonly closeAll: () => void
  /**
   * Waits (up to the deadline) until this borrower may go to `Pool`; marks the token when it goes as a
   * "direct" borrower, for whom `Pool` opens a new connection. The caller settles the token on any exit.
   */
  readonly admit: (deadline: number, token: DirectToken) => Effect.Effect<void, PoolTimeout | PoolClosed>
  /** Admits (waiting up to the deadline), then runs `then`; the direct claim is settled on any exit. */
  readonly admitted: <X, EX, RX>(
    deadline: number,
    then: (token: DirectToken) => Effect.Effect<X, EX, RX>
  ) => Effect.Effect<X, EX | PoolTimeout | PoolClosed, RX>
  /** Ends a "direct" borrower's claim (once, whichever of lease or exit comes first). */
  readonly settle: (token: DirectToken | undefined) => void
  /** Fails waiters whose deadline has passed; sleeps until the next deadline. Runs forever. */
  readonly deadlineTimer: Effect.Effect<never>
}

export const make = <A>(
  state: State<A>,
  options: {
    readonly clock: Clock.Clock
    /** True when `Pool` can lend an idle connection at once. */
    readonly poolCanLend: () => boolean
    /** A `PoolTimeout` for a waiter past its deadline (counted). */
    readonly timeoutError: () => PoolTimeout
  }
): Admission => {
  const { clock, timeoutError } = options
  const queue = new WaitQueue<PoolTimeout | PoolClosed>()

  const canLendNow = options.poolCanLend

  /** True when `Pool` may open another connection for one more borrower. */
  const canGrow = () => state.entries.size + state.directBorrowers < state.max

  // Waking resumes the waiter inline; a release inside a woken borrower's
  // work wakes the next one, and so on: bound the depth, then go through
  // the scheduler, or 1,000 synchronous borrowers overflow the stack.
  let wakeDepth = 0
  const wakeOne = () => {
    const waiter = queue.shift()
    if (waiter === undefined) return
    waiter.woken = true
    if (wakeDepth < 32) {
      wakeDepth++
      try {
        waiter.resume(undefined)
      } finally {
        wakeDepth--
      }
    } else {
      setImmediate(() => waiter.resume(undefined))
    }
  }

  const wait = (deadline: number, returning: boolean) =>
    Effect.callback<void, PoolTimeout | PoolClosed>((resume) => {
      // Checked again here, synchronously, so no wake-up is lost.
      if (state.draining) return resume(Effect.fail(new PoolClosed({ pool: state.name })))
      if (canLendNow() || canGrow()) return resume(Effect.void)
      const waiter: Waiter<PoolTimeout | PoolClosed> = {
        deadline,
        resume: (failure) => resume(failure === undefined ? Effect.void : Effect.fail(failure)),
        prev: undefined,
        next: undefined,
        queued: false,
        woken: false
      }
      if (returning) queue.pushFront(waiter)
      else queue.pushBack(waiter)
      sweep.wake()
      return Effect.sync(() => {
        if (waiter.queued) queue.remove(waiter)
        else if (waiter.woken) wakeOne()
      })
    })

  const sweep = DeadlineSweep.make(clock, () => queue.head?.deadline, (now) => {
    while (queue.head !== undefined && queue.head.deadline <= now) queue.shift()!.resume(timeoutError())
    // A safety net: a connection is idle while borrowers wait.
    if (queue.size > 0 && canLendNow()) wakeOne()
  })
  const deadlineTimer = sweep.run

  /**
   * Waits (up to the deadline) until this borrower may go to `Pool`.
   * Answers whether it goes as a "direct" borrower, for whom `Pool` opens
   * a new connection.
   */
  const admit = (
    deadline: number,
    returning: boolean,
    token: DirectToken
  ): Effect.Effect<void, PoolTimeout | PoolClosed> =>
    Effect.suspend(() => {
      if (state.draining) return Effect.fail(new PoolClosed({ pool: state.name }))
      if (canLendNow()) return Effect.void
      if (canGrow()) {
        state.directBorrowers++
        token.direct = true
        return Effect.void
      }
      return Effect.flatMap(wait(deadline, returning), () => admit(deadline, true, token))
    })

  const settle = (token: DirectToken | undefined) => {
    if (token !== undefined && token.direct) {
      token.direct = false
      state.directBorrowers--
    }
  }

  const admitted = <X, EX, RX>(
    deadline: number,
    then: (token: DirectToken) => Effect.Effect<X, EX, RX>
  ): Effect.Effect<X, EX | PoolTimeout | PoolClosed, RX> =>
    Effect.suspend(() => {
      const token: DirectToken = { direct: false }
      return Effect.onExit(
        Effect.flatMap(admit(deadline, false, token), () => then(token)),
        () => Effect.sync(() => settle(token))
      )
    })

  return {
    size: () => queue.size,
    canLendNow,
    wakeOne,
    closeAll: () => {
      while (queue.size > 0) queue.shift()!.resume(new PoolClosed({ pool: state.name }))
    },
    admit: (deadline, token) => admit(deadline, false, token),
    admitted,
    settle,
    deadlineTimer
  }
}
