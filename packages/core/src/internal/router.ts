/**
 * The set's router: runs one operation on an endpoint the balancer picks, with
 * the per-call bookkeeping (in flight, outcome, latency, the last failure), the
 * failover across endpoints (`retry.ts`), hedged reads and streams. The common
 * call — no tracing backend, no operation observer, no hedge — picks, starts
 * its first attempt and installs one frame (`fiberStack.ts`) in a single step;
 * the failover's loop is entered only when that attempt fails.
 *
 * @internal
 */
import type { Clock, Fiber, Scope } from "effect"
import { Cause, Deferred, Duration, Effect, Exit, Random, Schedule, Stream, Tracer } from "effect"
import * as Predicate from "effect/Predicate"
import * as Result from "effect/Result"
import * as Balancer from "../Balancer.ts"
import * as CircuitBreaker from "../CircuitBreaker.ts"
import type * as Endpoint from "../Endpoint.ts"
import type { Fault } from "../Fault.ts"
import type * as HealthMonitor from "../HealthMonitor.ts"
import type { Credentials } from "../Identity.ts"
import type * as IdentityPool from "../IdentityPool.ts"
import { PoolClosed } from "../PoolError.ts"
import * as Retry from "../Retry.ts"
import type * as ServerSet from "../ServerSet.ts"
import * as FiberStack from "./fiberStack.ts"
import type * as FlushedCounters from "./flushedCounters.ts"
import { describeError } from "./format.ts"
import { OperationObserver } from "./operationObserver.ts"
import * as RetryLoop from "./retry.ts"

/** One endpoint of a set, with everything that serves it. */
export interface Member<C, E> {
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

/** The bookkeeping of an attempt that ended (see `settleAttempt` in `make`). */
type Settle = (attempt: AttemptFrame, failure: Cause.Cause<unknown> | undefined) => void

/**
 * One attempt in progress on an endpoint, pushed as a frame on the fiber's stack (see `attemptOn`):
 * `settle` does its bookkeeping when it ends, `onFailed` turns a failure (in `Effect.catch`'s sense)
 * into what runs instead.
 */
class AttemptFrame {
  constructor(
    readonly settle: Settle,
    readonly id: Endpoint.EndpointId,
    readonly member: { successes: number; failures: number; lastError: string | undefined },
    readonly start: number,
    readonly span: Tracer.Span | undefined,
    readonly onFailed: ((error: unknown) => Effect.Effect<unknown, unknown, unknown>) | undefined
  ) {}
}

FiberStack.defineFrame(AttemptFrame, {
  onExit: (attempt, failure) => {
    attempt.settle(attempt, failure)
    return undefined
  },
  // What `Effect.catch` recovers from: a failure, unless the cause also holds a defect.
  recover: (attempt, cause) => {
    if (attempt.onFailed === undefined || Cause.hasDies(cause)) return undefined
    const error = Cause.findError(cause)
    return Result.isFailure(error) ? undefined : attempt.onFailed(error.success)
  }
})

/** What the router needs of its set. */
export interface RouterOptions<C, E> {
  readonly name: string
  readonly clock: Clock.Clock
  readonly balancer: Balancer.Balancer
  readonly members: ReadonlyMap<Endpoint.EndpointId, Member<C, E>>
  readonly classifyForRetry: (error: unknown) => Fault
  readonly classifyForBreaker: (error: unknown) => Fault
  readonly options: Pick<ServerSet.Options<C, E>, "retry" | "hedge">
}

/** @internal */
export const make = <C, E>(router: RouterOptions<C, E>) => {
  const { balancer, classifyForBreaker, classifyForRetry, clock, members, name, options } = router

  /** The per-call bookkeeping of an attempt that ended: in flight, outcome, latency, span. */
  const settleAttempt: Settle = (attempt, failure) => {
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
  }

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
    const attempt = new AttemptFrame(settleAttempt, id, member, clock.currentTimeMillisUnsafe(), span, onFailed)
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
      (exit) => {
        settleAttempt(attempt, Exit.isFailure(exit) ? exit.cause : undefined)
        return undefined
      }
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

  /** The failover of one call (built only when it is needed); `onAttempt` hears each endpoint tried. */
  const failoverOf = <A, E2, R>(
    identity: Credentials | undefined,
    f: (connection: C, endpoint: Endpoint.Endpoint) => Effect.Effect<A, E2, R>,
    mode: Balancer.AccessMode,
    idempotent: boolean,
    /** Hedge each attempt after this delay (`undefined`: no hedging). */
    hedgeAfter: Duration.Duration | undefined,
    onAttempt: ((id: Endpoint.EndpointId) => void) | undefined
  ): Retry.Options<A, ServerSet.UseError<E> | E2, R> => ({
    operation: (id) => {
      onAttempt?.(id)
      return hedgeAfter !== undefined ? hedge(id, identity, f, hedgeAfter, mode) : runOn(id, identity, f)
    },
    pick: pickFor,
    classify: classifyForRetry,
    mode,
    idempotent,
    schedule: retrySchedule as Schedule.Schedule<unknown, unknown> | undefined,
    onRetryableFailure
  })

  const useWith = <A, E2, R>(
    identity: Credentials | undefined,
    f: (connection: C, endpoint: Endpoint.Endpoint) => Effect.Effect<A, E2, R>,
    useOptions?: ServerSet.UseOptions
  ): Effect.Effect<A, ServerSet.UseError<E> | E2, R> => {
    const mode = useOptions?.mode ?? "read"
    const idempotent = useOptions?.idempotent ?? false
    const hedged = hedgeDelay !== undefined && mode !== "write" && idempotent
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
              RetryLoop.afterFailure(
                failoverOf(identity, f, mode, idempotent, undefined, undefined),
                Retry.defaultSchedule,
                id,
                error as ServerSet.UseError<E> | E2
              ),
              withCausesOf
            ))
        }
        // Nothing to pick: the failover waits and retries the pick, and reports why.
      }
      /** The endpoint of the last attempt, for the operation observer. */
      let last: Endpoint.EndpointId | undefined
      const routed = Effect.catch(
        Retry.failover(failoverOf(identity, f, mode, idempotent, hedged ? hedgeDelay : undefined, (id) => (last = id))),
        withCausesOf
      )
      // The `tether.serverset.use` span, when a tracing backend is installed: with only Effect's
      // in-memory native tracer nobody can see it, and building it costs about as much as the routing.
      const traced = native
        ? routed
        : Effect.withSpan(routed, "tether.serverset.use", {
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

  return { useWith, streamWith }
}
