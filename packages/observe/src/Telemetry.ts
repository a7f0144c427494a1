/**
 * OpenTelemetry for a Tether app: traces, metrics and logs exported over
 * OTLP/HTTP through `@effect/opentelemetry`'s Node SDK layer.
 *
 * The service name, version and resource attributes come from the options or
 * from the standard environment (`OTEL_SERVICE_NAME`,
 * `OTEL_RESOURCE_ATTRIBUTES`); the collector from `endpoint` or
 * `OTEL_EXPORTER_OTLP_ENDPOINT` (and the per-signal
 * `OTEL_EXPORTER_OTLP_{TRACES,METRICS,LOGS}_ENDPOINT`, `OTEL_EXPORTER_OTLP_HEADERS`),
 * which the OTLP exporters read themselves. Header values are `Redacted`.
 *
 * @example
 * ```ts
 * import { Telemetry } from "@tether/observe"
 *
 * const TelemetryLive = Telemetry.layer({
 *   serviceName: "billing",
 *   serviceVersion: "1.4.2",
 *   endpoint: "http://127.0.0.1:4318"
 * })
 * ```
 *
 * @since 0.1.0
 */
import * as NodeSdk from "@effect/opentelemetry/NodeSdk"
import type * as Resource from "@effect/opentelemetry/Resource"
import { OTLPLogExporter } from "@opentelemetry/exporter-logs-otlp-http"
import { OTLPMetricExporter } from "@opentelemetry/exporter-metrics-otlp-http"
import { OTLPTraceExporter } from "@opentelemetry/exporter-trace-otlp-http"
import { BatchLogRecordProcessor, type LogRecordProcessor } from "@opentelemetry/sdk-logs"
import { type MetricReader, PeriodicExportingMetricReader } from "@opentelemetry/sdk-metrics"
import { BatchSpanProcessor, type SpanProcessor } from "@opentelemetry/sdk-trace-base"
import type { Layer } from "effect"
import { Config, Duration, Effect, Option, Redacted } from "effect"

/**
 * @since 0.1.0
 * @category models
 */
export interface Options {
  /** Default: `OTEL_SERVICE_NAME`, else `"tether"`. */
  readonly serviceName?: string | undefined
  readonly serviceVersion?: string | undefined
  /** Resource attributes, added to those of `OTEL_RESOURCE_ATTRIBUTES`. */
  readonly attributes?: Readonly<Record<string, string>> | undefined
  /**
   * The collector's OTLP/HTTP base URL (`/v1/traces`, `/v1/metrics` and
   * `/v1/logs` are appended). Default: the `OTEL_EXPORTER_OTLP_*` variables,
   * else `http://localhost:4318`.
   */
  readonly endpoint?: string | undefined
  /** Headers sent to the collector (e.g. an API key). */
  readonly headers?: Readonly<Record<string, Redacted.Redacted<string> | string>> | undefined
  /** Which signals to export. Default: all three. */
  readonly traces?: boolean | undefined
  readonly metrics?: boolean | undefined
  readonly logs?: boolean | undefined
  /** Time between metric exports. Default 10 seconds. */
  readonly metricInterval?: Duration.Input | undefined
  /**
   * Extra processors and readers (e.g. the SDK's in-memory exporters in
   * tests); they are added to the OTLP ones.
   */
  readonly spanProcessors?: ReadonlyArray<SpanProcessor> | undefined
  readonly metricReaders?: ReadonlyArray<MetricReader> | undefined
  readonly logRecordProcessors?: ReadonlyArray<LogRecordProcessor> | undefined
  /** Send nothing over OTLP (only the extra processors above). Default `false`. */
  readonly otlp?: boolean | undefined
}

/**
 * The OpenTelemetry layer: an Effect tracer, metric producer and logger
 * backed by the OTel Node SDK, exporting over OTLP/HTTP; flushed and shut
 * down when the layer's scope closes.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (options: Options = {}): Layer.Layer<Resource.Resource> =>
  NodeSdk.layer(Effect.gen(function*() {
    const envName = yield* Config.option(Config.String("OTEL_SERVICE_NAME")).pipe(
      Effect.orElseSucceed(() => Option.none<string>())
    )
    const serviceName = options.serviceName ?? (Option.isSome(envName) ? envName.value : "tether")
    const otlp = options.otlp ?? true
    const headers = options.headers === undefined
      ? undefined
      : Object.fromEntries(
        Object.entries(options.headers).map(([k, v]) => [k, Redacted.isRedacted(v) ? Redacted.value(v) : v])
      )
    const url = (path: string) =>
      options.endpoint === undefined ? {} : { url: options.endpoint.replace(/\/+$/, "") + path }
    const exporterOptions = (path: string) => ({ ...url(path), ...(headers === undefined ? {} : { headers }) })
    const spanProcessor: Array<SpanProcessor> = [...(options.spanProcessors ?? [])]
    const metricReader: Array<MetricReader> = [...(options.metricReaders ?? [])]
    const logRecordProcessor: Array<LogRecordProcessor> = [...(options.logRecordProcessors ?? [])]
    if (otlp && options.traces !== false) {
      spanProcessor.push(new BatchSpanProcessor(new OTLPTraceExporter(exporterOptions("/v1/traces"))))
    }
    if (otlp && options.metrics !== false) {
      metricReader.push(
        new PeriodicExportingMetricReader({
          exporter: new OTLPMetricExporter(exporterOptions("/v1/metrics")),
          exportIntervalMillis: Duration.toMillis(Duration.fromInputUnsafe(options.metricInterval ?? "10 seconds"))
        })
      )
    }
    if (otlp && options.logs !== false) {
      logRecordProcessor.push(new BatchLogRecordProcessor({ exporter: new OTLPLogExporter(exporterOptions("/v1/logs")) }))
    }
    return {
      resource: {
        serviceName,
        ...(options.serviceVersion === undefined ? {} : { serviceVersion: options.serviceVersion }),
        ...(options.attributes === undefined ? {} : { attributes: { ...options.attributes } })
      },
      spanProcessor,
      metricReader,
      logRecordProcessor,
      loggerMergeWithExisting: true
    } satisfies NodeSdk.Configuration
  }))
