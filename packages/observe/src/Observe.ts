/**
 * The one layer an app adds to be operable: the performance {@link Monitor},
 * OpenTelemetry export ({@link Telemetry}) when configured, and the
 * {@link AdminServer} (metrics, health, status, dashboard) when configured.
 *
 * @example
 * ```ts
 * import { Monitor, Observe } from "@tether/observe"
 * import { Effect, Layer } from "effect"
 *
 * declare const db: Monitor.Watchable
 *
 * const ObserveLive = Observe.layer({
 *   telemetry: { serviceName: "billing", endpoint: "http://127.0.0.1:4318" },
 *   admin: { port: 9464 }
 * })
 * const program = Effect.gen(function*() {
 *   const monitor = yield* Monitor.Monitor
 *   yield* monitor.watch("db", db)
 *   yield* Effect.never
 * }).pipe(Effect.scoped, Effect.provide(ObserveLive))
 * ```
 *
 * @since 0.1.0
 */
import { Config, Context, Effect, Layer, Option } from "effect"
import * as AdminServer from "./AdminServer.ts"
import * as Monitor from "./Monitor.ts"
import * as Telemetry from "./Telemetry.ts"

/**
 * @since 0.1.0
 * @category models
 */
export interface Options {
  readonly monitor?: Monitor.Options | undefined
  /** OpenTelemetry export; off when absent or `false`. */
  readonly telemetry?: Telemetry.Options | false | undefined
  /** The admin server; off when absent or `false`. */
  readonly admin?: AdminServer.Options | false | undefined
}

/**
 * The monitor, plus OpenTelemetry and the admin server when configured. The
 * admin server's address is logged (`Effect.logInfo`) once it listens.
 *
 * @since 0.1.0
 * @category layers
 */
export function layer(
  options: Options & { readonly admin: AdminServer.Options }
): Layer.Layer<Monitor.Monitor | AdminServer.AdminServer, AdminServer.AdminServerError>
export function layer(options?: Options): Layer.Layer<Monitor.Monitor, AdminServer.AdminServerError>
export function layer(
  options: Options = {}
): Layer.Layer<Monitor.Monitor | AdminServer.AdminServer, AdminServer.AdminServerError> {
  const telemetry = options.telemetry ? Layer.orDie(Telemetry.layer(options.telemetry)) : Layer.empty
  // provideMerge: the OTel tracer, logger and metric producer reach the app too.
  const monitor: Layer.Layer<Monitor.Monitor> = Monitor.layer(options.monitor).pipe(Layer.provideMerge(telemetry))
  if (!options.admin) return monitor as Layer.Layer<Monitor.Monitor | AdminServer.AdminServer>
  const admin = AdminServer.layer(options.admin).pipe(
    Layer.tap((context) => Effect.logInfo(`tether admin server: ${Context.get(context, AdminServer.AdminServer).url}`))
  )
  return Layer.provideMerge(admin, monitor)
}

/**
 * {@link layer} from configuration (environment variables by default):
 * `TETHER_ADMIN_PORT` turns the admin server on (`TETHER_ADMIN_HOST`, default
 * loopback; `TETHER_ADMIN_TOKEN` enables the mutating routes);
 * `OTEL_EXPORTER_OTLP_ENDPOINT` (or `TETHER_OTEL=true`) turns OpenTelemetry on,
 * with the standard `OTEL_*` variables.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerConfig: Layer.Layer<Monitor.Monitor, AdminServer.AdminServerError | Config.ConfigError> = Layer.unwrap(
  Effect.gen(function*() {
    const port = yield* Config.option(Config.Int("TETHER_ADMIN_PORT"))
    const host = yield* Config.option(Config.String("TETHER_ADMIN_HOST"))
    const token = yield* Config.option(Config.Redacted("TETHER_ADMIN_TOKEN"))
    const otlp = yield* Config.option(Config.String("OTEL_EXPORTER_OTLP_ENDPOINT"))
    const enabled = yield* Config.Boolean("TETHER_OTEL").pipe(Config.withDefault(false))
    return layer({
      telemetry: Option.isSome(otlp) || enabled ? {} : false,
      admin: Option.isNone(port) ? false : {
        port: port.value,
        host: Option.getOrUndefined(host),
        token: Option.getOrUndefined(token)
      }
    })
  })
)
