/**
 * Housekeeping: one sweep, run every `housekeepingInterval` by the pool,
 * that retires idle connections past `maxLifetime`, probes idle connections
 * unused for `keepAliveInterval` with `validate`, warns about leases held
 * past `leakDetectionThreshold`, wakes a waiter a lost wake-up left behind,
 * and publishes the metrics. Also the warm-up to `min` at start.
 */
import type { Clock } from "effect"
import { Context, Effect, Pool, Scope, Tracer } from "effect"
import type { PoolTimeout } from "../../../PoolError.ts"
import type { Capacity } from "../../capacity.ts"
import type { PoolMetrics } from "../../poolMetrics.ts"
import type { Admission } from "./admission.ts"
import type { Entry, State } from "./state.ts"
import { allLeases } from "./state.ts"

export interface HousekeepingOptions<A> {
  readonly clock: Clock.Clock
  readonly maxLifetime: number
  readonly keepAliveInterval: number | undefined
  readonly leakThreshold: number | undefined
  readonly validate: unknown
  readonly capacity: Capacity | undefined
  readonly metrics: PoolMetrics
  readonly metricContext: Context.Context<never>
  readonly retire: (entry: Entry<A>) => Effect.Effect<void>
  readonly isValid: (entry: Entry<A>) => Effect.Effect<boolean>
  readonly failValidation: (entry: Entry<A>) => Effect.Effect<void>
  /** Whether an idle connection here could be given up to another pool sharing the limit. */
  readonly hasEvictable: () => boolean
  readonly snapshot: () => { readonly idle: number; readonly inUse: number; readonly pending: number }
}

export const sweep = <A, E>(
  state: State<A>,
  pool: Pool.Pool<Entry<A>, E>,
  admission: Admission,
  options: HousekeepingOptions<A>
): Effect.Effect<void, E> => {
  const { capacity, clock, keepAliveInterval, leakThreshold, maxLifetime, metricContext } = options
  const m = options.metrics
  const name = state.name

  const isStale = (entry: Entry<A>, now: number) =>
    keepAliveInterval !== undefined && !entry.retired && entry.holders.length === 0 &&
    now - entry.lastUsedAt >= keepAliveInterval

  /**
   * Probes stale idle connections. `Pool` lends the most recently used
   * connection first, so the stale ones sit at the tail of the idle list:
   * borrow idle connections one after another, holding each, until every
   * stale one has been reached or nothing idle is left.
   */
  const keepAliveSweep = (now: number) =>
    Effect.suspend(() => {
      let borrowed = 0
      return Effect.scoped(Effect.gen(function*() {
        let remaining = 0
        for (const entry of state.entries) if (isStale(entry, now)) remaining++
        const scope = yield* Scope.Scope
        while (remaining > 0 && admission.size() === 0 && admission.canLendNow()) {
          const entry = yield* Pool.get(pool).pipe(Scope.provide(scope))
          borrowed++
          if (!isStale(entry, now)) continue
          remaining--
          if (yield* options.isValid(entry)) entry.lastUsedAt = clock.currentTimeMillisUnsafe()
          else yield* options.failValidation(entry)
        }
      })).pipe(Effect.ensuring(Effect.sync(() => {
        // Each connection given back can serve one waiter.
        for (let i = 0; i < borrowed; i++) admission.wakeOne()
      })))
    })

  return Effect.gen(function*() {
    const now = clock.currentTimeMillisUnsafe()
    for (const entry of state.entries) {
      if (entry.retired) continue
      if (entry.holders.length === 0 && now - entry.createdAt >= maxLifetime) {
        yield* options.retire(entry)
      }
    }
    if (keepAliveInterval !== undefined && options.validate !== undefined) {
      yield* Effect.catchCause(keepAliveSweep(now), () => Effect.void)
    }
    if (leakThreshold !== undefined) {
      for (const lease of allLeases(state)) {
        if (lease.reported || now - lease.since < leakThreshold) continue
        lease.reported = true
        state.counters.leaksDetected++
        m.leaks.updateUnsafe(1, metricContext)
        const span = Context.getOption(lease.fiber.context, Tracer.ParentSpan)
        yield* Effect.logWarning(
          `pool "${name}": connection #${lease.entry.id} has been borrowed for ${now - lease.since} ms ` +
            `(threshold ${leakThreshold} ms); the borrower may never return it`
        ).pipe(
          Effect.annotateLogs({
            pool: name,
            connection: lease.entry.id,
            borrowerFiber: lease.fiber.id,
            borrowerSpan: span._tag === "Some" && span.value._tag === "Span" ? span.value.name : "none",
            traceId: span._tag === "Some" ? span.value.traceId : "none"
          })
        )
      }
    }
    // A safety net: a wake lost to a borrower interrupted just after it was woken.
    if (admission.size() > 0 && admission.canLendNow()) admission.wakeOne()
    // A safety net for pools sharing a limit: wake a waiter while a connection here is idle.
    if (capacity !== undefined && options.hasEvictable()) capacity.idleAppeared()
    if (state.immediateBorrows > 0) {
      m.immediateBorrows.updateUnsafe(state.immediateBorrows, metricContext)
      state.immediateBorrows = 0
    }
    const s = options.snapshot()
    m.idle.updateUnsafe(s.idle, metricContext)
    m.inUse.updateUnsafe(s.inUse, metricContext)
    m.pending.updateUnsafe(s.pending, metricContext)
  })
}

/**
 * Warm-up: `Pool` starts opening `min` connections at once; wait for them by
 * holding `min` at once (not counted as borrows), so they are distinct.
 */
export const warmUp = <A, E>(
  state: State<A>,
  pool: Pool.Pool<Entry<A>, E>,
  min: number,
  acquireTimeout: number,
  timeoutError: () => PoolTimeout
): Effect.Effect<void> =>
  Effect.gen(function*() {
    const warm = yield* Effect.scoped(Effect.forEach(
      Array.from({ length: min }, () => undefined),
      () =>
        Effect.result(Effect.timeoutOrElse(Pool.get(pool), {
          duration: acquireTimeout,
          orElse: () => Effect.fail(timeoutError())
        })),
      { concurrency: "unbounded" }
    ))
    const failed = warm.filter((r) => r._tag === "Failure")
    if (failed.length > 0) {
      yield* Effect.logWarning(
        `pool "${state.name}": warm-up opened ${min - failed.length} of ${min} connections; ` +
          `the rest will be retried on demand`
      )
    }
  })
