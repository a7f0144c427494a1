/**
 * Run-time reconfiguration of a running set: drain, enable, weights, pool
 * limits, breaker thresholds, strategy, and `apply` (diff a whole new
 * configuration, check it all, then change what differs).
 *
 * @internal
 */
import { Effect } from "effect"
import type { Duration } from "effect"
import type * as Balancer from "../Balancer.ts"
import type * as CircuitBreaker from "../CircuitBreaker.ts"
import * as Endpoint from "../Endpoint.ts"
import type * as IdentityPool from "../IdentityPool.ts"
import { InvalidBreakerOptions, type InvalidPoolOptions } from "../PoolError.ts"
import type * as ServerSet from "../ServerSet.ts"
import { UnknownEndpoint } from "../ServerSet.ts"
import * as BreakerOptions from "./breaker/options.ts"
import { defaults as poolDefaults } from "./connectionPool.ts"
import { checkLimits, resized } from "./poolLimits.ts"

/** What reconfiguration needs of one member of a set. */
export interface Steerable {
  endpoint: Endpoint.Endpoint
  readonly pool: Pick<IdentityPool.IdentityPool<unknown, unknown>, "resize">
  readonly breaker: Pick<CircuitBreaker.CircuitBreaker, "reconfigure"> | undefined
}

/** The set's pool limits, as `IdentityPool` tracks them. */
export interface PoolLimits {
  readonly max: number
  readonly maxPerIdentity: number
  readonly min: number
  readonly perIdentityFollowsMax: boolean
}

/** Settings every endpoint added from now on is built with; changed by `resizePool`, `setBreaker` and `apply`. */
export interface Live {
  pool: PoolLimits
  breaker: false | ServerSet.BreakerThresholds | undefined
}

/** The initial live settings of a set. */
export const liveOf = (options: {
  readonly pool?: IdentityPool.Limits | undefined
  readonly breaker?: false | ServerSet.BreakerThresholds | undefined
}): Live => {
  const max = options.pool?.max ?? poolDefaults.max
  return {
    pool: {
      max,
      maxPerIdentity: options.pool?.maxPerIdentity ?? max,
      min: options.pool?.min ?? 0,
      perIdentityFollowsMax: options.pool?.maxPerIdentity === undefined
    },
    breaker: options.breaker
  }
}

/** The limits to build a new endpoint's pool with. */
export const poolLimitsOf = (live: Live): IdentityPool.Limits => ({
  max: live.pool.max,
  maxPerIdentity: live.pool.perIdentityFollowsMax ? undefined : live.pool.maxPerIdentity,
  min: live.pool.min
})

/** What `diff` compares: the running configuration. */
export interface Running {
  readonly endpoints: ReadonlyArray<Endpoint.Endpoint>
  readonly strategy: Balancer.Strategy
  readonly pool: PoolLimits
  readonly breaker: false | ServerSet.BreakerThresholds | undefined
}

/** A new configuration, its endpoints decoded. */
export interface Wanted {
  readonly endpoints?: ReadonlyArray<Endpoint.Endpoint> | undefined
  readonly strategy?: Balancer.Strategy | undefined
  readonly pool?: IdentityPool.Limits | undefined
  readonly breaker?: false | ServerSet.BreakerThresholds | undefined
}

/** JSON with sorted keys, for comparing plain configuration values. */
const canonical = (value: unknown): string =>
  JSON.stringify(value, (_key, v: unknown) =>
    typeof v === "object" && v !== null && !Array.isArray(v)
      ? Object.fromEntries(Object.entries(v).filter(([, x]) => x !== undefined).sort(([a], [b]) => a < b ? -1 : 1))
      : v)

/** An endpoint's connection settings: what cannot change without replacing it. */
const connectionOf = ({ priority: _p, role: _r, weight: _w, ...rest }: Endpoint.Endpoint) => canonical(rest)

/**
 * The changes that turn `running` into `wanted`, in the order they are
 * applied: settings first (new endpoints are built with them), then
 * endpoints added, replaced, updated, and removed last. Pure.
 */
export const diff = (running: Running, wanted: Wanted): ReadonlyArray<ServerSet.Change> => {
  const changes: Array<ServerSet.Change> = []
  if (wanted.pool !== undefined) {
    const next = resized(running.pool, wanted.pool)
    if (
      next.max !== running.pool.max || next.maxPerIdentity !== running.pool.maxPerIdentity ||
      next.min !== running.pool.min
    ) {
      changes.push({ _tag: "PoolResized", limits: wanted.pool })
    }
  }
  if (
    wanted.breaker !== undefined && wanted.breaker !== false &&
    canonical(wanted.breaker) !== canonical(running.breaker ?? {})
  ) {
    changes.push({ _tag: "BreakerChanged" })
  }
  if (wanted.strategy !== undefined && wanted.strategy !== running.strategy) {
    changes.push({ _tag: "StrategyChanged", from: running.strategy, to: wanted.strategy })
  }
  if (wanted.endpoints !== undefined) {
    const before = new Map(running.endpoints.map((e) => [e.id, e]))
    const after = new Set(wanted.endpoints.map((e) => e.id))
    for (const e of wanted.endpoints) {
      const old = before.get(e.id)
      if (old === undefined) changes.push({ _tag: "EndpointAdded", endpoint: e.id })
      else if (connectionOf(old) !== connectionOf(e)) changes.push({ _tag: "EndpointReplaced", endpoint: e.id })
      else if (old.weight !== e.weight || old.priority !== e.priority || old.role !== e.role) {
        changes.push({ _tag: "EndpointUpdated", endpoint: e.id, weight: e.weight, priority: e.priority, role: e.role })
      }
    }
    for (const id of before.keys()) if (!after.has(id)) changes.push({ _tag: "EndpointRemoved", endpoint: id })
  }
  return changes
}

const describe = (change: ServerSet.Change): string => {
  switch (change._tag) {
    case "EndpointAdded":
      return `added ${change.endpoint}`
    case "EndpointRemoved":
      return `removed ${change.endpoint}`
    case "EndpointReplaced":
      return `replaced ${change.endpoint} (its connection settings changed)`
    case "EndpointUpdated":
      return `${change.endpoint}: weight ${change.weight}, priority ${change.priority}, role ${change.role}`
    case "PoolResized":
      return `pool limits ${canonical(change.limits)}`
    case "BreakerChanged":
      return "breaker thresholds changed"
    case "StrategyChanged":
      return `strategy ${change.from} -> ${change.to}`
  }
}

const checkWeight = (id: string, weight: number): Endpoint.InvalidEndpoint | undefined =>
  Number.isInteger(weight) && weight >= 1 ? undefined : new Endpoint.InvalidEndpoint({
    endpoint: id,
    problems: [{ field: "weight", message: `must be a positive integer, got ${String(weight)}` }]
  })

/**
 * Waits until no operation is in flight on the endpoint (its borrows
 * included), for at most `limit`: closing a pool while a borrower is between
 * admission and lease would interrupt it.
 */
export const awaitIdle = (balancer: Balancer.Balancer, id: Endpoint.EndpointId, limit: Duration.Input = "30 seconds") =>
  Effect.asVoid(Effect.timeoutOption(balancer.whenIdle(id), limit))

/** A set, as reconfiguration sees it. */
export interface Target {
  readonly name: string
  readonly balancer: Balancer.Balancer
  readonly members: ReadonlyMap<Endpoint.EndpointId, Steerable>
  readonly live: Live
  readonly status: Effect.Effect<ServerSet.Status>
  readonly add: (endpoint: Endpoint.Endpoint) => Effect.Effect<void, Endpoint.InvalidEndpoint | InvalidPoolOptions>
  readonly remove: (id: Endpoint.EndpointId) => Effect.Effect<void>
}

/** The reconfiguration handle of one set. */
export const make = (target: Target): ServerSet.Reconfigure => {
  const { balancer, live, members, name } = target
  const log = (message: string, endpoint?: string) =>
    Effect.logInfo(`server set "${name}": ${message}`).pipe(
      Effect.annotateLogs(endpoint === undefined ? { set: name } : { set: name, endpoint })
    )
  const memberOf = (id: Endpoint.EndpointId) =>
    Effect.suspend(() => {
      const member = members.get(id)
      return member === undefined
        ? Effect.fail(new UnknownEndpoint({ set: name, endpoint: id, known: [...members.keys()] }))
        : Effect.succeed(member)
    })

  const setDraining = (id: Endpoint.EndpointId, draining: boolean) =>
    Effect.gen(function*() {
      yield* memberOf(id)
      yield* balancer.setDraining(id, draining)
      yield* log(draining ? `draining ${id}: no new work, work in flight finishes` : `enabled ${id}`, id)
    })

  const update = (member: Steerable, to: { weight: number; priority: number; role: Endpoint.Role }) =>
    Effect.suspend(() => {
      member.endpoint = { ...member.endpoint, weight: to.weight, priority: to.priority, role: to.role }
      return balancer.add({ id: member.endpoint.id, weight: to.weight, priority: to.priority, role: to.role })
    })

  const setWeight = (id: Endpoint.EndpointId, weight: number) =>
    Effect.gen(function*() {
      const member = yield* memberOf(id)
      const invalid = checkWeight(id, weight)
      if (invalid !== undefined) return yield* Effect.fail(invalid)
      const from = member.endpoint.weight
      yield* update(member, { weight, priority: member.endpoint.priority, role: member.endpoint.role })
      yield* log(`${id}: weight ${from} -> ${weight}`, id)
    })

  const resizeAll = (limits: IdentityPool.Limits) =>
    Effect.gen(function*() {
      const next = resized(live.pool, limits)
      const invalid = checkLimits(name, next)
      if (invalid !== undefined) return yield* Effect.fail(invalid)
      for (const member of members.values()) yield* member.pool.resize(limits)
      live.pool = next
      yield* log(`pool limits now max ${next.max}, maxPerIdentity ${next.maxPerIdentity}, min ${next.min}`)
    })

  const resizePool = (limits: IdentityPool.Limits, id?: Endpoint.EndpointId) =>
    id === undefined ? resizeAll(limits) : Effect.gen(function*() {
      const member = yield* memberOf(id)
      yield* member.pool.resize(limits)
      yield* log(`${id}: pool limits ${canonical(limits)}`, id)
    })

  const checkBreaker = (thresholds: false | ServerSet.BreakerThresholds) =>
    Effect.suspend(() => {
      if ((thresholds === false) !== (live.breaker === false)) {
        return Effect.fail(
          new InvalidBreakerOptions({
            endpoint: `server set "${name}"`,
            option: "breaker",
            value: thresholds === false ? false : "thresholds",
            allowed: live.breaker === false
              ? "false: the set was made without breakers; restart it to turn them on"
              : "thresholds: breakers cannot be turned off while running; raise the thresholds instead"
          })
        )
      }
      return thresholds === false
        ? Effect.void
        : Effect.asVoid(BreakerOptions.check({ ...thresholds, endpoint: `server set "${name}"` }))
    })

  const setBreaker = (thresholds: ServerSet.BreakerThresholds) =>
    Effect.gen(function*() {
      yield* checkBreaker(thresholds)
      for (const member of members.values()) {
        if (member.breaker !== undefined) yield* member.breaker.reconfigure(thresholds)
      }
      live.breaker = thresholds
      yield* log(`breaker thresholds ${canonical(thresholds)}`)
    })

  const setStrategy = (strategy: Balancer.Strategy) =>
    Effect.gen(function*() {
      const from = balancer.strategy
      yield* balancer.setStrategy(strategy)
      if (from !== strategy) yield* log(`strategy ${from} -> ${strategy}`)
    })

  const apply = (config: ServerSet.Reconfiguration) =>
    Effect.gen(function*() {
      // Everything is checked before anything changes.
      const endpoints = config.endpoints === undefined ? undefined : yield* Endpoint.decodeAll(config.endpoints)
      if (config.strategy !== undefined) yield* checkStrategy(config.strategy)
      if (config.pool !== undefined) {
        const invalid = checkLimits(name, resized(live.pool, config.pool))
        if (invalid !== undefined) return yield* Effect.fail(invalid)
      }
      if (config.breaker !== undefined) yield* checkBreaker(config.breaker)
      for (const e of endpoints ?? []) {
        const invalid = checkWeight(e.id, e.weight)
        if (invalid !== undefined) return yield* Effect.fail(invalid)
      }
      const running: Running = {
        endpoints: [...members.values()].map((m) => m.endpoint),
        strategy: balancer.strategy,
        pool: live.pool,
        breaker: live.breaker
      }
      const changes = diff(running, { ...config, endpoints })
      const byId = new Map((endpoints ?? []).map((e) => [e.id, e]))
      for (const change of changes) {
        switch (change._tag) {
          case "PoolResized":
            yield* resizeAll(change.limits)
            break
          case "BreakerChanged":
            yield* setBreaker(config.breaker as ServerSet.BreakerThresholds)
            break
          case "StrategyChanged":
            yield* setStrategy(change.to)
            break
          case "EndpointAdded":
            yield* target.add(byId.get(change.endpoint)!)
            break
          case "EndpointReplaced":
            yield* target.remove(change.endpoint)
            yield* target.add(byId.get(change.endpoint)!)
            break
          case "EndpointUpdated": {
            const member = members.get(change.endpoint)
            const { priority, role, weight } = change
            if (member !== undefined) yield* update(member, { weight, priority, role })
            break
          }
          case "EndpointRemoved":
            // No new work first, then it leaves once its work in flight is done.
            yield* balancer.setDraining(change.endpoint, true)
            yield* target.remove(change.endpoint)
            break
        }
        yield* log(`applied: ${describe(change)}`, "endpoint" in change ? change.endpoint : undefined)
      }
      if (changes.length === 0) yield* log("applied: no change")
      return changes
    })

  const checkStrategy = (strategy: Balancer.Strategy) =>
    Effect.suspend(() => {
      const from = balancer.strategy
      // Setting it back at once: a check that changes nothing when it passes.
      return Effect.andThen(balancer.setStrategy(strategy), balancer.setStrategy(from))
    })

  return {
    name,
    status: target.status,
    add: (input) => Effect.flatMap(Endpoint.decode(input), target.add),
    remove: target.remove,
    drain: (id) => setDraining(id, true),
    enable: (id) => setDraining(id, false),
    setWeight,
    resizePool,
    setBreaker,
    setStrategy,
    apply
  }
}

/**
 * One handle over several sets serving the same servers (a client's
 * exclusive and multiplexed sets): every change goes to each, in order;
 * `status` and `apply`'s answer are the first one's.
 */
export const combine = (
  first: ServerSet.Reconfigure,
  ...rest: ReadonlyArray<ServerSet.Reconfigure>
): ServerSet.Reconfigure => {
  if (rest.length === 0) return first
  const all = [first, ...rest]
  const each = <E>(f: (handle: ServerSet.Reconfigure) => Effect.Effect<unknown, E>) =>
    Effect.forEach(all, f, { discard: true })
  return {
    name: first.name,
    status: first.status,
    add: (endpoint) => each((h) => h.add(endpoint)),
    remove: (id) => each((h) => h.remove(id)),
    drain: (id) => each((h) => h.drain(id)),
    enable: (id) => each((h) => h.enable(id)),
    setWeight: (id, weight) => each((h) => h.setWeight(id, weight)),
    resizePool: (limits, id) => each((h) => h.resizePool(limits, id)),
    setBreaker: (thresholds) => each((h) => h.setBreaker(thresholds)),
    setStrategy: (strategy) => each((h) => h.setStrategy(strategy)),
    apply: (config) =>
      Effect.flatMap(first.apply(config), (changes) => Effect.as(Effect.forEach(rest, (h) => h.apply(config)), changes))
  }
}

/**
 * The handle of a client that runs without servers to steer (an in-process
 * database): there is no endpoint to name, adding one fails, and the rest
 * changes nothing.
 */
export const serverless = (name: string, status: Effect.Effect<ServerSet.Status>): ServerSet.Reconfigure => {
  const unknown = (id: string) => Effect.fail(new UnknownEndpoint({ set: name, endpoint: id, known: [] }))
  const refuse = (endpoint: string) =>
    Effect.fail(
      new Endpoint.InvalidEndpoint({
        endpoint,
        problems: [{ field: "url", message: `"${name}" runs in process and has no servers to add` }]
      })
    )
  return {
    name,
    status,
    add: (input) => refuse(typeof input === "string" ? Endpoint.redactUrl(input) : Endpoint.redactUrl(input.url)),
    remove: () => Effect.void,
    drain: unknown,
    enable: unknown,
    setWeight: unknown,
    resizePool: (_limits, id) => id === undefined ? Effect.void : unknown(id),
    setBreaker: () => Effect.void,
    setStrategy: () => Effect.void,
    apply: (config) =>
      config.endpoints !== undefined && config.endpoints.length > 0 ? refuse("(endpoints)") : Effect.succeed([])
  }
}
