/**
 * The pure step of the health loop: the state before the first probe, and
 * the state after one more probe outcome under the thresholds (failures in a
 * row, successes to come back, latency EWMA). An auth failure is a server
 * that answered: healthy as far as the server goes, reported apart.
 */
import type { Health } from "../../Balancer.ts"
import type { EndpointId } from "../../Endpoint.ts"
import type { HealthState, Outcome, Thresholds } from "../../HealthMonitor.ts"
import * as Ewma from "../ewma.ts"

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
