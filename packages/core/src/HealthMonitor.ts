/**
 * Watches one endpoint: a supervised fiber, forked into the caller's scope,
 * runs a user-supplied probe on a `Schedule` (jittered by default), with a
 * timeout, and classifies the endpoint:
 *
 * - `unknown`: not probed yet;
 * - `healthy`: the last probe succeeded and the latency EWMA is at most
 *   `degradedLatency`;
 * - `degraded`: the latency EWMA is above `degradedLatency`, or some probes
 *   failed in a row but fewer than `unhealthyAfter`;
 * - `unhealthy`: `unhealthyAfter` probes in a row failed or timed out. It
 *   stays unhealthy until `healthyAfter` probes in a row succeed.
 *
 * A probe whose credentials are rejected (`isAuthFailure`) says the server
 * *answered*: it counts as a successful probe for the endpoint's health, and
 * the rejection is reported apart — `probeAuthFailure` in the state, one WARN
 * log when it starts (and an INFO one when it ends), and the counter
 * `tether_probe_auth_failures_total{endpoint}` — so a wrong service-account
 * password never takes a working server away from identities that can bind.
 *
 * The state is published in a `SubscriptionRef`. `onUnhealthy` runs each
 * time the endpoint becomes unhealthy (the pool drops its idle connections
 * there). A probe *failure* or timeout is a failed probe; a *defect* (the
 * probe or `onUnhealthy` threw) kills the loop: it is logged, counted in
 * `restarts`, and the loop restarts after a backoff. The fiber stops when the
 * scope closes.
 *
 * Metrics: `tether_health_probe_latency_ms{endpoint}` (histogram of
 * successful probes), `tether_health_probes_total{endpoint, outcome}`
 * (`success`, `failure`, `timeout`), `tether_endpoint_health{endpoint,
 * status}` (1 for the current status, 0 for the others) and
 * `tether_health_monitor_restarts_total{endpoint}`.
 *
 * @example
 * ```ts
 * import { Effect, Schedule } from "effect"
 * import { HealthMonitor } from "@tether/core"
 *
 * const program = Effect.gen(function*() {
 *   const monitor = yield* HealthMonitor.make({
 *     endpoint: "ldap://ldap1:389",
 *     probe: Effect.void, // e.g. a "Who am I?" on a fresh connection
 *     schedule: Schedule.spaced("5 seconds").pipe(Schedule.jittered),
 *     timeout: "2 seconds",
 *     degradedLatency: "250 millis",
 *     unhealthyAfter: 3
 *   })
 *   return yield* monitor.get
 * }).pipe(Effect.scoped)
 * ```
 *
 * @since 0.1.0
 */
import * as Cause from "effect/Cause"
import * as Clock from "effect/Clock"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Metric from "effect/Metric"
import * as Schedule from "effect/Schedule"
import * as Schema from "effect/Schema"
import type * as Scope from "effect/Scope"
import * as SubscriptionRef from "effect/SubscriptionRef"
import type { Health } from "./Balancer.ts"
import type { EndpointId } from "./Endpoint.ts"
import * as Ewma from "./internal/ewma.ts"
import * as Millis from "./internal/millis.ts"
import { describeError, formatMillis } from "./internal/format.ts"
import type { InvalidPoolOptions } from "./PoolError.ts"
import * as Validation from "./Validation.ts"

/**
 * What a health monitor publishes.
 *
 * @since 0.1.0
 * @category models
 */
export interface HealthState {
  readonly endpoint: EndpointId
  readonly status: Health
  /** Latency of the last successful probe, in milliseconds. */
  readonly lastLatency: number | undefined
  /** EWMA of the successful probes' latencies, in milliseconds. */
  readonly latencyEwma: number | undefined
  readonly consecutiveFailures: number
  readonly consecutiveSuccesses: number
  /** The last failure's message (the probe's error message; drivers keep secrets out of it). */
  readonly lastError: string | undefined
  /** When the last probe finished (epoch milliseconds, from `Clock`). */
  readonly lastProbeAt: number | undefined
  readonly probes: number
  readonly failures: number
  /** How many times the probe loop died with a defect and was restarted. */
  readonly restarts: number
  /**
   * While the probe's own credentials are rejected: the rejection's message
   * (the server answered, so this does not make the endpoint unhealthy).
   */
  readonly probeAuthFailure: string | undefined
  /** Probes whose credentials were rejected, in total. */
  readonly probeAuthFailures: number
}

/**
 * What a probe may return: nothing (its latency is then measured around it),
 * or the latency it measured itself (e.g. a server-side round trip).
 *
 * @since 0.1.0
 * @category models
 */
export type ProbeResult = void | { readonly latency?: Duration.Input | undefined }

/**
 * The outcome of one probe, as {@link classify} sees it.
 *
 * @since 0.1.0
 * @category models
 */
export type Outcome =
  | { readonly _tag: "Success"; readonly latency: number; readonly at: number }
  | { readonly _tag: "AuthFailure"; readonly error: string; readonly latency: number; readonly at: number }
  | { readonly _tag: "Failure"; readonly error: string; readonly timedOut: boolean; readonly at: number }

/**
 * The thresholds of {@link classify}.
 *
 * @since 0.1.0
 * @category models
 */
export interface Thresholds {
  /** Latency EWMA (ms) above which a responsive endpoint is `degraded`; `undefined`: never. */
  readonly degradedLatency: number | undefined
  readonly unhealthyAfter: number
  readonly healthyAfter: number
  readonly latencyAlpha: number
}

/**
 * The state before the first probe.
 *
 * @since 0.1.0
 * @category state
 */
export const initialState = (endpoint: EndpointId): HealthState => ({
  endpoint,
  status: "unknown",
  lastLatency: undefined,
  latencyEwma: undefined,
  consecutiveFailures: 0,
  consecutiveSuccesses: 0,
  lastError: undefined,
  lastProbeAt: undefined,
  probes: 0,
  failures: 0,
  restarts: 0,
  probeAuthFailure: undefined,
  probeAuthFailures: 0
})

/**
 * The pure classification step: the state after one more probe.
 *
 * @since 0.1.0
 * @category state
 */
export const classify = (state: HealthState, outcome: Outcome, thresholds: Thresholds): HealthState => {
  if (outcome._tag === "AuthFailure") {
    // The server answered (it rejected our probe's credentials): healthy as far as the server goes.
    const answered = classify(state, { _tag: "Success", latency: outcome.latency, at: outcome.at }, thresholds)
    return { ...answered, probeAuthFailure: outcome.error, probeAuthFailures: state.probeAuthFailures + 1 }
  }
  if (outcome._tag === "Success") {
    const latencyEwma = Ewma.next(state.latencyEwma, outcome.latency, thresholds.latencyAlpha)
    const consecutiveSuccesses = state.consecutiveSuccesses + 1
    const status: Health = state.status === "unhealthy" && consecutiveSuccesses < thresholds.healthyAfter
      ? "unhealthy"
      : thresholds.degradedLatency !== undefined && latencyEwma > thresholds.degradedLatency
      ? "degraded"
      : "healthy"
    return {
      ...state,
      status,
      lastLatency: outcome.latency,
      latencyEwma,
      consecutiveFailures: 0,
      consecutiveSuccesses,
      lastProbeAt: outcome.at,
      probes: state.probes + 1,
      probeAuthFailure: undefined
    }
  }
  const consecutiveFailures = state.consecutiveFailures + 1
  const status: Health = consecutiveFailures >= thresholds.unhealthyAfter || state.status === "unhealthy"
    ? "unhealthy"
    : "degraded"
  return {
    ...state,
    status,
    consecutiveFailures,
    consecutiveSuccesses: 0,
    lastError: outcome.error,
    lastProbeAt: outcome.at,
    probes: state.probes + 1,
    failures: state.failures + 1
  }
}

/**
 * Options of {@link make}.
 *
 * @since 0.1.0
 * @category models
 */
export interface Options<E, R> {
  readonly endpoint: EndpointId
  /** One health check. Its failure (or timeout) is a failed probe. */
  readonly probe: Effect.Effect<ProbeResult, E, R>
  /** When to probe again after a probe (default every 5 seconds ± 20%). The first probe runs at once. */
  readonly schedule?: Schedule.Schedule<unknown, unknown> | undefined
  /** A probe that takes longer fails (default 2 seconds). */
  readonly timeout?: Duration.Input | undefined
  /** Latency EWMA above which the endpoint is `degraded` (default: latency never degrades it). */
  readonly degradedLatency?: Duration.Input | undefined
  /** Failed probes in a row that make it `unhealthy` (default 3). */
  readonly unhealthyAfter?: number | undefined
  /** Successful probes in a row that bring it back from `unhealthy` (default 1). */
  readonly healthyAfter?: number | undefined
  /** Smoothing factor of the latency EWMA, in (0, 1] (default 0.3). */
  readonly latencyAlpha?: number | undefined
  /**
   * Says whether a probe failure means the probe's own credentials were
   * rejected (e.g. `driver.classify(error).kind === "authentication"`): the
   * server answered, so the probe counts as successful for health and the
   * rejection is reported in `probeAuthFailure`. Default: never.
   */
  readonly isAuthFailure?: ((error: E) => boolean) | undefined
  /** Runs each time the endpoint becomes `unhealthy`. */
  readonly onUnhealthy?: ((state: HealthState) => Effect.Effect<void>) | undefined
  /** Backoff between restarts of a crashed probe loop (default exponential from 1 second, at most 1 minute). */
  readonly restartSchedule?: Schedule.Schedule<unknown, unknown> | undefined
}

/**
 * A running health monitor.
 *
 * @since 0.1.0
 * @category models
 */
export interface HealthMonitor {
  readonly endpoint: EndpointId
  /** The published state: current value and a stream of changes (one per probe). */
  readonly state: SubscriptionRef.SubscriptionRef<HealthState>
  /** The current state. */
  readonly get: Effect.Effect<HealthState>
}

const probeLatency = Metric.histogram("tether_health_probe_latency_ms", {
  description: "Latency of successful health probes, in milliseconds",
  boundaries: Metric.exponentialBoundaries({ start: 1, factor: 2, count: 16 })
})
const probesTotal = Metric.counter("tether_health_probes_total", {
  description: "Health probes run, by outcome (success, failure, timeout)",
  incremental: true
})
const healthGauge = Metric.gauge("tether_endpoint_health", {
  description: "Endpoint health: 1 for the current status of each endpoint, 0 for the others"
})
const authFailuresTotal = Metric.counter("tether_probe_auth_failures_total", {
  description: "Health probes whose own credentials the server rejected (the server answered)",
  incremental: true
})
const restartsTotal = Metric.counter("tether_health_monitor_restarts_total", {
  description: "Health probe loops restarted after a defect",
  incremental: true
})

const statuses: ReadonlyArray<Health> = ["unknown", "healthy", "degraded", "unhealthy"]

const millisOf = (input: Duration.Input): number => Millis.withFallback(input, 0)

const OptionsSchema = Schema.Struct({
  endpoint: Schema.String,
  probe: Validation.Opaque("an Effect", Effect.isEffect),
  schedule: Schema.optional(Validation.Opaque("a Schedule", (u) => u === undefined || (typeof u === "object" && u !== null))),
  timeout: Schema.optional(Validation.PositiveDurationInput),
  degradedLatency: Schema.optional(Validation.DurationInput),
  unhealthyAfter: Schema.optional(Validation.IntAtLeast(1)),
  healthyAfter: Schema.optional(Validation.IntAtLeast(1)),
  latencyAlpha: Schema.optional(
    Schema.Number.check(Schema.makeFilter((n) => n > 0 && n <= 1 ? undefined : "a number in (0, 1]"))
  ),
  isAuthFailure: Schema.optional(Validation.Opaque("a function", (u) => u === undefined || typeof u === "function")),
  onUnhealthy: Schema.optional(Validation.Opaque("a function", (u) => u === undefined || typeof u === "function")),
  restartSchedule: Schema.optional(
    Validation.Opaque("a Schedule", (u) => u === undefined || (typeof u === "object" && u !== null))
  )
})

const defaultSchedule: Schedule.Schedule<unknown, unknown> = Schedule.spaced("5 seconds").pipe(Schedule.jittered)
const defaultRestartSchedule: Schedule.Schedule<unknown, unknown> = Schedule.exponential("1 second").pipe(
  Schedule.modifyDelay(({ duration }) => Effect.succeed(Duration.min(duration, Duration.minutes(1))))
)

/**
 * Starts monitoring an endpoint. The probe loop is forked into the current
 * scope and stops when it closes. Invalid options fail with `InvalidPoolOptions` (an `InvalidOptions`).
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = <E, R>(options: Options<E, R>): Effect.Effect<HealthMonitor, InvalidPoolOptions, R | Scope.Scope> =>
  Effect.gen(function*() {
    yield* Validation.validate(OptionsSchema, options, {
      component: `health monitor of ${typeof options?.endpoint === "string" ? options.endpoint : "an endpoint"}`
    })
    const endpoint = options.endpoint
    const thresholds: Thresholds = {
      degradedLatency: options.degradedLatency === undefined ? undefined : millisOf(options.degradedLatency),
      unhealthyAfter: options.unhealthyAfter ?? 3,
      healthyAfter: options.healthyAfter ?? 1,
      latencyAlpha: options.latencyAlpha ?? Ewma.defaultAlpha
    }
    const timeout = Duration.fromInputUnsafe(options.timeout ?? "2 seconds")
    const timeoutMessage = `health probe timed out after ${formatMillis(Duration.toMillis(timeout))}`
    const clock = yield* Clock.Clock
    const state = yield* SubscriptionRef.make(initialState(endpoint))
    const latencyMetric = Metric.withAttributes(probeLatency, { endpoint })
    const outcomes = {
      success: Metric.withAttributes(probesTotal, { endpoint, outcome: "success" }),
      failure: Metric.withAttributes(probesTotal, { endpoint, outcome: "failure" }),
      timeout: Metric.withAttributes(probesTotal, { endpoint, outcome: "timeout" })
    }
    const gauges = new Map(statuses.map((status) => [status, Metric.withAttributes(healthGauge, { endpoint, status })]))
    const restartsMetric = Metric.withAttributes(restartsTotal, { endpoint })
    const authFailuresMetric = Metric.withAttributes(authFailuresTotal, { endpoint })
    yield* Metric.update(gauges.get("unknown")!, 1)

    const onStatusChange = (previous: HealthState, next: HealthState): Effect.Effect<void> => {
      const metrics = Effect.andThen(
        Metric.update(gauges.get(previous.status)!, 0),
        Metric.update(gauges.get(next.status)!, 1)
      )
      const message = `endpoint health ${previous.status} → ${next.status}`
      // A first verdict (from `unknown`) is INFO: an endpoint that is down from the start is reported by
      // the WARN of the first operation that gives up on it, with the cause, not twice.
      const log = next.status === "healthy" || previous.status === "unknown"
        ? Effect.logInfo(message).pipe(
          Effect.annotateLogs(next.lastError === undefined ? {} : { lastError: next.lastError })
        )
        : Effect.logWarning(message).pipe(
          Effect.annotateLogs({
            consecutiveFailures: next.consecutiveFailures,
            ...(next.lastError === undefined ? {} : { lastError: next.lastError }),
            ...(next.latencyEwma === undefined ? {} : { latencyEwmaMs: Math.round(next.latencyEwma) })
          })
        )
      const callback = next.status === "unhealthy" && options.onUnhealthy !== undefined
        ? options.onUnhealthy(next)
        : Effect.void
      return Effect.all([metrics, Effect.annotateLogs(log, { endpoint }), callback], { discard: true })
    }

    const record = (outcome: Outcome): Effect.Effect<void> =>
      Effect.flatMap(
        SubscriptionRef.modify(state, (previous) => {
          const next = classify(previous, outcome, thresholds)
          return [[previous, next] as const, next]
        }),
        ([previous, next]) => {
          const metric = outcome._tag === "Success"
            ? Effect.andThen(Metric.update(outcomes.success, 1), Metric.update(latencyMetric, outcome.latency))
            : outcome._tag === "AuthFailure"
            ? Effect.andThen(Metric.update(outcomes.success, 1), Metric.update(authFailuresMetric, 1))
            : Metric.update(outcome.timedOut ? outcomes.timeout : outcomes.failure, 1)
          const auth = previous.probeAuthFailure === undefined && next.probeAuthFailure !== undefined
            ? Effect.logWarning(
              `health probe credentials rejected: ${next.probeAuthFailure}. The server answered, so it stays in ` +
                `service for identities that can bind; fix the probe's (service account's) credentials`
            ).pipe(Effect.annotateLogs({ endpoint }))
            : previous.probeAuthFailure !== undefined && next.probeAuthFailure === undefined
            ? Effect.logInfo("health probe credentials accepted again").pipe(Effect.annotateLogs({ endpoint }))
            : Effect.void
          const reported = Effect.andThen(metric, auth)
          return previous.status === next.status ? reported : Effect.andThen(reported, onStatusChange(previous, next))
        }
      )

    const probeOnce: Effect.Effect<void, never, R> = Effect.suspend(() => {
      const start = clock.currentTimeMillisUnsafe()
      return Effect.flatMap(Effect.result(Effect.timeout(options.probe, timeout)), (result) => {
        const at = clock.currentTimeMillisUnsafe()
        if (result._tag === "Success") {
          const reported = result.success?.latency
          const latency = reported === undefined ? at - start : millisOf(reported)
          return record({ _tag: "Success", latency, at })
        }
        const timedOut = Cause.isTimeoutError(result.failure)
        if (!timedOut && options.isAuthFailure !== undefined && options.isAuthFailure(result.failure as E)) {
          return record({ _tag: "AuthFailure", error: describeError(result.failure), latency: at - start, at })
        }
        return record({
          _tag: "Failure",
          error: timedOut ? timeoutMessage : describeError(result.failure),
          timedOut,
          at
        })
      })
    })

    const loop = Effect.repeat(probeOnce, options.schedule ?? defaultSchedule)

    const supervised = Effect.gen(function*() {
      let restartStep: ((now: number, input: unknown) => Effect.Effect<readonly [unknown, Duration.Duration], unknown>) | undefined
      let lastDelay = 1000
      while (true) {
        const probesBefore = (yield* SubscriptionRef.get(state)).probes
        const cause = yield* Effect.matchCause(loop, { onSuccess: () => undefined, onFailure: (cause) => cause })
        // The schedule ended: monitoring is over.
        if (cause === undefined) return
        if (Cause.hasInterruptsOnly(cause)) return yield* Effect.interrupt
        const restarted = yield* SubscriptionRef.updateAndGet(state, (s) => ({
          ...s,
          restarts: s.restarts + 1,
          lastError: `health probe loop crashed: ${describeError(Cause.squash(cause))}`
        }))
        yield* Metric.update(restartsMetric, 1)
        // A loop that ran at least one probe since the last restart starts the backoff over.
        if (restarted.probes > probesBefore) restartStep = undefined
        if (restartStep === undefined) {
          restartStep = yield* Schedule.toStep(options.restartSchedule ?? defaultRestartSchedule)
        }
        const step = yield* Effect.result(restartStep(clock.currentTimeMillisUnsafe(), cause))
        if (step._tag === "Success") lastDelay = Duration.toMillis(step.success[1])
        yield* Effect.logError(
          `health probe loop crashed (restart #${restarted.restarts}); restarting in ${formatMillis(lastDelay)}`,
          cause
        ).pipe(Effect.annotateLogs({ endpoint }))
        yield* Effect.sleep(Duration.millis(lastDelay))
      }
    })

    yield* Effect.forkScoped(supervised)
    return { endpoint, state, get: SubscriptionRef.get(state) }
  })
