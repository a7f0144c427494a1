import { Clock, Effect, Exit, Metric, Schedule, Scope, Semaphore } from "effect"
import type * as ConnectionPool from "../ConnectionPool.ts"
import type { Credentials } from "../Identity.ts"
import type * as IdentityPool from "../IdentityPool.ts"
import { InvalidPoolOptions } from "../PoolError.ts"
import { Capacity } from "./capacity.ts"
import * as pools from "./connectionPool.ts"
import { digestOf } from "./identityDigest.ts"

/** One identity's pool. */
interface Share<C, E> {
  readonly key: string
  readonly identity: Credentials | undefined
  readonly pool: ConnectionPool.ConnectionPool<C, E>
  readonly scope: Scope.Closeable
  lastUsed: number
}

/** The key of the driver's default identity (not a digest: it has no secret of ours). */
const DEFAULT = "default"

const identityConnections = Metric.gauge("tether_identity_connections", {
  description: "Open connections per identity (by its label, never its principal or secret)"
})
const evictionsTotal = Metric.counter("tether_identity_evictions_total", {
  description: "Idle connections closed or re-bound to make room for another identity",
  incremental: true
})
const rebindsTotal = Metric.counter("tether_identity_rebinds_total", {
  description: "Evicted idle connections re-bound as another identity (outcome: ok | failed)",
  incremental: true
})
const reuseTotal = Metric.counter("tether_identity_reuse_total", {
  description: "Borrows served by an open connection of the right identity (hit) or needing a new or re-bound one (miss)",
  incremental: true
})

/** An open connection and the scope that closes it, apart from the pool item holding it (so it can change hands). */
interface Held<C> {
  readonly connection: C
  readonly scope: Scope.Closeable
}

/** How long an evicted connection waits to be re-bound before it is closed. */
const donationMillis = 1_000

/** @internal */
export const make = <C, E>(
  options: IdentityPool.Options<C, E>
): Effect.Effect<IdentityPool.IdentityPool<C, E>, InvalidPoolOptions, Scope.Scope> =>
  Effect.gen(function*() {
    const name = options.name
    const max = options.max ?? pools.defaults.max
    const maxPerIdentity = options.maxPerIdentity ?? max
    const min = options.min ?? 0
    if (!Number.isInteger(max) || max < 1) {
      return yield* Effect.fail(new InvalidPoolOptions({ pool: name, option: "max", reason: `must be an integer >= 1, got ${max}` }))
    }
    if (!Number.isInteger(maxPerIdentity) || maxPerIdentity < 1 || maxPerIdentity > max) {
      return yield* Effect.fail(
        new InvalidPoolOptions({
          pool: name,
          option: "maxPerIdentity",
          reason: `must be an integer from 1 to max (${max}), got ${maxPerIdentity}`
        })
      )
    }
    const scope = yield* Scope.Scope
    const clock = yield* Clock.Clock
    const capacity = new Capacity(max)
    const shares = new Map<string, Share<C, E>>()
    /** The current key of each principal, to retire connections opened with an old secret. */
    const principals = new Map<string, string>()
    const creating = Semaphore.makeUnsafe(1)

    // Re-binding: a connection evicted to make room is not closed but kept
    // here (its permit is given back) for the pool that asked for room, whose
    // next connection re-binds it instead of opening a new one. Each permit
    // taken claims a kept connection first, so open + kept never exceeds max.
    const rebind = options.rebind
    const evicted = new Set<C>()
    const kept: Array<Held<C> & { readonly at: number }> = []
    let closed = false
    const rebindCounts = { ok: 0, failed: 0 }
    yield* Effect.addFinalizer(() =>
      Effect.suspend(() => {
        closed = true
        return Effect.forEach(kept.splice(0), (held) => Scope.close(held.scope, Exit.void), { discard: true })
      })
    )

    /** Opens (or re-binds) a connection for a pool item; it closes with the item unless it is evicted for a re-bind. */
    const acquireFor = (identity: Credentials | undefined): Effect.Effect<C, E, Scope.Scope> =>
      Effect.uninterruptibleMask((restore) =>
        Effect.gen(function*() {
          const item = yield* Scope.Scope
          let held: Held<C> | undefined
          while (rebind !== undefined && held === undefined && kept.length > 0) {
            const candidate = kept.shift()!
            const exit = yield* Effect.exit(restore(rebind(candidate.connection, identity)))
            if (exit._tag === "Success") {
              held = candidate
              rebindCounts.ok++
            } else {
              yield* Scope.close(candidate.scope, Exit.void)
              if (Exit.hasInterrupts(exit)) return yield* Effect.interrupt
              rebindCounts.failed++
            }
          }
          if (held === undefined) {
            const scope = yield* Scope.make("sequential")
            const exit = yield* Effect.exit(restore(Scope.provide(options.connect(identity), scope)))
            if (exit._tag === "Failure") {
              yield* Scope.close(scope, exit)
              return yield* exit
            }
            held = { connection: exit.value, scope }
          }
          const mine = held
          yield* Scope.addFinalizer(
            item,
            Effect.suspend(() => {
              if (evicted.delete(mine.connection) && !closed) {
                kept.push({ ...mine, at: clock.currentTimeMillisUnsafe() })
                return Effect.void
              }
              return Scope.close(mine.scope, Exit.void)
            })
          )
          return mine.connection
        })
      )

    const shareOptions = (identity: Credentials | undefined): ConnectionPool.Options<C, E, Scope.Scope> => ({
      ...options.pool,
      name: identity === undefined ? name : `${name} [${identity.label}]`,
      acquire: acquireFor(identity),
      validate: options.validate === undefined ? undefined : (c: C) => options.validate!(c, identity),
      isBroken: options.isBroken,
      min: identity === undefined ? min : 0,
      max: maxPerIdentity,
      warmUp: identity === undefined
    })
    // Every identity's pool has the same options: check them once, here.
    yield* pools.checkOptions(shareOptions(undefined))

    const open = (identity: Credentials | undefined, key: string) =>
      creating.withPermits(1)(Effect.gen(function*() {
        const existing = shares.get(key)
        if (existing !== undefined) return existing
        const shareScope = yield* Scope.fork(scope, "sequential")
        const pool = yield* pools.make(shareOptions(identity), {
          capacity,
          onEvict: rebind === undefined ? undefined : (connection) => evicted.add(connection)
        }).pipe(
          Scope.provide(shareScope),
          Effect.onError((cause) => Scope.close(shareScope, Exit.failCause(cause))),
          Effect.orDie // checked above
        )
        const share: Share<C, E> = { key, identity, pool, scope: shareScope, lastUsed: clock.currentTimeMillisUnsafe() }
        shares.set(key, share)
        if (identity !== undefined) {
          const previous = principals.get(identity.principal)
          principals.set(identity.principal, key)
          const old = previous === undefined ? undefined : shares.get(previous)
          if (old !== undefined) {
            // The secret changed: connections opened with the old one go (after their work).
            shares.delete(old.key)
            yield* Effect.forkIn(Scope.close(old.scope, Exit.void), scope)
            yield* Effect.logInfo(`identity pool "${name}": credentials of "${identity.label}" changed; retiring old connections`)
          }
        }
        return share
      }))

    if (min > 0) yield* open(undefined, DEFAULT)

    const use = <A, E2, R>(
      identity: Credentials | undefined,
      f: (connection: C) => Effect.Effect<A, E2, R>
    ): Effect.Effect<A, E | E2 | ConnectionPool.BorrowError, R> =>
      Effect.suspend(() => {
        const key = identity === undefined ? DEFAULT : digestOf(identity)
        const share = shares.get(key)
        if (share !== undefined) {
          share.lastUsed = clock.currentTimeMillisUnsafe()
          return share.pool.use(f)
        }
        return Effect.flatMap(open(identity, key), (created) => created.pool.use(f))
      })

    const allStats = Effect.suspend(() =>
      Effect.forEach([...shares.values()], (share) => Effect.map(share.pool.stats, (stats) => ({ share, stats })))
    )

    const stats = Effect.map(allStats, (all): IdentityPool.Stats => {
      const sum = (f: (s: ConnectionPool.Stats) => number) => all.reduce((n, { stats }) => n + f(stats), 0)
      const borrows = sum((s) => s.borrows)
      const created = sum((s) => s.created)
      return {
        name,
        idle: sum((s) => s.idle),
        inUse: sum((s) => s.inUse),
        pending: sum((s) => s.pending),
        min: 0,
        max,
        created,
        destroyed: sum((s) => s.destroyed),
        acquireFailures: sum((s) => s.acquireFailures),
        timeouts: sum((s) => s.timeouts),
        validationFailures: sum((s) => s.validationFailures),
        leaksDetected: sum((s) => s.leaksDetected),
        borrows,
        draining: false,
        open: capacity.open,
        evictions: capacity.evictions,
        rebinds: rebindCounts.ok,
        rebindFailures: rebindCounts.failed,
        reuseRate: borrows === 0 ? 1 : Math.max(0, borrows - created) / borrows,
        identities: all.map(({ share, stats: s }) => ({
          label: share.identity?.label ?? DEFAULT,
          idle: s.idle,
          inUse: s.inUse,
          borrows: s.borrows,
          created: s.created
        }))
      }
    })

    // Forget identities that have had no connection for a while; publish metrics.
    const idleShareMillis = 60_000
    const reported = { evictions: 0, rebinds: 0, rebindFailures: 0, borrows: 0, created: 0 }
    const evictionsMetric = Metric.withAttributes(evictionsTotal, { pool: name })
    const counters = [
      [() => capacity.evictions, "evictions", evictionsMetric],
      [() => rebindCounts.ok, "rebinds", Metric.withAttributes(rebindsTotal, { pool: name, outcome: "ok" })],
      [() => rebindCounts.failed, "rebindFailures", Metric.withAttributes(rebindsTotal, { pool: name, outcome: "failed" })]
    ] as const
    const reuseHits = Metric.withAttributes(reuseTotal, { pool: name, outcome: "hit" })
    const reuseMisses = Metric.withAttributes(reuseTotal, { pool: name, outcome: "miss" })
    const sweep = Effect.gen(function*() {
      const now = clock.currentTimeMillisUnsafe()
      // Evicted connections nobody re-bound in time are closed.
      while (kept.length > 0 && now - kept[0]!.at >= donationMillis) {
        yield* Scope.close(kept.shift()!.scope, Exit.void)
      }
      const perLabel = new Map<string, number>()
      let borrows = 0
      let created = 0
      for (const { share, stats: s } of yield* allStats) {
        const label = share.identity?.label ?? DEFAULT
        borrows += s.borrows
        created += s.created
        perLabel.set(label, (perLabel.get(label) ?? 0) + s.idle + s.inUse)
        if (s.idle + s.inUse + s.pending === 0 && now - share.lastUsed > idleShareMillis) {
          shares.delete(share.key)
          if (share.identity !== undefined && principals.get(share.identity.principal) === share.key) {
            principals.delete(share.identity.principal)
          }
          yield* Scope.close(share.scope, Exit.void)
        }
      }
      for (const [label, n] of perLabel) {
        yield* Metric.update(Metric.withAttributes(identityConnections, { pool: name, identity: label }), n)
      }
      for (const [current, key, metric] of counters) {
        const value = current()
        if (value > reported[key]) yield* Metric.update(metric, value - reported[key])
        reported[key] = value
      }
      // Shares forgotten above take their counts with them: count only growth.
      const misses = Math.max(0, created - reported.created)
      const hits = Math.max(0, borrows - reported.borrows - misses)
      if (misses > 0) yield* Metric.update(reuseMisses, misses)
      if (hits > 0) yield* Metric.update(reuseHits, hits)
      reported.borrows = borrows
      reported.created = created
    })
    yield* sweep.pipe(
      Effect.catchCause((cause) => Effect.logError("identity pool sweep failed", cause)),
      Effect.repeat(Schedule.spaced("1 second")),
      Effect.forkIn(scope)
    )

    return {
      name,
      use,
      invalidateIdle: Effect.suspend(() =>
        Effect.map(
          Effect.forEach([...shares.values()], (share) => share.pool.invalidateIdle),
          (counts) => counts.reduce((a, b) => a + b, 0)
        )
      ),
      stats
    }
  })
