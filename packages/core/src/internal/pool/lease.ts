/**
 * Lease: borrowing a connection bound as the caller's identity, running the
 * caller's work with it, and giving it back. The fast path — an available
 * connection of that identity and nobody of it waiting — takes it at once,
 * without a queue, a scope or a fiber. Otherwise the borrower waits for a
 * grant from admission and realizes it: opens a connection in the slot it
 * was given, or re-binds (or replaces) another identity's idle connection.
 * Every connection is checked right before it is lent, in the borrower's
 * fiber: the driver's `isReady` (bound identity still known), `maxLifetime`
 * and, past `validationWindow`, `validate`.
 */
import type { Cause } from "effect"
import { Clock, Effect, Fiber } from "effect"
import type { BorrowError } from "../../ConnectionPool.ts"
import type { Credentials } from "../../Identity.ts"
import type { PoolClosed, PoolTimeout } from "../../PoolError.ts"
import type { PoolMetrics } from "../poolMetrics.ts"
import type { Admission } from "./admission.ts"
import type { Connector } from "./connector.ts"
import type { Conn, Grant, Group, Lease, PoolState } from "./state.ts"
import * as FiberStack from "../fiberStack.ts"

type Restore = <A, E2, R>(e: Effect.Effect<A, E2, R>) => Effect.Effect<A, E2, R>

export interface LeaseOptions<C> {
  readonly isReady: ((connection: C) => boolean) | undefined
  readonly validate: ((connection: C, identity: Credentials | undefined) => Effect.Effect<unknown, unknown>) | undefined
  readonly isBroken: ((error: unknown) => boolean) | undefined
  readonly maxLifetime: number
  readonly validationWindow: number
  readonly acquireTimeout: number
  /** Where borrows that had to wait record how long they waited. */
  readonly metrics: PoolMetrics
  readonly connectTimeout: number
  readonly groupOf: (identity: Credentials | undefined) => Group<C>
  readonly closed: () => PoolClosed | undefined
  /** Called when the last lease ends (drain waits for it). */
  readonly onIdle: () => void
}

/** Ends a lease; what to run next, if anything (see `release` in `make`). */
type Release<C> = (conn: Conn<C>, lease: Lease<C>, failure: Cause.Cause<unknown> | undefined) => Effect.Effect<void> | undefined

/**
 * One lease in progress, pushed as a frame on the borrower's stack (`../fiberStack.ts`): it ends the
 * lease when the borrower's work ends, however it ends, masked as `Effect.onExitPrimitive` runs its
 * finalizer.
 */
class LeaseFrame<C> {
  constructor(readonly release: Release<C>, readonly conn: Conn<C>, readonly lease: Lease<C>) {}
}

FiberStack.defineFrame(LeaseFrame<unknown>, {
  onPop: (_frame, fiber) => FiberStack.mask(fiber),
  onExit: (frame, failure) => frame.release(frame.conn, frame.lease, failure)
})

export const make = <C, E>(
  state: PoolState<C>,
  admission: Admission<C>,
  connector: Connector<C, E>,
  options: LeaseOptions<C>
) =>
  Effect.gen(function*() {
    const clock = yield* Clock.Clock
    const { isReady, validate, isBroken, maxLifetime, validationWindow, acquireTimeout, connectTimeout } = options

    /**
     * Whether a connection may be lent as it is: `true`, `false` (retire it), or `"validate"` (idle past
     * `validationWindow`: ask the server first).
     */
    const verdict = (conn: Conn<C>, fresh: boolean, now: number): boolean | "validate" => {
      if (conn.retired || conn.group.retired) return false
      if (isReady !== undefined && !isReady(conn.connection)) return false
      if (now - conn.createdAt >= maxLifetime) return false
      if (!fresh && validate !== undefined && conn.holders === 1 && now - conn.lastUsedAt >= validationWindow) {
        return "validate"
      }
      return true
    }

    /** Whether a connection may be lent; a failed check retires it (the borrower then tries again). */
    const check = (conn: Conn<C>, fresh: boolean, now: number): boolean | Effect.Effect<boolean> => {
      const answer = verdict(conn, fresh, now)
      if (answer !== "validate") return answer
      return validate!(conn.connection, conn.group.identity).pipe(
        Effect.map((result) => result !== false),
        Effect.timeoutOrElse({ duration: connectTimeout, orElse: () => Effect.succeed(false) }),
        Effect.catchCause(() => Effect.succeed(false)),
        Effect.map((ok) => {
          if (!ok) {
            state.counters.validationFailures++
            return false
          }
          // Validation may be slow: the driver may have lost the identity meanwhile.
          return isReady === undefined || isReady(conn.connection)
        })
      )
    }

    /**
     * An available connection of `group`, taken at once (counted as held): only when nobody of the
     * identity waits and the fairness bound lets a newcomer go ahead of the queue.
     */
    const takeAtOnce = (group: Group<C>): Conn<C> | undefined =>
      group.waiting === 0 && !state.draining && (group.avail.length === 0 || admission.barge())
        ? state.takeAvail(group)
        : undefined

    /** Records a borrow of `conn` that starts now. */
    const beginLease = (
      conn: Conn<C>,
      group: Group<C>,
      fiber: Fiber.Fiber<unknown, unknown>,
      now: number,
      reused: boolean
    ): Lease<C> => {
      state.counters.borrows++
      group.borrows++
      if (reused) {
        group.hits++
        state.counters.hits++
      }
      group.lastUsedAt = conn.lastUsedAt = now
      const lease: Lease<C> = { conn, fiber, since: now, reported: false }
      state.leases.add(lease)
      return lease
    }

    /** Gives back the holder's place on a connection that failed its check, and retires it. */
    const discard = (conn: Conn<C>) =>
      Effect.suspend(() => {
        conn.holders--
        return connector.retire(conn)
      })

    /**
     * Ends a lease: a broken, retired or too old connection is closed, the others are available again
     * (`undefined`: nothing more to run, the common case; an exit finalizer that returns no effect costs
     * the fiber no further step).
     */
    const release = (conn: Conn<C>, lease: Lease<C>, failure: Cause.Cause<unknown> | undefined): Effect.Effect<void> | undefined => {
      state.leases.delete(lease)
      if (state.leases.size === 0) options.onIdle()
      const now = clock.currentTimeMillisUnsafe()
      const broken = isBroken !== undefined && failure !== undefined &&
        failure.reasons.some((reason) => reason._tag === "Fail" && isBroken(reason.error))
      const { limits } = state
      if (
        broken || conn.retired || conn.group.retired || now - conn.createdAt >= maxLifetime || state.draining ||
        // Shrunk by `resize`: the surplus closes as it is returned.
        state.open > limits.max || conn.group.count > limits.maxPerIdentity
      ) {
        conn.holders--
        conn.lastUsedAt = now
        return connector.retire(conn)
      }
      state.unhold(conn, now)
      admission.dispatch()
      return undefined
    }


    /** Gives back a grant its waiter can no longer use (it was interrupted). */
    const undo = (grant: Grant<C>, group: Group<C>) => {
      const now = clock.currentTimeMillisUnsafe()
      if (grant._tag === "Lend") {
        state.unhold(grant.conn, now)
        admission.dispatch()
      } else if (grant._tag === "Open") {
        connector.releaseSlot(group)
      } else {
        // Still bound as its former identity: back to it.
        group.count--
        grant.conn.group.count++
        state.unhold(grant.conn, now)
        admission.dispatch()
      }
    }

    /** Turns a grant into a connection held by this borrower: `undefined` when it must try again. */
    const realize = (
      grant: Grant<C>,
      group: Group<C>,
      restore: Restore
    ): Effect.Effect<Conn<C> | undefined, E | BorrowError> => {
      switch (grant._tag) {
        case "Lend":
          return Effect.succeed(grant.conn)
        case "Open":
          return connector.open(group, restore)
        case "Evict":
          return Effect.flatMap(
            connector.rebind(grant.conn, group, restore),
            (ok): Effect.Effect<Conn<C>, E | BorrowError> => ok ? Effect.succeed(grant.conn) : connector.open(group, restore)
          )
      }
    }

    /** Waits for a grant; an interrupted waiter gives back whatever it was granted. */
    const wait = (group: Group<C>, deadline: number, restore: Restore): Effect.Effect<Grant<C>, PoolTimeout | PoolClosed> => {
      const waiter = admission.enqueue(group, deadline)
      if (waiter.grant !== undefined) return Effect.succeed(waiter.grant)
      return Effect.flatMap(Effect.exit(restore(admission.await(waiter))), (exit) => {
        if (exit._tag === "Success") return exit
        if (waiter.grant !== undefined) undo(waiter.grant, group)
        else admission.leave(waiter)
        return exit
      })
    }

    /**
     * A borrow: at once when a connection of the identity is available, fresh, and nobody of it waits
     * (one step: the lease is begun here and ended by a frame on the fiber's stack, see
     * `../fiberStack.ts`); else through `borrowSlow`.
     */
    const use = <A, E2, R>(
      identity: Credentials | undefined,
      f: (connection: C) => Effect.Effect<A, E2, R>
    ): Effect.Effect<A, E | E2 | BorrowError, R> =>
      Effect.withFiber((fiber) => {
        const closed = options.closed()
        if (closed !== undefined) return Effect.fail(closed)
        const group = options.groupOf(identity)
        const internals = FiberStack.internalsOf(fiber)
        if (internals === undefined) return borrowSlow(group, f, undefined)
        const conn = takeAtOnce(group)
        if (conn === undefined) return borrowSlow(group, f, undefined)
        const now = clock.currentTimeMillisUnsafe()
        if (verdict(conn, false, now) !== true) return borrowSlow(group, f, conn)
        const lease = beginLease(conn, group, fiber, now, true)
        FiberStack.push(internals, new LeaseFrame(release, conn, lease))
        return f(conn.connection)
      })

    /**
     * A borrow that may wait, open, re-bind or validate (uninterruptible but for the waits and the
     * caller's work); `taken`: a connection the fast path took and found it must check.
     */
    const borrowSlow = <A, E2, R>(
      group: Group<C>,
      f: (connection: C) => Effect.Effect<A, E2, R>,
      taken: Conn<C> | undefined
    ): Effect.Effect<A, E | E2 | BorrowError, R> =>
      Effect.uninterruptibleMask((restore) =>
        Effect.suspend(() => {
          const startedAt = clock.currentTimeMillisUnsafe()
          const deadline = startedAt + acquireTimeout
          const fiber = Fiber.getCurrent()! as Fiber.Fiber<unknown, unknown>

          /** One clock read per borrow that did not wait: `startedAt`; later attempts read it again. */
          let now = startedAt
          const lend = (conn: Conn<C>, reused: boolean): Effect.Effect<A, E2, R> => {
            const lease = beginLease(conn, group, fiber, now, reused)
            const internals = FiberStack.internalsOf(fiber)
            if (internals !== undefined) {
              FiberStack.push(internals, new LeaseFrame(release, conn, lease))
              return restore(f(conn.connection))
            }
            return Effect.onExitPrimitive(
              restore(f(conn.connection)),
              (exit) => release(conn, lease, exit._tag === "Failure" ? exit.cause : undefined)
            )
          }

          /** Checks a connection this borrower holds; lends it, or discards it and borrows again. */
          const tryLend = (conn: Conn<C>, reused: boolean): Effect.Effect<A, E | E2 | BorrowError, R> => {
            const ok = check(conn, !reused, now)
            if (ok === true) return lend(conn, reused)
            if (ok === false) return Effect.andThen(discard(conn), borrow())
            // An interrupted validation leaves the connection in an unknown state: it is retired.
            return Effect.flatMap(Effect.onInterrupt(restore(ok), () => discard(conn)), (passed) => {
              now = clock.currentTimeMillisUnsafe()
              // Interruptible while validating: still ours, checked again.
              if (passed && (isReady === undefined || isReady(conn.connection))) return lend(conn, reused)
              return Effect.andThen(discard(conn), borrow())
            })
          }

          const borrow = (): Effect.Effect<A, E | E2 | BorrowError, R> => {
            const conn = takeAtOnce(group)
            if (conn !== undefined) return tryLend(conn, true)
            return Effect.flatMap(wait(group, deadline, restore), (grant) =>
              // A connection handed over (the common grant) needs no further step to realize.
              grant._tag === "Lend" ? waited(grant.conn, true) : Effect.flatMap(
                realize(grant, group, restore),
                (conn): Effect.Effect<A, E | E2 | BorrowError, R> => {
                  if (conn !== undefined) return waited(conn, false)
                  now = clock.currentTimeMillisUnsafe()
                  return borrow()
                }
              ))
          }

          /** Lends (after its check) a connection this borrower waited for; records how long. */
          const waited = (conn: Conn<C>, reused: boolean): Effect.Effect<A, E | E2 | BorrowError, R> => {
            now = clock.currentTimeMillisUnsafe()
            state.counters.waited++
            options.metrics.acquireTime.updateUnsafe(now - startedAt, fiber.context)
            return tryLend(conn, reused)
          }
          return taken === undefined ? borrow() : tryLend(taken, true)
        })
      )

    return { use }
  })
