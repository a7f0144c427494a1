/**
 * The admin HTTP server (on `effect/http` and `@effect/platform-node`), bound
 * to loopback unless told otherwise:
 *
 * | route | what |
 * | --- | --- |
 * | `GET /` | the live dashboard (one self-contained page, no CDN) |
 * | `GET /events` | server-sent events: a `Snapshot` after every sample |
 * | `GET /metrics` | Prometheus text exposition |
 * | `GET /health/live` | 200 while the process serves |
 * | `GET /health/ready` | 200, or 503 with the reasons when a required set has no usable endpoint |
 * | `GET /status` | the `Snapshot` as Schema-encoded JSON (no secret) |
 *
 * With a `token`, and only then, the mutating routes exist (each needs
 * `Authorization: Bearer <token>`). They steer every watched set — a
 * `ServerSet`, `PgClient`, `PgSql` or `LdapClient` — through its
 * `ServerSet.Reconfigure` handle, unless it was watched with
 * `{ reconfigure: false }` (403). An unknown endpoint is 404, a bad value 400.
 *
 * | route | what |
 * | --- | --- |
 * | `POST /api/sets/:set/endpoints` | add an endpoint: JSON `{"url": …, "weight"?, "priority"?, "role"?, "id"?}` |
 * | `DELETE /api/sets/:set/endpoints/:id` | remove it (work in flight finishes first) |
 * | `POST /api/sets/:set/endpoints/:id/drain` | no new work; in-flight work finishes; it stays listed as draining |
 * | `POST /api/sets/:set/endpoints/:id/enable` | let a drained endpoint take work again |
 * | `POST /api/sets/:set/endpoints/:id/weight` | JSON `{"weight": n}` (a positive integer), from the next pick on |
 * | `POST /api/sets/:set/pool` | JSON `{"max"?, "min"?, "maxPerIdentity"?, "endpoint"?}`: resize the pools |
 * | `POST /api/sets/:set/breaker` | JSON breaker thresholds (`consecutiveFailures`, `failureRate`, …) |
 * | `POST /api/sets/:set/strategy` | JSON `{"strategy": …}` |
 *
 * @example
 * ```ts
 * import { AdminServer, Monitor } from "@tether/observe"
 * import { Effect, Layer } from "effect"
 *
 * const AdminLive = AdminServer.layer({ port: 9464 }).pipe(Layer.provideMerge(Monitor.layer()))
 * const program = Effect.gen(function*() {
 *   const admin = yield* AdminServer.AdminServer
 *   console.log(`dashboard: ${admin.url}`)
 * })
 * ```
 *
 * @since 0.1.0
 */
import type { Redacted } from "effect"
import { Context, Layer } from "effect"
import * as internal from "./internal/adminServer.ts"
import type { Monitor } from "./Monitor.ts"

/**
 * @since 0.1.0
 * @category models
 */
export interface Options {
  /** Default `127.0.0.1` (loopback). Binding elsewhere exposes the dashboard: pair it with a firewall. */
  readonly host?: string | undefined
  /** Default 9464; `0` picks a free port (read it from `url`). */
  readonly port?: number | undefined
  /** Enables the mutating routes, each requiring `Authorization: Bearer <token>`. */
  readonly token?: Redacted.Redacted<string> | undefined
  /** The dashboard's title. Default `"Tether"`. */
  readonly title?: string | undefined
}

/**
 * A running admin server.
 *
 * @since 0.1.0
 * @category models
 */
export interface Running {
  /** `http://host:port` */
  readonly url: string
  readonly port: number
}

/**
 * @since 0.1.0
 * @category services
 */
export class AdminServer extends Context.Service<AdminServer, Running>()("@tether/observe/AdminServer") {}

/**
 * Serves the admin routes until the layer's scope closes. Fails with
 * `ServeError` when the port is taken.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (options: Options = {}): Layer.Layer<AdminServer, internal.AdminServerError, Monitor> =>
  Layer.effect(AdminServer, internal.make(options))

export {
  /**
   * The admin server could not listen (port taken, bad host): says which address.
   *
   * @since 0.1.0
   * @category errors
   */
  AdminServerError
} from "./internal/adminServer.ts"
