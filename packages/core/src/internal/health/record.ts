/**
 * Recording one probe outcome: the next state (through `classify`), the
 * probe metrics, the auth-failure reporting (one WARN when the probe's
 * credentials start being rejected, one INFO when they are accepted again)
 * and, on a status change, the health gauge, its log and `onUnhealthy`.
 */
import * as Effect from "effect/Effect"
import * as Metric from "effect/Metric"
import * as SubscriptionRef from "effect/SubscriptionRef"
import type { EndpointId } from "../../Endpoint.ts"
import type { HealthState, Outcome, Thresholds } from "../../HealthMonitor.ts"
import { classify } from "./classify.ts"
import type { EndpointMetrics } from "./metrics.ts"

export const make = (
  endpoint: EndpointId,
  state: SubscriptionRef.SubscriptionRef<HealthState>,
  thresholds: Thresholds,
  metrics: EndpointMetrics,
  onUnhealthy: ((state: HealthState) => Effect.Effect<void>) | undefined
): (outcome: Outcome) => Effect.Effect<void> => {
  const onStatusChange = (previous: HealthState, next: HealthState): Effect.Effect<void> => {
    const gauges = Effect.andThen(
      Metric.update(metrics.health(previous.status), 0),
      Metric.update(metrics.health(next.status), 1)
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
    const callback = next.status === "unhealthy" && onUnhealthy !== undefined
      ? onUnhealthy(next)
      : Effect.void
    return Effect.all([gauges, Effect.annotateLogs(log, { endpoint }), callback], { discard: true })
  }

  return (outcome) =>
    Effect.flatMap(
      SubscriptionRef.modify(state, (previous) => {
        const next = classify(previous, outcome, thresholds)
        return [[previous, next] as const, next]
      }),
      ([previous, next]) => {
        const metric = outcome._tag === "Success"
          ? Effect.andThen(Metric.update(metrics.success, 1), Metric.update(metrics.latency, outcome.latency))
          : outcome._tag === "AuthFailure"
          ? Effect.andThen(Metric.update(metrics.success, 1), Metric.update(metrics.authFailures, 1))
          : Metric.update(outcome.timedOut ? metrics.timeout : metrics.failure, 1)
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
}
