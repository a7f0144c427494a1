/**
 * Housekeeper: one fiber that, every `housekeepingInterval`, closes idle
 * connections past `maxLifetime` or unused for `idleTimeToLive` (keeping the
 * default identity's `min`), probes idle connections unused for
 * `keepAliveInterval` with `validate`, warns about leases held past
 * `leakDetectionThreshold`, opens connections up to `min` (warm-up), forgets
 * identities with no connection, and publishes metrics. Driven by `Clock`,
 * so `TestClock` drives it in tests.
 */
import { Clock, Context, Effect, Metric, Schedule, Scope, Tracer } from "effect"
import * as FlushedCounters from "../flushedCounters.ts"
import type { PoolMetrics } from "../poolMetrics.ts"
import type { Connector } from "./connector.ts"
import type { Conn, Group, PoolState } from "./state.ts"

export interface HousekeeperOptions<C> {
  readonly interval: number
  readonly idleTimeToLive: number
  readonly maxLifetime: number
  readonly keepAliveInterval: number | undefined
  readonly leakThreshold: number | undefined
  readonly validate: ((connection: C) => Effect.Effect<unknown, unknown>) | undefined
  readonly isReady: ((connection: C) => boolean) | undefined
  readonly connectTimeout: number
  /** The default identity's group (it keeps `min` connections). */
  readonly defaultGroup: () => Group<C>
  readonly dispatch: () => void
  readonly pending: () => number
  /** The pool's metrics: gauges set and counters flushed on every sweep. */
  readonly metrics: PoolMetrics
}

/** How long an identity with no connection is remembered: a secret that never bound goes soon. */
const forgetProvenMillis = 60_000
const forgetUnprovenMillis = 1_000

const identityConnections = Metric.gauge("tether_identity_connections", {
  description: "Open connections per identity (by its label, never its principal or secret)"
})

export const make = <C, E>(state: PoolState<C>, connector: Connector<C, E>, options: HousekeeperOptions<C>) =>
  Effect.gen(function*() {
    const clock = yield* Clock.Clock
    const scope = yield* Scope.Scope
    const { idleTimeToLive, maxLifetime, keepAliveInterval, leakThreshold, validate, isReady } = options
    const m = options.metrics
    const flush = FlushedCounters.make({
      created: m.created,
      destroyed: m.destroyed,
      acquireFailures: m.acquireFailures,
      timeouts: m.timeouts,
      validationFailures: m.validationFailures,
      leaks: m.leaks,
      immediateBorrows: m.immediateBorrows
    })

    const probe = (conn: Conn<C>): Effect.Effect<void> => {
      state.detach(conn)
      const check = validate === undefined ? Effect.succeed(true) : validate(conn.connection).pipe(
        Effect.map((result) => result !== false),
        Effect.timeoutOrElse({ duration: options.connectTimeout, orElse: () => Effect.succeed(false) }),
        Effect.catchCause(() => Effect.succeed(false))
      )
      return Effect.flatMap(check, (ok) => {
        if (ok && (isReady === undefined || isReady(conn.connection))) {
          state.unhold(conn, clock.currentTimeMillisUnsafe())
          options.dispatch()
          return Effect.void
        }
        state.counters.validationFailures++
        conn.holders--
        return connector.retire(conn)
      })
    }

    /** Opens connections of the default identity up to `min` (when a slot is free). */
    const warmUp = Effect.suspend(() => {
      const group = options.defaultGroup()
      const missing = Math.min(state.limits.min - group.count, state.limits.max - state.open)
      if (missing <= 0 || state.draining) return Effect.void
      return Effect.forEach(Array.from({ length: missing }), () =>
        Effect.suspend(() => {
          state.open++
          group.count++
          return connector.open(group, (e) => e).pipe(
            Effect.map((conn) => {
              state.unhold(conn, clock.currentTimeMillisUnsafe())
              options.dispatch()
              return true
            }),
            Effect.catchCause(() => Effect.succeed(false))
          )
        }), { concurrency: "unbounded" })
    })

    const sweep = Effect.gen(function*() {
      const now = clock.currentTimeMillisUnsafe()
      const defaultGroup = options.defaultGroup()
      let defaultIdleKept = defaultGroup.count
      for (const conn of [...state.idle]) {
        if (now - conn.createdAt >= maxLifetime) {
          yield* connector.retire(conn)
        } else if (now - conn.lastUsedAt >= idleTimeToLive) {
          if (conn.group === defaultGroup && defaultIdleKept <= state.limits.min) continue
          if (conn.group === defaultGroup) defaultIdleKept--
          yield* connector.retire(conn)
        } else if (keepAliveInterval !== undefined && validate !== undefined && now - conn.lastUsedAt >= keepAliveInterval) {
          yield* probe(conn)
        }
      }
      if (leakThreshold !== undefined) {
        for (const lease of state.leases) {
          if (lease.reported || now - lease.since < leakThreshold) continue
          lease.reported = true
          state.counters.leaksDetected++
          const span = Context.getOption(lease.fiber.context, Tracer.ParentSpan)
          yield* Effect.logWarning(
            `pool "${state.name}": connection #${lease.conn.id} has been borrowed for ${now - lease.since} ms ` +
              `(threshold ${leakThreshold} ms); the borrower may never return it`
          ).pipe(Effect.annotateLogs({
            pool: state.name,
            connection: lease.conn.id,
            borrowerFiber: lease.fiber.id,
            borrowerSpan: span._tag === "Some" && span.value._tag === "Span" ? span.value.name : "none",
            traceId: span._tag === "Some" ? span.value.traceId : "none"
          }))
        }
      }
      for (const group of [...state.groups.values()]) {
        if (group.count > 0 || group.waiting > 0 || group === defaultGroup) continue
        if (now - group.lastUsedAt > (group.created > 0 ? forgetProvenMillis : forgetUnprovenMillis)) {
          state.groups.delete(group.key)
          group.forgotten = true
        }
      }
      yield* warmUp
      const perLabel = new Map<string, number>()
      for (const conn of state.conns) perLabel.set(conn.group.label, (perLabel.get(conn.group.label) ?? 0) + 1)
      for (const [label, n] of perLabel) {
        yield* Metric.update(Metric.withAttributes(identityConnections, { pool: state.name, identity: label }), n)
      }
      const s = state.snapshot(options.pending())
      yield* Metric.update(m.idle, s.idle)
      yield* Metric.update(m.inUse, s.inUse)
      yield* Metric.update(m.pending, s.pending)
      // The counters change in place on the hot path; their growth since the last sweep goes out here.
      const c = state.counters
      yield* flush({
        created: c.created + c.rebinds,
        destroyed: c.destroyed,
        acquireFailures: c.acquireFailures,
        timeouts: c.timeouts,
        validationFailures: c.validationFailures,
        leaks: c.leaksDetected,
        immediateBorrows: c.borrows - c.waited
      })
      // A safety net: serve anything a lost wake-up left waiting.
      options.dispatch()
    })

    yield* sweep.pipe(
      Effect.catchCause((cause) => Effect.logError("identity pool housekeeping failed", cause)),
      Effect.repeat(Schedule.spaced(options.interval)),
      Effect.forkIn(scope)
    )
    return { warmUp }
  })
