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
import type * as Duration from "effect/Duration"
import type * as Effect from "effect/Effect"
import type * as Schedule from "effect/Schedule"
import type * as Scope from "effect/Scope"
import type * as SubscriptionRef from "effect/SubscriptionRef"
import type { Health } from "./Balancer.ts"
import type { EndpointId } from "./Endpoint.ts"
import * as classifier from "./internal/health/classify.ts"
import * as monitor from "./internal/health/monitor.ts"
import type { InvalidPoolOptions } from "./PoolError.ts"

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
export const initialState: (endpoint: EndpointId) => HealthState = classifier.initialState

/**
 * The pure classification step: the state after one more probe.
 *
 * @since 0.1.0
 * @category state
 */
export const classify: (state: HealthState, outcome: Outcome, thresholds: Thresholds) => HealthState =
  classifier.classify

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

/**
 * Starts monitoring an endpoint. The probe loop is forked into the current
 * scope and stops when it closes. Invalid options fail with `InvalidPoolOptions` (an `InvalidOptions`).
 *
 * @since 0.1.0
 * @category constructors
 */
export const make: <E, R>(
  options: Options<E, R>
) => Effect.Effect<HealthMonitor, InvalidPoolOptions, R | Scope.Scope> = monitor.make
