/**
 * The identity pool (`IdentityPool.make`), assembled from the one-job modules under `pool/`:
 * `state` (connections tagged by identity), `admission` (wait queue,
 * deadlines, fair reuse), `connector` (open, re-bind, close, secrets),
 * `lease` (borrow and return), `housekeeper` and `drain`. This file checks
 * options, wires them, and answers `stats`, `invalidateIdle` and `resize`.
 */
import { Clock, Effect, Scope } from "effect"
import type { Credentials } from "../../Identity.ts"
import type * as IdentityPool from "../../IdentityPool.ts"
import { InvalidPoolOptions, PoolClosed } from "../../PoolError.ts"
import { checkKnownKeys } from "../../Validation.ts"
import * as pools from "../connectionPool.ts"
import { digestOf } from "../identityDigest.ts"
import * as Millis from "../millis.ts"
import * as poolMetrics from "../poolMetrics.ts"
import * as Admission from "./admission.ts"
import * as Connector from "./connector.ts"
import * as Drain from "./drain.ts"
import * as Housekeeper from "./housekeeper.ts"
import * as Lease from "./lease.ts"
import type { Group } from "./state.ts"
import { PoolState } from "./state.ts"

/** Every key of `IdentityPool.Options`, and of its `pool`: any other is refused. */
const optionKeys: ReadonlyArray<string> = [
  "name",
  "connect",
  "rebind",
  "validate",
  "isReady",
  "isBroken",
  "min",
  "max",
  "maxPerIdentity",
  "maxReuseStreak",
  "pool"
]
const poolKeys = pools.optionKeys.filter((k) => !["name", "acquire", "validate", "isBroken", "min", "max"].includes(k))

/** The key of the driver's default identity (not a digest: it has no secret of ours). */
const DEFAULT = "default"

/** Reuses served out of queue order before the head of the queue takes its turn. */
export const defaultMaxReuseStreak = 8

const millisOf = Millis.withFallback

const checkLimits = (
  name: string,
  limits: { readonly min: number; readonly max: number; readonly maxPerIdentity: number }
): InvalidPoolOptions | undefined => {
  const { min, max, maxPerIdentity } = limits
  if (!Number.isInteger(max) || max < 1) {
    return new InvalidPoolOptions({ pool: name, option: "max", reason: `must be an integer >= 1, got ${max}` })
  }
  if (!Number.isInteger(maxPerIdentity) || maxPerIdentity < 1 || maxPerIdentity > max) {
    return new InvalidPoolOptions({
      pool: name,
      option: "maxPerIdentity",
      reason: `must be an integer from 1 to max (${max}), got ${maxPerIdentity}`
    })
  }
  if (!Number.isInteger(min) || min < 0 || min > max) {
    return new InvalidPoolOptions({ pool: name, option: "min", reason: `must be an integer from 0 to max (${max}), got ${min}` })
  }
  return undefined
}

/** The options of the tagged pool: those of `IdentityPool`, and the fairness bound. */
export interface Options<C, E> extends IdentityPool.Options<C, E> {
  /**
   * Reuse with bounded fairness: when the first waiter would have to evict
   * another identity's idle connection, a later waiter of that connection's
   * identity is served with it instead (no bind), at most this many times in
   * a row before the first waiter takes its turn. 0: strict arrival order.
   * Default 8 (see `IdentityPool.Options.maxReuseStreak`).
   */
  readonly maxReuseStreak?: number | undefined
}

/** The limits `resize` changes. */
export interface Limits {
  readonly min?: number | undefined
  readonly max?: number | undefined
  readonly maxPerIdentity?: number | undefined
}

/** An `IdentityPool` whose limits change at run time. */
export interface TaggedPool<C, E> extends IdentityPool.IdentityPool<C, E> {
  /**
   * Growing admits waiters at once; shrinking closes idle connections above
   * the new limits now and the rest as they are returned; work in flight
   * never fails because of it.
   */
  readonly resize: (limits: Limits) => Effect.Effect<void, InvalidPoolOptions>
}

/** @internal */
export const make = <C, E>(
  options: Options<C, E>
): Effect.Effect<TaggedPool<C, E>, InvalidPoolOptions, Scope.Scope> =>
  Effect.gen(function*() {
    const name = options.name
    const unknown = checkKnownKeys(options, optionKeys, String(name)) ??
      checkKnownKeys(options.pool, poolKeys, String(name), "pool.")
    if (unknown !== undefined) return yield* Effect.fail(unknown)
    const max = options.max ?? pools.defaults.max
    const limits = { min: options.min ?? 0, max, maxPerIdentity: options.maxPerIdentity ?? max }
    /** `maxPerIdentity` follows `max` through resizes until it is given. */
    let perIdentityFollowsMax = options.maxPerIdentity === undefined
    const invalid = checkLimits(name, limits)
    if (invalid !== undefined) return yield* Effect.fail(invalid)
    const p = options.pool ?? {}
    yield* pools.checkOptions({ ...p, name, acquire: Effect.void, min: limits.min, max: limits.max })
    const maxReuseStreak = options.maxReuseStreak ?? defaultMaxReuseStreak
    if (!Number.isInteger(maxReuseStreak) || maxReuseStreak < 0) {
      return yield* Effect.fail(
        new InvalidPoolOptions({ pool: name, option: "maxReuseStreak", reason: `must be an integer >= 0, got ${maxReuseStreak}` })
      )
    }
    const d = pools.defaults
    const acquireTimeout = millisOf(p.acquireTimeout, d.acquireTimeout)
    const connectTimeout = millisOf(p.connectTimeout, d.connectTimeout)
    const maxLifetime = millisOf(p.maxLifetime, d.maxLifetime)
    const keepAlive = p.keepAliveInterval === undefined ? undefined : millisOf(p.keepAliveInterval, d.idleTimeToLive)
    const leak = p.leakDetectionThreshold === undefined ? undefined : millisOf(p.leakDetectionThreshold, d.idleTimeToLive)

    const scope = yield* Scope.Scope
    const clock = yield* Clock.Clock
    const state = new PoolState<C>(name, limits, p.concurrency ?? d.concurrency)
    /** The group of `identity`: one `WeakMap` read per borrow once known (no digest, no clock read). */
    const now = () => clock.currentTimeMillisUnsafe()
    const groupOf = (identity: Credentials | undefined): Group<C> => {
      if (identity === undefined) return state.group(DEFAULT, undefined, now)
      const known = state.byCredentials.get(identity)
      if (known !== undefined && !known.retired && !known.forgotten) return known
      const group = state.group(digestOf(identity), identity, now)
      state.byCredentials.set(identity, group)
      return group
    }

    const admission = yield* Admission.make(state, maxReuseStreak, acquireTimeout)
    /** A group replaced by a newer secret: out of lookups, idle connections closed, the others once returned. */
    const retireGroup = (group: Group<C>) =>
      Effect.suspend(() => {
        if (group.retired) return Effect.void
        group.retired = true
        if (state.groups.get(group.key) === group) state.groups.delete(group.key)
        const doomed = [...state.conns].filter((conn) => conn.group === group)
        return Effect.forEach(doomed, connector.retire, { discard: true })
      })
    const connector: Connector.Connector<C, E> = yield* Connector.make<C, E>(state, {
      connect: options.connect,
      rebind: options.rebind,
      connectTimeout,
      dispatch: admission.dispatch,
      onRetire: (group) => retireGroup(group),
      onClosed: () => drain.onClosed()
    })
    const drain: ReturnType<typeof Drain.make> = Drain.make(state, admission, connector, millisOf(p.drainTimeout, d.drainTimeout))
    const validate = options.validate
    const metrics = poolMetrics.forPool(name)
    const lease = yield* Lease.make(state, admission, connector, {
      isReady: options.isReady,
      validate,
      isBroken: options.isBroken,
      maxLifetime,
      validationWindow: millisOf(p.validationWindow, d.validationWindow),
      acquireTimeout,
      connectTimeout,
      metrics,
      groupOf,
      closed: () => (state.draining ? new PoolClosed({ pool: name }) : undefined),
      onIdle: drain.onIdle
    })
    yield* Scope.addFinalizer(scope, drain.drain)
    const housekeeper = yield* Housekeeper.make(state, connector, {
      interval: millisOf(p.housekeepingInterval, d.housekeepingInterval),
      idleTimeToLive: millisOf(p.idleTimeToLive, d.idleTimeToLive),
      maxLifetime,
      keepAliveInterval: keepAlive,
      leakThreshold: leak,
      validate: validate === undefined ? undefined : (c) => validate(c, undefined),
      isReady: options.isReady,
      connectTimeout,
      defaultGroup: () => groupOf(undefined),
      dispatch: admission.dispatch,
      pending: admission.size,
      metrics
    })
    if (limits.min > 0 && p.warmUp !== false) yield* housekeeper.warmUp

    const stats = Effect.sync((): IdentityPool.Stats => {
      const s = state.snapshot(admission.size())
      const c = state.counters
      const perGroup = new Map<Group<C>, { idle: number; inUse: number }>()
      for (const group of state.groups.values()) perGroup.set(group, { idle: 0, inUse: 0 })
      for (const conn of state.conns) {
        let counts = perGroup.get(conn.group)
        if (counts === undefined) perGroup.set(conn.group, counts = { idle: 0, inUse: 0 })
        if (conn.holders > 0) counts.inUse++
        else counts.idle++
      }
      return {
        name,
        idle: s.idle,
        inUse: s.inUse,
        pending: s.pending,
        min: limits.min,
        max: limits.max,
        created: c.created + c.rebinds,
        destroyed: c.destroyed,
        acquireFailures: c.acquireFailures,
        timeouts: c.timeouts,
        validationFailures: c.validationFailures,
        leaksDetected: c.leaksDetected,
        borrows: c.borrows,
        draining: state.draining,
        open: state.conns.size,
        evictions: c.evictions,
        rebinds: c.rebinds,
        rebindFailures: c.rebindFailures,
        reuseRate: c.borrows === 0 ? 1 : c.hits / c.borrows,
        identities: [...perGroup].map(([group, counts]) => ({
          label: group.key === DEFAULT ? DEFAULT : group.label,
          idle: counts.idle,
          inUse: counts.inUse,
          borrows: group.borrows,
          created: group.created
        }))
      }
    })

    const resize = (next: Limits) =>
      Effect.suspend(() => {
        const max = next.max ?? limits.max
        const wanted = {
          min: next.min ?? Math.min(limits.min, max),
          max,
          maxPerIdentity: next.maxPerIdentity ?? (perIdentityFollowsMax ? max : Math.min(limits.maxPerIdentity, max))
        }
        const error = checkLimits(name, wanted)
        if (error !== undefined) return Effect.fail(error)
        limits.min = wanted.min
        limits.max = wanted.max
        limits.maxPerIdentity = wanted.maxPerIdentity
        if (next.maxPerIdentity !== undefined) perIdentityFollowsMax = false
        // Shrinking: idle connections above the new limits close now (least recently used first), the rest as they are returned.
        const surplus = []
        let open = state.open
        const perGroup = new Map<Group<C>, number>()
        for (const conn of state.idle) {
          const count = perGroup.get(conn.group) ?? conn.group.count
          if (open > limits.max || count > limits.maxPerIdentity) {
            surplus.push(conn)
            open--
            perGroup.set(conn.group, count - 1)
          }
        }
        return Effect.andThen(
          Effect.forEach(surplus, connector.retire, { discard: true }),
          Effect.suspend(() => {
            // Growing: waiters are admitted at once.
            admission.dispatch()
            return housekeeper.warmUp
          })
        )
      })

    return {
      name,
      use: lease.use,
      invalidateIdle: Effect.suspend(() => {
        const idle = [...state.idle]
        return Effect.as(Effect.forEach(idle, connector.retire, { discard: true }), idle.length)
      }),
      stats,
      resize
    }
  })
