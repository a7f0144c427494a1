import type { Context } from "effect"
import type { Fiber } from "effect"
import { Cause, Clock, Deferred, Duration, Effect, Exit, Metric, Random, Schedule, Scope, Stream, SubscriptionRef, Tracer } from "effect"
import * as Predicate from "effect/Predicate"
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
import { describeError } from "./format.ts"
import { OperationObserver } from "./operationObserver.ts"
import * as Reconfigure from "./reconfigure.ts"
import type { InvalidPoolOptions } from "../PoolError.ts"
import { PoolClosed } from "../PoolError.ts"
import * as Retry from "../Retry.ts"
import * as FiberStack from "./fiberStack.ts"
import * as RetryLoop from "./retry.ts"
import { ServerSetOptionsSchema } from "../ServerSetConfig.ts"
import * as Validation from "../Validation.ts"
import type * as ServerSet from "../ServerSet.ts"

/** One endpoint of a set, with everything that serves it. */
interface Member<C, E> {
  /** Replaced when its weight, priority or role changes (see `reconfigure.ts`). */
  endpoint: Endpoint.Endpoint
  readonly scope: Scope.Closeable
  readonly pool: IdentityPool.IdentityPool<C, E>
  readonly breaker: CircuitBreaker.CircuitBreaker | undefined
  readonly monitor: HealthMonitor.HealthMonitor | undefined
  requests: number
  successes: number
  failures: number
  /** The last failure that was the endpoint's doing (not a semantic one), described; carried by `NoEndpointAvailable`. */
  lastError: string | undefined
  /** Hands `successes` and `failures` to the metrics (the set's reporter, off the hot path). */
  readonly report: FlushedCounters.Flush<"successes" | "failures">
}

/** The `error.type` of a failed attempt's span event: the error's `_tag` when it has one (only named, never routed on). */
const tagOf = (u: unknown): string | undefined =>
  Predicate.hasProperty(u, "_tag") && typeof u._tag === "string" ? u._tag : undefined

/**
 * Records one attempt of `use` on its span: `tether.endpoint` (the endpoint
 * that ran it — the last one when it failed over), an event per failed attempt
 * (`tether.breaker.rejected` or `tether.attempt.failed`) and `tether.failover`
 * when an attempt succeeds after another endpoint failed.
 */
const annotateAttempt = (span: Tracer.Span, id: string, exit: Exit.Exit<unknown, unknown>): void => {
  if (span.status._tag === "Ended") return
  const previous = span.attributes.get("tether.endpoint")
  span.attribute("tether.endpoint", id)
  const now = BigInt(Date.now()) * 1_000_000n
  if (Exit.isSuccess(exit)) {
    if (previous !== undefined && previous !== id) span.event("tether.failover", now, { from: previous, to: id })
    return
  }
  const error = Cause.findErrorOption(exit.cause)
  const tag = error._tag === "Some" ? tagOf(error.value) : undefined
  const rejected = error._tag === "Some" && error.value instanceof CircuitBreaker.BreakerOpen
  span.event(rejected ? "tether.breaker.rejected" : "tether.attempt.failed", now, {
    "tether.endpoint": id,
    "error.type": tag ?? (Cause.hasInterruptsOnly(exit.cause) ? "interrupted" : "unknown")
  })
}

/** One attempt in progress on an endpoint, as seen by its frame (see `attemptOn`). */
interface Attempt {
  readonly id: Endpoint.EndpointId
  readonly member: { successes: number; failures: number; lastError: string | undefined }
  readonly start: number
  readonly span: Tracer.Span | undefined
  readonly onFailed: ((error: unknown) => Effect.Effect<unknown, unknown, unknown>) | undefined
}

/** `Effect.catch`'s choice: the failure to recover from, unless the cause holds a defect or no failure. */
const recoverable = (cause: Cause.Cause<unknown>): { readonly error: unknown } | undefined => {
  let found: { readonly error: unknown } | undefined
  for (const reason of cause.reasons) {
    if (reason._tag === "Die") return undefined
    if (reason._tag === "Fail" && found === undefined) found = { error: reason.error }
  }
  return found
}

/** The frame class of a set's attempts: `settle` does the bookkeeping, `onFailed` recovers. */
const attemptFrame = (settle: (attempt: Attempt, failure: Cause.Cause<unknown> | undefined) => undefined) => {
  class AttemptFrame implements Attempt {
    constructor(
      readonly id: Endpoint.EndpointId,
      readonly member: Attempt["member"],
      readonly start: number,
      readonly span: Tracer.Span | undefined,
      readonly onFailed: Attempt["onFailed"]
    ) {}
  }
  FiberStack.defineFrame(AttemptFrame, {
    onExit: settle,
    recover: (attempt, cause) => {
      if (attempt.onFailed === undefined) return undefined
      const failed = recoverable(cause)
      return failed === undefined ? undefined : attempt.onFailed(failed.error)
    }
  })
  return AttemptFrame
}

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

    // --- running operations --------------------------------------------------

    /** The per-call bookkeeping of an attempt that ended: in flight, outcome, latency, span. */
    const settleAttempt = (attempt: Attempt, failure: Cause.Cause<unknown> | undefined): undefined => {
      const { id, member, span } = attempt
      balancer.addInFlightUnsafe(id, -1)
      if (failure === undefined) {
        member.successes++
        balancer.recordLatencyUnsafe(id, clock.currentTimeMillisUnsafe() - attempt.start)
      } else {
        member.failures++
        const error = Cause.findErrorOption(failure)
        // A breaker's refusal is not the endpoint's own cause: keep the failure that opened it.
        if (
          error._tag === "Some" && !(error.value instanceof CircuitBreaker.BreakerOpen) &&
          classifyForBreaker(error.value).kind !== "semantic"
        ) {
          member.lastError = describeError(error.value)
        }
      }
      if (span !== undefined) annotateAttempt(span, id, failure === undefined ? Exit.void : Exit.failCause(failure))
      return undefined
    }
    const AttemptFrame = attemptFrame(settleAttempt)

    /**
     * One attempt on endpoint `id`, from inside the fiber's current step. `onFailed`: what a failure
     * (`Effect.catch`'s sense) turns into — the failover, for the first attempt. The attempt's end is
     * seen by one frame on the fiber's stack (`fiberStack.ts`), else by `onExitPrimitive` + `catch`.
     */
    const attemptOn = <A, E2, R>(
      fiber: Fiber.Fiber<unknown, unknown>,
      id: Endpoint.EndpointId,
      identity: Credentials | undefined,
      f: (connection: C, endpoint: Endpoint.Endpoint) => Effect.Effect<A, E2, R>,
      onFailed: ((error: unknown) => Effect.Effect<unknown, unknown, unknown>) | undefined
    ): Effect.Effect<A, ServerSet.UseError<E> | E2, R> => {
      const member = members.get(id)
      if (member === undefined) {
        // Removed between the pick and now: as if its pool had closed.
        const closed = Effect.fail(new PoolClosed({ pool: id }))
        return (onFailed === undefined ? closed : Effect.catch(closed, onFailed)) as Effect.Effect<A, ServerSet.UseError<E>, R>
      }
      // The `tether.serverset.use` span (when a tracing backend is installed, see `useWith`): which
      // endpoint ran it, and why attempts failed.
      const span = fiber.cache.span?._tag === "Span" && fiber.getRef(Tracer.Tracer) !== Tracer.nativeTracer
        ? fiber.cache.span
        : undefined
      member.requests++
      const attempt = new AttemptFrame(id, member, clock.currentTimeMillisUnsafe(), span, onFailed)
      const borrowed = member.pool.use(identity, (connection) => f(connection, member.endpoint))
      const guarded = member.breaker === undefined ? borrowed : member.breaker.protect(borrowed)
      balancer.addInFlightUnsafe(id, 1)
      const internals = FiberStack.internalsOf(fiber)
      if (internals !== undefined) {
        FiberStack.push(internals, attempt)
        return guarded
      }
      const observed = Effect.onExitPrimitive(
        guarded,
        (exit) => settleAttempt(attempt, Exit.isFailure(exit) ? exit.cause : undefined)
      )
      return (onFailed === undefined ? observed : Effect.catch(observed, onFailed)) as Effect.Effect<
        A,
        ServerSet.UseError<E> | E2,
        R
      >
    }

    const runOn = <A, E2, R>(
      id: Endpoint.EndpointId,
      identity: Credentials | undefined,
      f: (connection: C, endpoint: Endpoint.Endpoint) => Effect.Effect<A, E2, R>
    ): Effect.Effect<A, ServerSet.UseError<E> | E2, R> =>
      Effect.withFiber((fiber) => attemptOn(fiber, id, identity, f, undefined))

    const retrySchedule = options.retry === false ? Schedule.recurs(0) : options.retry?.schedule

    const hedgeDelay = options.hedge === undefined ? undefined : Duration.fromInputUnsafe(options.hedge.delay)

    // Per set, not per call: the failover's pick and its reaction to a refused connection.
    const pickFor = (context: Retry.PickContext) => balancer.pick(context.mode, context)
    const onRetryableFailure = ({ endpoint, fault }: { readonly endpoint: Endpoint.EndpointId; readonly fault: Fault }) =>
      // A refused connection is strong evidence: stop sending work there
      // until its monitor sees it answer again.
      fault.kind === "connection" && !fault.mayHaveReachedServer && members.get(endpoint)?.monitor !== undefined
        ? balancer.setHealth(endpoint, "unhealthy")
        : Effect.void
    const withCausesOf = <X>(error: X): Effect.Effect<never, X | Balancer.NoEndpointAvailable> =>
      error instanceof Balancer.NoEndpointAvailable ? withCauses(error) : Effect.fail(error)
    // Span attributes per mode for the default identity (the common case), built once.
    const defaultAttributes = {
      read: { "tether.set": name, "tether.mode": "read", "tether.identity": "default" },
      write: { "tether.set": name, "tether.mode": "write", "tether.identity": "default" }
    } as const

    const useWith = <A, E2, R>(
      identity: Credentials | undefined,
      f: (connection: C, endpoint: Endpoint.Endpoint) => Effect.Effect<A, E2, R>,
      useOptions?: ServerSet.UseOptions
    ): Effect.Effect<A, ServerSet.UseError<E> | E2, R> => {
      const mode = useOptions?.mode ?? "read"
      const idempotent = useOptions?.idempotent ?? false
      const hedged = hedgeDelay !== undefined && mode !== "write" && idempotent
      /** The endpoint of the last attempt, for the operation observer. */
      let last: Endpoint.EndpointId | undefined
      const attempt = (id: Endpoint.EndpointId): Effect.Effect<A, ServerSet.UseError<E> | E2, R> => {
        last = id
        return hedged ? hedge(id, identity, f, hedgeDelay, mode) : runOn(id, identity, f)
      }
      const failoverOptions: Retry.Options<A, ServerSet.UseError<E> | E2, R> = {
        operation: attempt,
        pick: pickFor,
        classify: classifyForRetry,
        mode,
        idempotent,
        schedule: retrySchedule as Schedule.Schedule<unknown, unknown> | undefined,
        onRetryableFailure
      }
      const routed = () => Effect.catch(Retry.failover(failoverOptions), withCausesOf)
      return Effect.withFiber((fiber) => {
        const native = fiber.getRef(Tracer.Tracer) === Tracer.nativeTracer
        const observer = fiber.getRef(OperationObserver)
        if (native && observer === undefined && !hedged) {
          // The common case, in this one step: pick, then the first attempt, whose frame turns a
          // failure into the failover (most calls succeed at once).
          const rng = fiber.getRef(Random.Random)
          const picked = balancer.pickUnsafe(() => rng.nextDoubleUnsafe(), mode)
          if (picked._tag === "Success") {
            const id = picked.success
            return attemptOn(fiber, id, identity, f, (error) =>
              Effect.catch(
                RetryLoop.afterFailure(failoverOptions, Retry.defaultSchedule, id, error as ServerSet.UseError<E> | E2),
                withCausesOf
              ))
          }
          // Nothing to pick: the failover waits and retries the pick, and reports why.
        }
        // The `tether.serverset.use` span, when a tracing backend is installed: with only Effect's
        // in-memory native tracer nobody can see it, and building it costs about as much as the routing.
        const traced = native
          ? routed()
          : Effect.withSpan(routed(), "tether.serverset.use", {
            attributes: identity === undefined && (mode === "read" || mode === "write") ? defaultAttributes[mode] : {
              "tether.set": name,
              "tether.mode": mode,
              // The label the user chose for the identity: never its principal or secret.
              "tether.identity": identity === undefined ? "default" : identity.label
            },
            // A stack trace per call costs more than the routing itself; the caller's span locates it.
            captureStackTrace: false
          })
        if (observer === undefined) return traced
        const start = clock.currentTimeNanosUnsafe()
        return Effect.onExitPrimitive(traced, (exit) => {
          observer({
            set: name,
            endpoint: last ?? "none",
            operation: useOptions?.operation ?? "use",
            outcome: Exit.isSuccess(exit) ? "success" : Cause.hasInterruptsOnly(exit.cause) ? "interrupted" : "failure",
            seconds: Number(clock.currentTimeNanosUnsafe() - start) / 1e9
          })
          return undefined
        })
      })
    }

    /** Adds each excluded endpoint's last failure (an operation's, else its health probe's) to the error. */
    const withCauses = (error: Balancer.NoEndpointAvailable): Effect.Effect<never, Balancer.NoEndpointAvailable> =>
      Effect.gen(function*() {
        const exclusions = yield* Effect.forEach(error.exclusions, (exclusion) =>
          Effect.gen(function*() {
            const member = members.get(exclusion.endpoint)
            if (member === undefined || exclusion.lastError !== undefined) return exclusion
            const probe = member.monitor === undefined ? undefined : (yield* member.monitor.get).lastError
            const lastError = member.lastError ?? probe
            return lastError === undefined ? exclusion : { ...exclusion, lastError }
          }))
        return yield* Effect.fail(new Balancer.NoEndpointAvailable({ mode: error.mode, exclusions }))
      })

    /** Runs on `first`; if no answer after `delay`, also on a second endpoint; the first answer wins. */
    const hedge = <A, E2, R>(
      first: Endpoint.EndpointId,
      identity: Credentials | undefined,
      f: (connection: C, endpoint: Endpoint.Endpoint) => Effect.Effect<A, E2, R>,
      delay: Duration.Duration,
      mode: Balancer.AccessMode
    ): Effect.Effect<A, ServerSet.UseError<E> | E2, R> =>
      Effect.raceFirst(
        runOn(first, identity, f),
        Effect.sleep(delay).pipe(
          Effect.andThen(balancer.pick(mode, { avoid: new Set([first]) })),
          Effect.flatMap((second) => second === first ? Effect.never : runOn(second, identity, f))
        )
      )

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

    /**
     * Holds one connection for the life of a stream: a fiber borrows it (with
     * failover for the borrow and the stream's start) and hands it over; the
     * stream's finalizer gives it back.
     */
    const streamWith = <A, E2, R, RI>(
      identity: Effect.Effect<Credentials | undefined, never, RI>,
      f: (connection: C, endpoint: Endpoint.Endpoint) => Stream.Stream<A, E2, R>,
      useOptions?: ServerSet.UseOptions
    ): Stream.Stream<A, ServerSet.UseError<E> | E2, R | RI> =>
      Stream.unwrap(Effect.gen(function*() {
        const lent = yield* Deferred.make<readonly [C, Endpoint.Endpoint], ServerSet.UseError<E>>()
        const done = yield* Deferred.make<void>()
        const credentials = yield* identity
        yield* useWith(
          credentials,
          (connection, endpoint) => Effect.andThen(Deferred.succeed(lent, [connection, endpoint]), Deferred.await(done)),
          useOptions
        ).pipe(
          Effect.catchCause((cause) => Deferred.failCause(lent, cause)),
          Effect.forkScoped
        )
        yield* Effect.addFinalizer(() => Deferred.succeed(done, undefined))
        const [connection, endpoint] = yield* Deferred.await(lent)
        return f(connection, endpoint)
      }))

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
