/**
 * `ServerSet.make`: builds a member (pool, breaker, health monitor) per
 * endpoint, wires them to the balancer, and exposes the set — its views,
 * status and run-time changes. Running an operation is `router.ts`'s job.
 *
 * @internal
 */
import type { Context } from "effect"
import { Clock, Effect, Exit, Metric, Schedule, Scope, Stream, SubscriptionRef } from "effect"
import * as Balancer from "../Balancer.ts"
import * as CircuitBreaker from "../CircuitBreaker.ts"
import type { Credentials } from "../Identity.ts"
import * as IdentityPool from "../IdentityPool.ts"
import type * as Driver from "../Driver.ts"
import * as Endpoint from "../Endpoint.ts"
import type { Fault } from "../Fault.ts"
import { isPoolFailure, ofPoolError } from "../Fault.ts"
import * as HealthMonitor from "../HealthMonitor.ts"
import * as FlushedCounters from "./flushedCounters.ts"
import * as Reconfigure from "./reconfigure.ts"
import type { InvalidPoolOptions } from "../PoolError.ts"
import type { Member } from "./router.ts"
import * as Router from "./router.ts"
import { ServerSetOptionsSchema } from "../ServerSetConfig.ts"
import * as Validation from "../Validation.ts"
import type * as ServerSet from "../ServerSet.ts"

const requestsTotal = Metric.counter("tether_serverset_requests_total", {
  description: "Operations run through a server set, by endpoint and outcome",
  incremental: true
})

const fencedTotal = Metric.counter("tether_fenced_endpoints_total", {
  description: "Endpoints fenced as stale primaries (they claimed the primary role on an old timeline)",
  incremental: true
})

/** @internal */
export const make = <C, E>(
  options: ServerSet.Options<C, E>
): Effect.Effect<ServerSet.ServerSet<C, E>, Endpoint.InvalidEndpoint | InvalidPoolOptions, Scope.Scope> =>
  Effect.gen(function*() {
    const label = typeof options?.name === "string" ? `server set "${options.name}"` : "server set"
    yield* Validation.validate(ServerSetOptionsSchema, options, { component: label })
    if (options.driver.checkOptions !== undefined) yield* options.driver.checkOptions
    const setScope = yield* Scope.Scope
    const clock = yield* Clock.Clock
    const driver = options.driver
    const name = options.name
    const endpoints = yield* Endpoint.decodeAll(options.endpoints)
    const balancer = yield* Balancer.make({
      endpoints: endpoints.map((e) => ({ id: e.id, weight: e.weight, priority: e.priority, role: e.role })),
      strategy: options.strategy
    })
    const members = new Map<Endpoint.EndpointId, Member<C, E>>()
    /** Pool limits and breaker thresholds of endpoints built from now on (changed at run time). */
    const live = Reconfigure.liveOf(options)

    // The pool classifies its own errors (`Fault.ofPoolError`: they say nothing about the
    // server, except a connect that hung); everything else is the driver's call. (`Retry.failover`
    // itself treats `BreakerOpen`, by its class, as a connection fault that never reached the server.)
    const classifyForRetry = (error: unknown): Fault =>
      isPoolFailure(error) ? ofPoolError(error, "failover") : driver.classify(error)
    const classifyForBreaker = (error: unknown): Fault =>
      isPoolFailure(error) ? ofPoolError(error, "breaker") : driver.classify(error)

    /**
     * Applies a probe's role and timeline; an endpoint it fences is logged at
     * WARN and counted, once per fencing (the fence holds until lifted).
     */
    const observeProbe = (endpoint: Endpoint.Endpoint, result: unknown) => {
      const probe = typeof result === "object" && result !== null ? (result as Driver.Probe) : undefined
      if (probe === undefined || (probe.role === undefined && probe.timeline === undefined)) return Effect.void
      return Effect.flatMap(
        balancer.observe(endpoint.id, { role: probe.role, timeline: probe.timeline }),
        (fenced) => Effect.forEach(fenced, announceFence, { discard: true })
      )
    }
    const announceFence = (fence: Balancer.Fenced) =>
      Effect.andThen(
        Metric.update(Metric.withAttributes(fencedTotal, { set: name, endpoint: fence.endpoint }), 1),
        Effect.logWarning(
          `server set "${name}": ${fence.endpoint} claims the primary role on timeline ${fence.timeline} but ` +
            (fence.sameTimeline ? `another endpoint already holds timeline ${fence.timeline}` : `the newest timeline is ${fence.highest}`) +
            `: fenced as a stale primary, no work goes there until it rejoins as a replica or is unfenced`
        ).pipe(Effect.annotateLogs({ set: name, endpoint: fence.endpoint }))
      )

    const health = options.health === false ? undefined : options.health ?? {}
    const probeOf = (endpoint: Endpoint.Endpoint) => {
      const probe = driver.probe !== undefined
        ? driver.probe(endpoint)
        : Effect.scoped(Effect.flatMap(driver.connect(endpoint, undefined), (c) => driver.validate?.(c, undefined) ?? Effect.void))
      return Effect.flatMap(probe, (result) => observeProbe(endpoint, result))
    }

    /** Builds an endpoint's pool, breaker and monitor in a scope of its own. */
    const build = (endpoint: Endpoint.Endpoint) =>
      Effect.gen(function*() {
        const scope = yield* Scope.fork(setScope, "sequential")
        const member = yield* Effect.gen(function*() {
          const { max: _max, maxPerIdentity: _perIdentity, min: _min, ...poolOptions } = options.pool ?? {}
          const { max, maxPerIdentity, min } = Reconfigure.poolLimitsOf(live)
          const pool = yield* IdentityPool.make({
            name: `${name} ${endpoint.id}`,
            connect: (identity) => driver.connect(endpoint, identity),
            rebind: driver.rebind,
            validate: driver.validate,
            isReady: driver.isReady,
            isBroken: driver.isBroken,
            min,
            max,
            maxPerIdentity,
            pool: poolOptions
          })
          const breaker = live.breaker === false
            ? undefined
            : yield* CircuitBreaker.make({ ...live.breaker, endpoint: endpoint.id, classify: classifyForBreaker })
          if (breaker !== undefined) {
            yield* Stream.runForEach(
              SubscriptionRef.changes(breaker.state),
              (state) => balancer.setBreakerOpen(endpoint.id, state.status === "open")
            ).pipe(Effect.forkScoped)
          }
          let monitor: HealthMonitor.HealthMonitor | undefined
          if (health === undefined) {
            yield* balancer.setHealth(endpoint.id, "healthy")
          } else {
            monitor = yield* HealthMonitor.make({
              endpoint: endpoint.id,
              probe: probeOf(endpoint),
              schedule: Schedule.spaced(health.interval ?? "5 seconds").pipe(Schedule.jittered),
              timeout: health.timeout,
              degradedLatency: health.degradedLatency,
              unhealthyAfter: health.unhealthyAfter ?? 1,
              healthyAfter: health.healthyAfter,
              // A rejected probe bind says the server answered: reported, not counted against its health.
              isAuthFailure: (error) => driver.classify(error).kind === "authentication",
              // The server is gone: its idle connections are dead too.
              onUnhealthy: () => Effect.asVoid(pool.invalidateIdle)
            })
            let probes = 0
            yield* Stream.runForEach(SubscriptionRef.changes(monitor.state), (state) =>
              Effect.gen(function*() {
                yield* balancer.setHealth(endpoint.id, state.status)
                if (state.probes > probes && state.lastLatency !== undefined && state.consecutiveFailures === 0) {
                  yield* balancer.recordLatency(endpoint.id, state.lastLatency)
                }
                probes = state.probes
              })).pipe(Effect.forkScoped)
          }
          const attributes = { set: name, endpoint: endpoint.id }
          return {
            endpoint,
            scope,
            pool,
            breaker,
            monitor,
            requests: 0,
            successes: 0,
            failures: 0,
            lastError: undefined,
            report: FlushedCounters.make({
              successes: Metric.withAttributes(requestsTotal, { ...attributes, outcome: "success" }),
              failures: Metric.withAttributes(requestsTotal, { ...attributes, outcome: "failure" })
            })
          } satisfies Member<C, E>
        }).pipe(
          Scope.provide(scope),
          Effect.onError((cause) => Scope.close(scope, Exit.failCause(cause)))
        )
        members.set(endpoint.id, member)
        return member
      })

    yield* Effect.forEach(endpoints, build, { discard: true })

    // Updating an Effect metric costs about as much as routing a call, so
    // calls are counted in plain numbers and the metrics told once a second.
    const report = (member: Member<C, E>) => member.report(member)
    yield* Effect.suspend(() => Effect.forEach([...members.values()], report, { discard: true })).pipe(
      Effect.repeat(Schedule.spaced("1 second")),
      Effect.forkScoped
    )

    const { useWith, streamWith } = Router.make<C, E>({ name, clock, balancer, members, classifyForRetry, classifyForBreaker, options })

    // --- status and reconfiguration --------------------------------------------

    // Health, role, fence and drain come from the balancer's published snapshot (its `SubscriptionRef`);
    // latency and in-flight counts, which it does not publish, from its per-call state.
    const memberStatus = (member: Member<C, E>, snapshot: Balancer.Snapshot, state: Balancer.State) =>
      Effect.gen(function*() {
        const view = snapshot.endpoints.find((e) => e.id === member.endpoint.id)
        const counters = state.endpoints.find((e) => e.id === member.endpoint.id)
        const monitor = member.monitor === undefined ? undefined : yield* member.monitor.get
        return {
          id: member.endpoint.id,
          url: member.endpoint.url,
          role: view?.fenced !== undefined ? "stale-primary" : view?.role ?? member.endpoint.role,
          timeline: view?.timeline,
          fenced: view?.fenced,
          weight: member.endpoint.weight,
          priority: member.endpoint.priority,
          draining: view?.draining === true,
          health: view?.health ?? "unknown",
          monitor,
          probeAuthFailure: monitor?.probeAuthFailure,
          breaker: member.breaker === undefined ? undefined : yield* SubscriptionRef.get(member.breaker.state),
          pool: yield* member.pool.stats,
          latencyMillis: counters?.latency,
          inFlight: counters?.inFlight ?? 0,
          requests: member.requests,
          failures: member.failures
        } satisfies ServerSet.EndpointStatus
      })

    const status = Effect.gen(function*() {
      const snapshot = yield* balancer.snapshot
      const state = yield* balancer.state
      const statuses = yield* Effect.forEach([...members.values()], (m) => memberStatus(m, snapshot, state))
      return { name, strategy: snapshot.strategy, endpoints: statuses } satisfies ServerSet.Status
    })

    const add = (input: Endpoint.EndpointInput | string) => Effect.flatMap(Endpoint.decode(input), addDecoded)
    const addDecoded = (endpoint: Endpoint.Endpoint) =>
      Effect.gen(function*() {
        if (members.has(endpoint.id)) {
          return yield* Effect.fail(
            new Endpoint.InvalidEndpoint({
              endpoint: endpoint.url,
              problems: [{ field: "id", message: `${JSON.stringify(endpoint.id)} is already in the set "${name}"` }]
            })
          )
        }
        yield* balancer.add({ id: endpoint.id, weight: endpoint.weight, priority: endpoint.priority, role: endpoint.role })
        yield* build(endpoint).pipe(Effect.onError(() => balancer.remove(endpoint.id)))
        yield* Effect.logInfo(`server set "${name}": added ${endpoint.id}`)
      })

    const unfence = (id: Endpoint.EndpointId) =>
      Effect.tap(balancer.unfence(id), (unfenced) =>
        unfenced
          ? Effect.logWarning(`server set "${name}": ${id} unfenced by the operator; it may take writes again`).pipe(
            Effect.annotateLogs({ set: name, endpoint: id })
          )
          : Effect.void)

    const remove = (id: Endpoint.EndpointId) =>
      Effect.gen(function*() {
        const member = members.get(id)
        if (member === undefined) return
        // No new picks; the work in flight (borrowing included) finishes, then the pool closes.
        yield* balancer.setDraining(id, true)
        yield* Reconfigure.awaitIdle(balancer, id)
        yield* balancer.remove(id)
        members.delete(id)
        yield* Scope.close(member.scope, Exit.void)
        yield* report(member)
        yield* Effect.logInfo(`server set "${name}": removed ${id}`)
      })

    // --- identity-bound views ------------------------------------------------------

    const noIdentity = Effect.succeed(undefined)
    const defaultView: ServerSet.View<C, E, never> = {
      key: undefined,
      use: (f, useOptions) => useWith(undefined, f, useOptions),
      useStream: (f, useOptions) => streamWith(noIdentity, f, useOptions)
    }
    /** One view per key, made on first use and kept while the key lives (a key made per request leaks nothing). */
    const views = new WeakMap<Context.Key<unknown, Credentials>, ServerSet.View<C, E, unknown>>()
    const viewOf = <I>(key: Context.Key<I, Credentials>): ServerSet.View<C, E, I> => ({
      key,
      // A key is the effect that reads its service: no effect is built to read it.
      use: (f, useOptions) => Effect.flatMap(key, (identity) => useWith(identity, f, useOptions)),
      useStream: (f, useOptions) => streamWith(key, f, useOptions)
    })
    const as = <I = never>(key?: Context.Key<I, Credentials> | undefined): ServerSet.View<C, E, I> => {
      if (key === undefined) return defaultView
      let view = views.get(key) as ServerSet.View<C, E, I> | undefined
      if (view === undefined) {
        view = viewOf(key)
        views.set(key, view)
      }
      return view
    }

    return {
      name,
      as,
      status,
      endpoints: Effect.sync(() => [...members.values()].map((m) => m.endpoint)),
      balancerChanges: balancer.changes,
      add,
      remove,
      unfence,
      reconfigure: Reconfigure.make({ name, balancer, members, live, status, add: addDecoded, remove })
    } satisfies ServerSet.ServerSet<C, E>
  })
