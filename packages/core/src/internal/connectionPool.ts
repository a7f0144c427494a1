/**
 * The `ConnectionPool` (`ConnectionPool.make`), built on Effect's
 * `Pool.makeWithTTL` and assembled from the one-job modules under
 * `pool/single/`: `options` (defaults and checks), `state` (what the pool
 * knows about each connection and borrow), `admission` (wait queue and
 * deadlines in front of `Pool`), `lease` (borrow, check, return) and
 * `housekeeping` (lifetime, keep-alive, leaks, metrics, warm-up). This file
 * opens and closes connections (with the permit or shared `Capacity` that
 * bounds them), wires the modules, drains on shutdown and answers `stats`.
 * Every read of `Pool`'s private state goes through `pool/poolInternals.ts`.
 */
import { Clock, Effect, Exit, Pool, Schedule, Scope, Semaphore } from "effect"
import type * as ConnectionPool from "../ConnectionPool.ts"
import type { InvalidPoolOptions } from "../PoolError.ts"
import { ConnectTimeout, PoolTimeout } from "../PoolError.ts"
import type { Capacity, Evictable } from "./capacity.ts"
import * as Millis from "./millis.ts"
import * as PoolInternals from "./pool/poolInternals.ts"
import * as Admission from "./pool/single/admission.ts"
import * as Housekeeping from "./pool/single/housekeeping.ts"
import * as Lease from "./pool/single/lease.ts"
import { checkOptions, defaults } from "./pool/single/options.ts"
import type { Entry } from "./pool/single/state.ts"
import * as PoolState from "./pool/single/state.ts"
import * as metrics from "./poolMetrics.ts"

export { checkOptions, defaults, optionKeys } from "./pool/single/options.ts"

const millisOf = Millis.withFallback
const optionalMillis = Millis.optional

/** @internal */
export const make = <A, E, R>(
  options: ConnectionPool.Options<A, E, R>,
  shared?: {
    /** A limit shared with other pools (one per identity): see `Capacity`. */
    readonly capacity: Capacity
    /** Told which connection is about to be closed to make room for another pool (it may be re-bound there). */
    readonly onEvict?: ((connection: A) => void) | undefined
    /** Given a way to send this pool's queued borrowers elsewhere (they fail with `PoolClosed`): see `IdentityPool.resize`. */
    readonly onReady?: ((controls: { readonly sendWaitersAway: () => void }) => void) | undefined
  }
): Effect.Effect<
  ConnectionPool.ConnectionPool<A, E>,
  InvalidPoolOptions,
  Exclude<R, Scope.Scope> | Scope.Scope
> =>
  Effect.gen(function*() {
    yield* checkOptions(options)
    const name = options.name
    const min = options.min ?? defaults.min
    const max = options.max ?? defaults.max
    const concurrency = options.concurrency ?? defaults.concurrency
    const maxLifetime = millisOf(options.maxLifetime, defaults.maxLifetime)
    const acquireTimeout = millisOf(options.acquireTimeout, defaults.acquireTimeout)
    const connectTimeout = millisOf(options.connectTimeout, defaults.connectTimeout)
    const drainTimeout = millisOf(options.drainTimeout, defaults.drainTimeout)

    const clock = yield* Clock.Clock
    const outerScope = yield* Scope.Scope
    const m = metrics.forPool(name)
    const metricContext = yield* Effect.context<never>()

    const state = PoolState.make<A>(name, max)
    const { byConnection, counters, entries } = state

    const admission = Admission.make(state, {
      clock,
      poolCanLend: () => PoolInternals.canLendNow(pool),
      timeoutError: () => timeoutError()
    })

    // --- opening and closing connections -----------------------------------

    // One permit per open connection, returned only once the connection is
    // closed. `Pool` starts a replacement for an invalidated connection while
    // its borrower still holds it; the permit makes that replacement wait, so
    // no more than `max` connections are ever open at once.
    const permits = Semaphore.makeUnsafe(max)
    const capacity = shared?.capacity
    // Shared with other pools: this pool can give up its least recently used
    // idle connection when another needs room.
    const evictable: Evictable = {
      oldestIdleAt: () => oldestIdle()?.lastUsedAt,
      evictOldestIdle: () =>
        Effect.suspend(() => {
          const entry = oldestIdle()
          // Just opened, `Pool` may not hold it yet: it cannot be invalidated until it does.
          if (entry === undefined || !PoolInternals.holds(pool, entry)) return Effect.succeed(false)
          shared?.onEvict?.(entry.connection)
          return Effect.as(retire(entry), true)
        })
    }
    // A new connection is not given up while a borrower here waits for it, or
    // two pools sharing a limit could take each other's new connections forever.
    const oldestIdle = (): Entry<A> | undefined => {
      let oldest: Entry<A> | undefined
      const awaited = PoolInternals.waiting(pool) > 0 || admission.size() > 0 || state.directBorrowers > 0
      for (const entry of entries) {
        if (entry.holders.length > 0 || entry.retired) continue
        if (!entry.lent && awaited) continue
        if (oldest === undefined || entry.lastUsedAt < oldest.lastUsedAt) oldest = entry
      }
      return oldest
    }
    if (capacity !== undefined) {
      const unregister = capacity.register(evictable)
      yield* Effect.addFinalizer(() => Effect.sync(unregister))
    }
    const takePermit: Effect.Effect<void, never, Scope.Scope> = capacity === undefined
      ? permits.takeScoped(1)
      : Effect.acquireRelease(capacity.take(evictable), () => Effect.sync(() => capacity.release()))

    const acquireEntry: Effect.Effect<Entry<A>, E | ConnectTimeout, Scope.Scope | Exclude<R, Scope.Scope>> = Effect
      .gen(function*() {
        // Registered first, so released last: after the driver closed the connection.
        yield* takePermit
        const connection = yield* (options.acquire as Effect.Effect<A, E, Scope.Scope | Exclude<R, Scope.Scope>>).pipe(
          Effect.timeoutOrElse({
            duration: connectTimeout,
            orElse: () => Effect.fail(new ConnectTimeout({ pool: name, timeoutMillis: connectTimeout }))
          })
        )
        const now = clock.currentTimeMillisUnsafe()
        const entry: Entry<A> = {
          connection,
          id: state.nextId++,
          createdAt: now,
          lastUsedAt: now,
          lent: false,
          holders: [],
          retired: false
        }
        entries.add(entry)
        byConnection.set(connection, entry)
        counters.created++
        m.created.updateUnsafe(1, metricContext)
        // Its borrower may have given up waiting: then it is idle, and another
        // pool sharing the limit may take its place.
        if (capacity !== undefined) capacity.idleAppeared()
        // Runs before the driver's own finalizer closes the connection.
        yield* Effect.addFinalizer(() =>
          Effect.sync(() => {
            entries.delete(entry)
            byConnection.delete(connection)
            counters.destroyed++
            m.destroyed.updateUnsafe(1, metricContext)
            // Capacity freed: a waiter may now have a new connection opened.
            admission.wakeOne()
          })
        )
        return entry
      })
      .pipe(
        Effect.tapError(() =>
          Effect.sync(() => {
            counters.acquireFailures++
            m.acquireFailures.updateUnsafe(1, metricContext)
          })
        )
      )

    const poolScope = yield* Scope.make()
    const pool = yield* Pool.makeWithTTL({
      acquire: acquireEntry,
      min,
      max,
      concurrency,
      timeToLive: millisOf(options.idleTimeToLive, defaults.idleTimeToLive),
      timeToLiveStrategy: "usage"
    }).pipe(Scope.provide(poolScope))

    const retire = (entry: Entry<A>) =>
      Effect.suspend(() => {
        if (entry.retired) return Effect.void
        entry.retired = true
        return Pool.invalidate(pool, entry)
      })

    const snapshot = (): { idle: number; inUse: number; pending: number; max: number } => {
      const { idle, inUse } = PoolInternals.sizes(pool)
      return { idle, inUse, pending: PoolInternals.waiting(pool) + admission.size(), max }
    }

    const timeoutError = (): PoolTimeout => {
      counters.timeouts++
      m.timeouts.updateUnsafe(1, metricContext)
      return new PoolTimeout({ pool: name, timeoutMillis: acquireTimeout, snapshot: snapshot() })
    }

    // --- lending and housekeeping ------------------------------------------

    const lease = Lease.make(state, pool, admission, {
      clock,
      validate: options.validate,
      isBroken: options.isBroken,
      maxLifetime,
      validationWindow: millisOf(options.validationWindow, defaults.validationWindow),
      connectTimeout,
      acquireTimeout,
      capacity,
      metrics: m,
      metricContext,
      retire
    })

    const housekeeping = Housekeeping.sweep(state, pool, admission, {
      clock,
      maxLifetime,
      keepAliveInterval: optionalMillis(options.keepAliveInterval),
      leakThreshold: optionalMillis(options.leakDetectionThreshold),
      validate: options.validate,
      capacity,
      metrics: m,
      metricContext,
      retire,
      isValid: lease.isValid,
      failValidation: lease.failValidation,
      hasEvictable: () => oldestIdle() !== undefined,
      snapshot
    })

    yield* Effect.forkIn(admission.deadlineTimer, outerScope)

    yield* housekeeping.pipe(
      Effect.catchCause((cause) => Effect.logError("pool housekeeping failed", cause)),
      Effect.repeat(Schedule.spaced(millisOf(options.housekeepingInterval, defaults.housekeepingInterval))),
      Effect.forkIn(outerScope)
    )

    shared?.onReady?.({ sendWaitersAway: admission.closeAll })

    // --- drain on shutdown -------------------------------------------------

    yield* Scope.addFinalizer(
      outerScope,
      Effect.gen(function*() {
        state.draining = true
        admission.closeAll()
        if (state.activeLeases > 0) {
          yield* Effect.timeoutOption(
            Effect.callback<void>((resume) => {
              state.onDrained = () => resume(Effect.void)
            }),
            drainTimeout
          )
        }
        if (state.activeLeases > 0) {
          yield* Effect.logWarning(
            `pool "${name}": ${state.activeLeases} borrow(s) still borrowed after the ${drainTimeout} ms drain timeout; ` +
              `interrupting their borrowers`
          )
          for (const held of PoolState.allLeases(state)) held.fiber.interruptUnsafe()
        }
        yield* Scope.close(poolScope, Exit.void)
      })
    )

    // --- warm-up -----------------------------------------------------------

    if (min > 0 && options.warmUp !== false) {
      yield* Housekeeping.warmUp(state, pool, min, acquireTimeout, timeoutError)
    }

    const stats = Effect.sync((): ConnectionPool.Stats => {
      const s = snapshot()
      return {
        name,
        idle: s.idle,
        inUse: s.inUse,
        pending: s.pending,
        min,
        max,
        ...counters,
        draining: state.draining
      }
    })

    const invalidateIdle = Effect.suspend(() => {
      const idle = [...entries].filter((entry) => entry.holders.length === 0 && !entry.retired)
      return Effect.as(Effect.forEach(idle, retire, { discard: true }), idle.length)
    })

    return {
      name,
      use: lease.use,
      get: lease.get,
      invalidate: (connection: A) =>
        Effect.suspend(() => {
          const entry = byConnection.get(connection)
          return entry === undefined ? Effect.void : retire(entry)
        }),
      invalidateIdle,
      stats
    }
  })
