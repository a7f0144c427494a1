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
  /** Replaced by a newer secret of its principal: no new borrower finds it; it closes once nobody uses it. */
  retired: boolean
}

/** A pooled connection found not ready (see `Options.isReady`) when it was about to be lent. */
class NotReady {
  readonly _tag = "NotReady"
}
const notReady = new NotReady()

const isPoolClosed = (error: unknown, pool: string) =>
  typeof error === "object" && error !== null && (error as { _tag?: unknown })._tag === "PoolClosed" &&
  (error as { pool?: unknown }).pool === pool

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
    /** Shares of a replaced secret, closed by the sweep once nobody uses them. */
    const retiring = new Set<Share<C, E>>()
    /**
     * The proven key of each principal: the secret that bound last. A new
     * secret replaces it only once one of its connections has bound.
     */
    const principals = new Map<string, string>()
    const isReady = options.isReady
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
    const acquireFor = (identity: Credentials | undefined, key: string): Effect.Effect<C, E, Scope.Scope> =>
      Effect.uninterruptibleMask((restore) =>
        Effect.gen(function*() {
          const item = yield* Scope.Scope
          let held: Held<C> | undefined
          // Connections that lost their socket are closed, never re-bound.
          while (isReady !== undefined && kept.length > 0 && !isReady(kept[0]!.connection)) {
            yield* Scope.close(kept.shift()!.scope, Exit.void)
          }
          // One re-bind at most: a rejected secret must not burn every kept connection.
          if (rebind !== undefined && kept.length > 0) {
            const candidate = kept.shift()!
            const exit = yield* Effect.exit(restore(rebind(candidate.connection, identity)))
            if (exit._tag === "Success") {
              held = candidate
              rebindCounts.ok++
            } else {
              // Its bind state is unknown now: it is closed.
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
          yield* prove(identity, key)
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

    /**
     * A connection of `key` has bound: its secret is proven. If the principal
     * had another proven secret, that one's connections retire gracefully.
     */
    const prove = (identity: Credentials | undefined, key: string): Effect.Effect<void> =>
      Effect.suspend(() => {
        if (identity === undefined) return Effect.void
        const current = principals.get(identity.principal)
        if (current === key) return Effect.void
        const share = shares.get(key)
        // Replaced meanwhile by a secret proven later: this one stays retired.
        if (share === undefined || share.retired) return Effect.void
        principals.set(identity.principal, key)
        const old = current === undefined ? undefined : shares.get(current)
        if (old === undefined) return Effect.void
        return Effect.andThen(
          retire(old),
          Effect.logInfo(
            `identity pool "${name}": a new secret of "${identity.label}" has bound; retiring the old one's connections`
          )
        )
      })

    /** Takes a share out of lookups; its idle connections close now, the rest once given back. */
    const retire = (share: Share<C, E>): Effect.Effect<void> =>
      Effect.suspend(() => {
        if (share.retired) return Effect.void
        share.retired = true
        if (shares.get(share.key) === share) shares.delete(share.key)
        retiring.add(share)
        return Effect.asVoid(share.pool.invalidateIdle)
      })

    const validate = options.validate
    const shareOptions = (identity: Credentials | undefined, key: string): ConnectionPool.Options<C, E, Scope.Scope> => ({
      ...options.pool,
      name: identity === undefined ? name : `${name} [${identity.label}]`,
      acquire: acquireFor(identity, key),
      validate: validate === undefined
        ? undefined
        : isReady === undefined
        ? (c: C) => validate(c, identity)
        : (c: C) => (isReady(c) ? validate(c, identity) : Effect.succeed(false)),
      isBroken: (error: unknown) => error === notReady || (options.isBroken !== undefined && options.isBroken(error)),
      min: identity === undefined ? min : 0,
      max: maxPerIdentity,
      warmUp: identity === undefined
    })
    // Every identity's pool has the same options: check them once, here.
    yield* pools.checkOptions(shareOptions(undefined, DEFAULT))

    const open = (identity: Credentials | undefined, key: string) =>
      creating.withPermits(1)(Effect.gen(function*() {
        const existing = shares.get(key)
        if (existing !== undefined) return existing
        const shareScope = yield* Scope.fork(scope, "sequential")
        const pool = yield* pools.make(shareOptions(identity, key), {
          capacity,
          onEvict: rebind === undefined ? undefined : (connection) => evicted.add(connection)
        }).pipe(
          Scope.provide(shareScope),
          Effect.onError((cause) => Scope.close(shareScope, Exit.failCause(cause))),
          Effect.orDie // checked above
        )
        const share: Share<C, E> = {
          key,
          identity,
          pool,
          scope: shareScope,
          lastUsed: clock.currentTimeMillisUnsafe(),
          retired: false
        }
        // Not yet proven: it becomes its principal's secret once a connection binds (see `prove`).
        shares.set(key, share)
        return share
      }))

    if (min > 0) yield* open(undefined, DEFAULT)

    /** Borrows from one share; a connection found not ready is destroyed and another one borrowed. */
    const useShare = <A, E2, R>(
      share: Share<C, E>,
      f: (connection: C) => Effect.Effect<A, E2, R>
    ): Effect.Effect<A, E | E2 | ConnectionPool.BorrowError | NotReady, R> =>
      isReady === undefined
        ? share.pool.use(f)
        : share.pool.use((connection): Effect.Effect<A, E2 | NotReady, R> =>
          isReady(connection) ? f(connection) : Effect.fail(notReady)
        )

    const use = <A, E2, R>(
      identity: Credentials | undefined,
      f: (connection: C) => Effect.Effect<A, E2, R>
    ): Effect.Effect<A, E | E2 | ConnectionPool.BorrowError, R> =>
      Effect.suspend(() => {
        const key = identity === undefined ? DEFAULT : digestOf(identity)
        const borrowFrom = (share: Share<C, E>): Effect.Effect<A, E | E2 | ConnectionPool.BorrowError, R> =>
          useShare(share, f).pipe(
            Effect.catch((error): Effect.Effect<A, E | E2 | ConnectionPool.BorrowError, R> => {
              // Nothing ran: borrow again (another connection).
              if (error === notReady) return use(identity, f)
              // Its share was retired or forgotten while this borrower waited: borrow from the current one.
              if (!closed && shares.get(share.key) !== share && isPoolClosed(error, share.pool.name)) return use(identity, f)
              return Effect.fail(error as E | E2 | ConnectionPool.BorrowError)
            })
          )
        const share = shares.get(key)
        if (share !== undefined) {
          share.lastUsed = clock.currentTimeMillisUnsafe()
          return borrowFrom(share)
        }
        return Effect.flatMap(open(identity, key), borrowFrom)
      })

    const allStats = Effect.suspend(() =>
      Effect.forEach(
        [...shares.values(), ...retiring],
        (share) => Effect.map(share.pool.stats, (stats) => ({ share, stats }))
      )
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
        if (share.retired) {
          // Replaced by a newer secret: closed once its last borrower is done.
          if (s.inUse + s.pending === 0) {
            retiring.delete(share)
            yield* Scope.close(share.scope, Exit.void)
          } else if (s.idle > 0) yield* share.pool.invalidateIdle
          continue
        }
        const proven = share.identity === undefined || principals.get(share.identity.principal) === share.key
        // A secret that never bound (a wrong password) is forgotten as soon as nobody waits on it.
        const unused = s.idle + s.inUse + s.pending === 0
        if (unused && now - share.lastUsed > (proven ? idleShareMillis : donationMillis)) {
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
