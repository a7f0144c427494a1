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
import { RETRY } from "./state.ts"
import * as FiberStack from "../../fiberStack.ts"

/** What a `Borrow` frame calls back into: the lease module of its pool. */
interface Owner<A> {
  /** Inside `Pool.use`: checks the connection and lends it, or fails with `RETRY`. */
  readonly begin: (borrow: Borrow<A>, entry: Entry<A>) => Effect.Effect<unknown, unknown, unknown>
  /** The borrow ended: settles its direct claim and ends its lease. What to run next, if anything. */
  readonly finish: (borrow: Borrow<A>, failure: Cause.Cause<unknown> | undefined) => Effect.Effect<void> | undefined
  /** Borrows again, after `RETRY`. */
  readonly retry: (borrow: Borrow<A>) => Effect.Effect<unknown, unknown, unknown>
}

/**
 * One borrow in progress. Pushed as a frame on the borrowing fiber's stack (`fiberStack.ts`), it sees
 * the borrow end however it ends — after `Pool` has the connection back, as `Pool.use` pushes its
 * release above it — and ends the lease, with the fiber masked as `onExitPrimitive` would; on `RETRY`
 * it borrows again, unmasked (the next borrow runs the caller's work).
 */
class Borrow<A> {
  lease: Lease<A> | undefined = undefined
  token: DirectToken | undefined = undefined
  /** Whether it went to `Pool` (else it holds no capacity to pass on when it ends). */
  entered = false
  /** Whether it is failing with `RETRY`, to borrow again. */
  retrying = false
  /** The callback given to `Pool.use`. */
  readonly begin: (entry: Entry<A>) => Effect.Effect<unknown, unknown, unknown>
  constructor(
    readonly owner: Owner<A>,
    readonly fiber: Fiber.Fiber<unknown, unknown>,
    readonly f: (connection: A) => Effect.Effect<unknown, unknown, unknown>,
    readonly startedAt: number,
    /** Lent straight away, on the first try: no time passed, so no clock read. */
    readonly immediate: boolean
  ) {
    this.begin = (entry) => owner.begin(this, entry)
  }
}

/** Whether a borrow failed only because its connection was unusable (see `Borrow`). */
const isRetry = (cause: Cause.Cause<unknown>) => {
  const reasons = cause.reasons
  return reasons.length === 1 && Cause.isFailReason(reasons[0]!) && reasons[0].error === RETRY
}

FiberStack.defineFrame(Borrow<unknown>, {
  // Not masked when borrowing again: the next borrow runs the caller's work.
  onPop: (borrow, fiber) => {
    if (!borrow.retrying) FiberStack.mask(fiber)
  },
  onExit: (borrow, failure) => borrow.owner.finish(borrow, failure),
  recover: (borrow, cause) => borrow.retrying && isRetry(cause) ? borrow.owner.retry(borrow) : undefined
})

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
   * Whether an entry can be lent as it is: `true` (the common case), `false` (retired, or too old), or
   * `"validate"` (idle past `validationWindow`: ask the server first).
   */
  const verdict = (entry: Entry<A>, now: number): boolean | "validate" => {
    if (entry.retired || now - entry.createdAt >= maxLifetime) return false
    return validate !== undefined && entry.holders.length === 0 && now - entry.lastUsedAt >= validationWindow
      ? "validate"
      : true
  }

  /**
   * Checks an entry just taken from the pool: too old, or failing
   * validation, and it is retired (the caller then borrows another).
   */
  const checkOut = (entry: Entry<A>): Effect.Effect<boolean> => {
    const answer = verdict(entry, clock.currentTimeMillisUnsafe())
    if (answer === true) return Effect.succeed(true)
    if (answer === "validate") {
      return Effect.flatMap(isValid(entry), (ok) => ok ? Effect.succeed(true) : Effect.as(failValidation(entry), false))
    }
    return entry.retired ? Effect.succeed(false) : Effect.as(retire(entry), false)
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
  const endLease = (lease: Lease<A>, failure: Cause.Cause<unknown> | undefined): Effect.Effect<void> | undefined => {
    const entry = lease.entry
    const holders = entry.holders
    const index = holders.indexOf(lease)
    holders[index] = holders[holders.length - 1]!
    holders.pop()
    state.activeLeases--
    if (state.activeLeases === 0 && state.onDrained !== undefined) state.onDrained()
    entry.lastUsedAt = clock.currentTimeMillisUnsafe()
    const broken = isBroken !== undefined && failure !== undefined &&
      failure.reasons.some((reason) => reason._tag === "Fail" && isBroken(reason.error))
    const shrunk = capacity !== undefined && entry.holders.length === 0 && capacity.overLimit()
    if (broken || shrunk || entry.lastUsedAt - entry.createdAt >= maxLifetime) {
      // Closing it frees capacity: its finalizer wakes the next waiter (shrunk: see `Capacity.resize`).
      return retire(entry)
    }
    admission.wakeOne()
    if (capacity !== undefined && entry.holders.length === 0) capacity.idleAppeared()
    return undefined
  }

  /** Ends a borrow: its lease, or without one, whatever it was given back (or never took) passes on to the next waiter. */
  const endBorrow = (lease: Lease<A> | undefined, failure: Cause.Cause<unknown> | undefined) => {
    if (lease !== undefined) return endLease(lease, failure)
    admission.wakeOne()
    return undefined
  }

  const lend = (borrow: Borrow<A>, entry: Entry<A>, now: number) => {
    borrow.lease = beginLease(entry, borrow.fiber, borrow.startedAt, now)
    return borrow.f(entry.connection)
  }

  const owner: Owner<A> = {
    // Inside `Pool.use`, with the connection: check it, then lend it, or fail with `RETRY`.
    begin: (borrow, entry) => {
      admission.settle(borrow.token)
      // An immediate borrow took no time: its start time is the time now.
      const now = borrow.immediate ? borrow.startedAt : clock.currentTimeMillisUnsafe()
      if (verdict(entry, now) === true) return lend(borrow, entry, now)
      return Effect.flatMap(checkOut(entry), (ok) => {
        if (ok) return lend(borrow, entry, clock.currentTimeMillisUnsafe())
        borrow.retrying = true
        return Effect.fail(RETRY)
      })
    },
    finish: (borrow, failure) => {
      admission.settle(borrow.token)
      // A borrow that never went to `Pool` holds nothing to pass on (a lease implies it went).
      return borrow.entered ? endBorrow(borrow.lease, failure) : undefined
    },
    retry: (borrow) => start(borrow.fiber, borrow.f, borrow.startedAt, false)
  }

  /**
   * One borrow: straight to `Pool` when a connection is idle and nobody waits (the fast path, no
   * `Scope` per borrow), else through admission. The `Borrow` sees how it ends, as a frame on the
   * fiber's stack below the release `Pool.use` installs, or (when Effect's internals are not what
   * `fiberStack.ts` expects) through `onExitPrimitive` and `catchCause`, with the same behaviour.
   */
  const start = (
    fiber: Fiber.Fiber<unknown, unknown>,
    f: (connection: A) => Effect.Effect<unknown, unknown, unknown>,
    startedAt: number,
    first: boolean
  ): Effect.Effect<unknown, unknown, unknown> => {
    const direct = !state.draining && admission.size() === 0 && admission.canLendNow()
    const borrow = new Borrow(owner, fiber, f, startedAt, direct && first)
    let run: Effect.Effect<unknown, unknown, unknown>
    if (direct) {
      borrow.entered = true
      run = Pool.use(pool, borrow.begin)
    } else {
      const token: DirectToken = { direct: false }
      borrow.token = token
      run = Effect.flatMap(admission.admit(startedAt + acquireTimeout, token), () => {
        borrow.entered = true
        return Pool.use(pool, borrow.begin)
      })
    }
    const internals = FiberStack.internalsOf(fiber)
    if (internals !== undefined) {
      FiberStack.push(internals, borrow)
      return run
    }
    return Effect.catchCause(
      Effect.onExitPrimitive(run, (exit) => owner.finish(borrow, Exit.isFailure(exit) ? exit.cause : undefined)),
      (cause) => borrow.retrying && isRetry(cause) ? owner.retry(borrow) : Effect.failCause(cause)
    )
  }

  const use = <B, E2, R2>(
    f: (connection: A) => Effect.Effect<B, E2, R2>
  ): Effect.Effect<B, E | E2 | ConnectionPool.BorrowError, R2> =>
    Effect.withFiber((fiber) => start(fiber, f, clock.currentTimeMillisUnsafe(), true)) as Effect.Effect<
      B,
      E | E2 | ConnectionPool.BorrowError,
      R2
    >

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
        yield* Scope.addFinalizer(
          attemptScope,
          Effect.suspend(() => endBorrow(held.lease, undefined) ?? Effect.void)
        )
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
