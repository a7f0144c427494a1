/**
 * The health monitor's metrics, and one endpoint's instruments:
 * `tether_health_probe_latency_ms`, `tether_health_probes_total{outcome}`,
 * `tether_endpoint_health{status}`, `tether_probe_auth_failures_total` and
 * `tether_health_monitor_restarts_total`.
 */
import * as Metric from "effect/Metric"
import type { Health } from "../../Balancer.ts"
import type { EndpointId } from "../../Endpoint.ts"

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

/** One endpoint's instruments. */
export const forEndpoint = (endpoint: EndpointId) => {
  const gauges = new Map(statuses.map((status) => [status, Metric.withAttributes(healthGauge, { endpoint, status })]))
  return {
    latency: Metric.withAttributes(probeLatency, { endpoint }),
    success: Metric.withAttributes(probesTotal, { endpoint, outcome: "success" }),
    failure: Metric.withAttributes(probesTotal, { endpoint, outcome: "failure" }),
    timeout: Metric.withAttributes(probesTotal, { endpoint, outcome: "timeout" }),
    /** The gauge of one status (1 while it is the current one). */
    health: (status: Health) => gauges.get(status)!,
    restarts: Metric.withAttributes(restartsTotal, { endpoint }),
    authFailures: Metric.withAttributes(authFailuresTotal, { endpoint })
  }
}

export type EndpointMetrics = ReturnType<typeof forEndpoint>
