/**
 * Admission: the one FIFO queue of borrowers waiting for a connection (all
 * identities), their deadlines, and `dispatch`, which hands each waiter a
 * grant — a connection of its identity, a free slot, or another identity's
 * least recently used idle connection to re-bind or replace.
 *
 * Reuse with bounded fairness: when the head of the queue would have to
 * evict an idle connection, a waiter further back whose identity has that
 * connection idle is served with it instead (a reuse, no bind); and a
 * connection just returned is left to its identity for one scheduler turn
 * (a borrower running as it takes it without queueing: most callers borrow
 * again right after they return). Either happens at most `maxReuseStreak`
 * times in a row; then the head takes its turn, so no waiter starves.
 */
import { Clock, Effect, Scope } from "effect"
import { PoolClosed, PoolTimeout } from "../../PoolError.ts"
import type { Conn, Grant, Group, PoolState, Waiter } from "./state.ts"
import * as DeadlineSweep from "./deadlineSweep.ts"

export interface Admission<C> {
  /** Queues a waiter and dispatches (it may be granted at once). */
  readonly enqueue: (group: Group<C>, deadline: number) => Waiter<C>
  /** Suspends until the waiter has a grant, or fails it at its deadline or on shutdown. */
  readonly await: (waiter: Waiter<C>) => Effect.Effect<Grant<C>, PoolTimeout | PoolClosed>
  /** Leaves the queue (an interrupted waiter). */
  readonly leave: (waiter: Waiter<C>) => void
  /** Hands out whatever the state allows now. Call after any change that frees a connection, a slot or a limit. */
  readonly dispatch: () => void
  /** Fails every waiter with `PoolClosed`. */
  readonly closeAll: () => void
  readonly size: () => number
  /** Whether a newcomer may take an available connection of its identity ahead of the queue (and counts it). */
  readonly barge: () => boolean
}

export const make = <C>(
  state: PoolState<C>,
  maxReuseStreak: number,
  timeoutMillis: number
): Effect.Effect<Admission<C>, never, Scope.Scope> =>
  Effect.gen(function*() {
    const scope = yield* Scope.Scope
    let head: Waiter<C> | undefined
    let tail: Waiter<C> | undefined
    let size = 0
    /** Waiters served out of order (a reuse) since the head last got a grant. */
    let streak = 0
    /** An eviction put off by one scheduler turn, so the identity of the connection can borrow it again. */
    let deferred = false

    const remove = (waiter: Waiter<C>) => {
      if (!waiter.queued) return
      waiter.queued = false
      if (waiter.prev === undefined) head = waiter.next
      else waiter.prev.next = waiter.next
      if (waiter.next === undefined) tail = waiter.prev
      else waiter.next.prev = waiter.prev
      waiter.prev = undefined
      waiter.next = undefined
      waiter.group.waiting--
      size--
    }

    /**
     * Waiters to resume, in order. A resumed borrower runs on synchronously (it may borrow, return
     * and borrow again many times before it suspends), so it is resumed only once `dispatch` is done:
     * resumed from inside the loop, every `dispatch` it caused was a no-op (`dispatching`), and the
     * queue went unserved until it suspended. Meanwhile newcomers, refused barging by the streak,
     * queued behind a head that could have been served (1,000 identities: 50,000 such borrows a
     * second took the slow path).
     */
    const wakes: Array<() => void> = []
    let waking = false
    const flushWakes = () => {
      if (waking) return
      waking = true
      // One wake that throws must not strand the others: they hold grants, out of the queue.
      let failed: { readonly error: unknown } | undefined
      for (let i = 0; i < wakes.length; i++) {
        try {
          wakes[i]!()
        } catch (error) {
          failed ??= { error }
        }
      }
      wakes.length = 0
      waking = false
      if (failed !== undefined) throw failed.error
    }

    /** Takes `waiter` out of the queue and resumes it (its grant or failure is set), after the dispatch in progress. */
    const settle = (waiter: Waiter<C>) => {
      remove(waiter)
      const wake = waiter.wake
      if (wake !== undefined) {
        waiter.wake = undefined
        wakes.push(wake)
        if (!dispatching) flushWakes()
      }
    }

    const give = (waiter: Waiter<C>, grant: Grant<C>) => {
      waiter.grant = grant
      settle(waiter)
    }

    const fail = (waiter: Waiter<C>, failure: PoolTimeout | PoolClosed) => {
      waiter.failure = failure
      settle(waiter)
    }

    const { limits } = state
    /** Whether something can be granted to `waiter` now. */
    const servable = (waiter: Waiter<C>) => {
      const group = waiter.group
      if (group.avail.length > 0) return true
      if (group.count >= limits.maxPerIdentity) return false
      return state.open < limits.max || state.victimFor(group) !== undefined
    }

    const grantOwn = (waiter: Waiter<C>) => {
      const conn = state.takeAvail(waiter.group)!
      give(waiter, { _tag: "Lend", conn })
    }

    let dispatching = false
    const dispatch = () => {
      if (dispatching || size === 0) return
      dispatching = true
      try {
        while (size > 0) {
          let first = head
          while (first !== undefined && !servable(first)) first = first.next
          if (first === undefined) break
          const group = first.group
          if (group.avail.length > 0) {
            if (first === head) streak = 0
            grantOwn(first)
            continue
          }
          if (state.open < limits.max) {
            state.open++
            group.count++
            streak = 0
            give(first, { _tag: "Open" })
            continue
          }
          // The first servable waiter needs another identity's idle connection. A waiter of that
          // identity reuses it instead, a bounded number of times in a row.
          if (streak < maxReuseStreak) {
            let reuser = first.next
            while (reuser !== undefined && reuser.group.avail.length === 0) reuser = reuser.next
            if (reuser !== undefined) {
              streak++
              grantOwn(reuser)
              continue
            }
          }
          if (streak < maxReuseStreak && !deferred) {
            // Leave it to its identity for one turn; then the head evicts it.
            deferred = true
            setImmediate(() => {
              deferred = false
              streak = maxReuseStreak
              dispatch()
            })
            break
          }
          if (deferred && streak < maxReuseStreak) break
          const victim: Conn<C> = state.victimFor(group)!
          state.detach(victim)
          victim.group.count--
          group.count++
          state.counters.evictions++
          streak = 0
          give(first, { _tag: "Evict", conn: victim })
        }
      } finally {
        dispatching = false
      }
      flushWakes()
    }

    const enqueue = (group: Group<C>, deadline: number): Waiter<C> => {
      const waiter: Waiter<C> = {
        group,
        deadline,
        prev: tail,
        next: undefined,
        queued: true,
        grant: undefined,
        failure: undefined,
        wake: undefined
      }
      if (tail === undefined) head = waiter
      else tail.next = waiter
      tail = waiter
      size++
      group.waiting++
      dispatch()
      if (waiter.queued) sweep.wake()
      return waiter
    }

    const await_ = (waiter: Waiter<C>): Effect.Effect<Grant<C>, PoolTimeout | PoolClosed> =>
      Effect.suspend(() => {
        if (waiter.grant !== undefined) return Effect.succeed(waiter.grant)
        if (waiter.failure !== undefined) return Effect.fail(waiter.failure)
        return Effect.flatMap(
          Effect.callback<void>((resume) => {
            if (waiter.grant !== undefined || waiter.failure !== undefined) return resume(Effect.void)
            waiter.wake = () => resume(Effect.void)
          }),
          () => waiter.grant !== undefined ? Effect.succeed(waiter.grant) : Effect.fail(waiter.failure!)
        )
      })

    const clock = yield* Clock.Clock
    const timeoutError = () => {
      state.counters.timeouts++
      return new PoolTimeout({ pool: state.name, timeoutMillis, snapshot: state.snapshot(size) })
    }
    /** Fails waiters whose deadline has passed (FIFO with one timeout: deadlines are in queue order). */
    const sweep = DeadlineSweep.make(clock, () => head?.deadline, (now) => {
      while (head !== undefined && head.deadline <= now) fail(head, timeoutError())
      dispatch()
    })
    const deadlineTimer = sweep.run
    yield* Effect.forkIn(deadlineTimer, scope)

    return {
      enqueue,
      await: await_,
      leave: (waiter) => {
        remove(waiter)
        dispatch()
      },
      dispatch,
      closeAll: () => {
        while (head !== undefined) fail(head, new PoolClosed({ pool: state.name }))
      },
      size: () => size,
      barge: () => {
        if (size === 0) return true
        if (streak >= maxReuseStreak) return false
        streak++
        return true
      }
    }
  })
