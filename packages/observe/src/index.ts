/**
 * @tether/observe — operate Tether: OpenTelemetry export, a performance
 * monitor, Prometheus metrics, health and status endpoints and a live dashboard.
 *
 * @since 0.1.0
 */

/** The one layer an app adds: monitor + OpenTelemetry + admin server. */
export * as Observe from "./Observe.ts"

/** Operation timing and the recent history of every watched set. */
export * as Monitor from "./Monitor.ts"

/** OpenTelemetry traces, metrics and logs over OTLP/HTTP. */
export * as Telemetry from "./Telemetry.ts"

/** Prometheus text exposition held to Prometheus's naming conventions. */
export * as Prometheus from "./Prometheus.ts"

/** The admin HTTP server: /metrics, /health, /status and the dashboard. */
export * as AdminServer from "./AdminServer.ts"

/** The status snapshot as a Schema (what /status and the dashboard carry). */
export * as Snapshot from "./Snapshot.ts"
