/**
 * Lease: borrowing a connection from `Pool`, checking it before it is lent
 * (`maxLifetime`, and `validate` past `validationWindow`), running the
 * caller's work with it (`use`, the fast path with no `Scope` per borrow) or
 * handing it to the caller's scope (`get`), and ending the borrow: a broken
 * or too old connection is retired, else the next waiter is woken.
 */
import type { Clock, Context, Fiber } from "effect"
import { Cause, Effect, Exit, Pool, Scope } from "effect"
import type * as ConnectionPool from "../../../ConnectionPool.ts"
import type { ConnectTimeout } from "../../../PoolError.ts"
import type { Capacity } from "../../capacity.ts"
import type { PoolMetrics } from "../../poolMetrics.ts"
import type { Admission } from "./admission.ts"
import type { DirectToken, Entry, Lease, State } from "./state.ts"
import { RETRY, type Retry } from "./state.ts"

export interface LeaseOptions<A> {
  readonly clock: Clock.Clock
  readonly validate: ((connection: A) => Effect.Effect<unknown, unknown>) | undefined
  readonly isBroken: ((error: unknown) => boolean) | undefined
  readonly maxLifetime: number
  readonly validationWindow: number
  readonly connectTimeout: number
  readonly acquireTimeout: number
  readonly capacity: Capacity | undefined
  readonly metrics: PoolMetrics
  readonly metricContext: Context.Context<never>
  /** Retires a connection: `Pool` closes it (now if idle, else once returned). */
  readonly retire: (entry: Entry<A>) => Effect.Effect<void>
}

export const make = <A, E>(
  state: State<A>,
  pool: Pool.Pool<Entry<A>, E | ConnectTimeout>,
  admission: Admission,
  options: LeaseOptions<A>
) => {
  const { acquireTimeout, capacity, clock, isBroken, maxLifetime, metricContext, retire, validate, validationWindow } =
    options
  const m = options.metrics
  const counters = state.counters

  const failValidation = (entry: Entry<A>) =>
    Effect.suspend(() => {
      counters.validationFailures++
      m.validationFailures.updateUnsafe(1, metricContext)
      return retire(entry)
    })

  const isValid = (entry: Entry<A>): Effect.Effect<boolean> =>
    validate === undefined ? Effect.succeed(true) : validate(entry.connection).pipe(
      Effect.map((result) => result !== false),
      Effect.timeoutOrElse({ duration: options.connectTimeout, orElse: () => Effect.succeed(false) }),
      Effect.catchCause(() => Effect.succeed(false))
    )

  /**
   * Checks an entry just taken from the pool: too old, or failing
   * validation, and it is retired (the caller then borrows another).
   */
  const checkOut = (entry: Entry<A>): Effect.Effect<boolean> => {
    const now = clock.currentTimeMillisUnsafe()
    if (entry.retired) return Effect.succeed(false)
    if (now - entry.createdAt >= maxLifetime) return Effect.as(retire(entry), false)
    if (validate !== undefined && entry.holders.length === 0 && now - entry.lastUsedAt >= validationWindow) {
      return Effect.flatMap(isValid(entry), (ok) => ok ? Effect.succeed(true) : Effect.as(failValidation(entry), false))
    }
    return Effect.succeed(true)
  }

  const beginLease = (
    entry: Entry<A>,
    fiber: Fiber.Fiber<unknown, unknown>,
    startedAt: number,
    now: number
  ): Lease<A> => {
    counters.borrows++
    // Updating an Effect metric costs more than an immediate borrow, so only
    // borrows that waited are timed; the rest are counted, and the count
    // flushed by the housekeeper.
    if (now > startedAt) m.acquireTime.updateUnsafe(now - startedAt, metricContext)
    else state.immediateBorrows++
    entry.lent = true
    entry.lastUsedAt = now
    const lease: Lease<A> = { entry, fiber, since: now, reported: false }
    entry.holders.push(lease)
    state.activeLeases++
    return lease
  }

  /**
   * Ends a lease, after `Pool` took the connection back: retires the
   * connection if it broke or outlived `maxLifetime`, then wakes the next
   * waiting borrower. `undefined` when there is nothing more to run (the common case: an exit
   * finalizer that returns no effect costs the fiber one step less, about a fifth of a borrow).
   */
  const endLease = (lease: Lease<A> | undefined, exit: Exit.Exit<unknown, unknown>): Effect.Effect<void> | undefined => {
    if (lease === undefined) {
      admission.wakeOne()
      return undefined
    }
    const entry = lease.entry
    const holders = entry.holders
    const index = holders.indexOf(lease)
    holders[index] = holders[holders.length - 1]!
    holders.pop()
    state.activeLeases--
    if (state.activeLeases === 0 && state.onDrained !== undefined) state.onDrained()
    entry.lastUsedAt = clock.currentTimeMillisUnsafe()
    const broken = isBroken !== undefined && Exit.isFailure(exit) &&
      exit.cause.reasons.some((reason) => reason._tag === "Fail" && isBroken(reason.error))
    const shrunk = capacity !== undefined && entry.holders.length === 0 && capacity.overLimit()
    if (broken || shrunk || entry.lastUsedAt - entry.createdAt >= maxLifetime) {
      // Closing it frees capacity: its finalizer wakes the next waiter (shrunk: see `Capacity.resize`).
      return retire(entry)
    }
    admission.wakeOne()
    if (capacity !== undefined && entry.holders.length === 0) capacity.idleAppeared()
    return undefined
  }

  /** Whether an entry can be lent without checking it first (the common case). */
  const isFresh = (entry: Entry<A>, now: number) =>
    !entry.retired && now - entry.createdAt < maxLifetime &&
    (validate === undefined || entry.holders.length > 0 || now - entry.lastUsedAt < validationWindow)

  /**
   * One borrow through `Pool.use` — the fast path, no `Scope` per borrow.
   * Fails with `RETRY` when the connection it got turned out unusable.
   */
  const attempt = <B, E2, R2>(
    fiber: Fiber.Fiber<unknown, unknown>,
    f: (connection: A) => Effect.Effect<B, E2, R2>,
    startedAt: number,
    token: DirectToken | undefined,
    immediate: boolean
  ): Effect.Effect<B, E | E2 | ConnectTimeout | Retry, R2> => {
    let lease: Lease<A> | undefined
    let now = startedAt
    const start = (entry: Entry<A>): Effect.Effect<B, E2, R2> => {
      lease = beginLease(entry, fiber, startedAt, now)
      return f(entry.connection)
    }
    const leased = Pool.use(pool, (entry): Effect.Effect<B, E2 | Retry, R2> => {
      admission.settle(token)
      // An immediate borrow took no time: its start time is the time now.
      if (!immediate) now = clock.currentTimeMillisUnsafe()
      if (isFresh(entry, now)) return start(entry)
      return Effect.flatMap(
        checkOut(entry),
        (ok): Effect.Effect<B, E2 | Retry, R2> => {
          if (!ok) return Effect.fail(RETRY)
          now = clock.currentTimeMillisUnsafe()
          return start(entry)
        }
      )
    })
    return Effect.onExitPrimitive(leased, (exit) => {
      admission.settle(token)
      return endLease(lease, exit)
    })
  }

  /** Whether a borrow failed only because its connection was unusable (see `attempt`). */
  const isRetry = (cause: Cause.Cause<unknown>) => {
    const reasons = cause.reasons
    return reasons.length === 1 && Cause.isFailReason(reasons[0]!) && reasons[0].error === RETRY
  }

  const use = <B, E2, R2>(
    f: (connection: A) => Effect.Effect<B, E2, R2>
  ): Effect.Effect<B, E | E2 | ConnectionPool.BorrowError, R2> =>
    Effect.withFiber((fiber) => {
      const startedAt = clock.currentTimeMillisUnsafe()
      const deadline = startedAt + acquireTimeout
      const borrow = (first: boolean): Effect.Effect<B, E | E2 | ConnectionPool.BorrowError, R2> =>
        Effect.catchCause(
          // The fast path skips `admit` when a connection is idle.
          !state.draining && admission.size() === 0 && admission.canLendNow()
            ? attempt(fiber, f, startedAt, undefined, first)
            : admission.admitted(deadline, (token) => attempt(fiber, f, startedAt, token, false)),
          (cause) =>
            isRetry(cause) ? borrow(false) : Effect.failCause(cause as Cause.Cause<E | E2 | ConnectionPool.BorrowError>)
        )
      return borrow(true)
    })

  const get: Effect.Effect<A, E | ConnectionPool.BorrowError, Scope.Scope> = Effect.withFiber((fiber) =>
    Effect.gen(function*() {
      const scope = yield* Scope.Scope
      const startedAt = clock.currentTimeMillisUnsafe()
      const deadline = startedAt + acquireTimeout
      while (true) {
        const attemptScope = yield* Scope.fork(scope, "sequential")
        const held: { lease?: Lease<A> } = {}
        // Added before `Pool.get` adds its release, so it runs after it:
        // the lease ends once `Pool` has the connection back.
        yield* Scope.addFinalizer(attemptScope, Effect.suspend(() => endLease(held.lease, Exit.void) ?? Effect.void))
        const entry = yield* admission.admitted(deadline, () => Pool.get(pool).pipe(Scope.provide(attemptScope))).pipe(
          Effect.onError((cause) => Scope.close(attemptScope, Exit.failCause(cause)))
        )
        if (!(yield* checkOut(entry))) {
          yield* Scope.close(attemptScope, Exit.void)
          continue
        }
        held.lease = beginLease(entry, fiber, startedAt, clock.currentTimeMillisUnsafe())
        return entry.connection
      }
    })
  )

  return { use, get, isValid, failValidation }
}
