/**
 * The operator's view of every watched set: a `Schema` for the JSON that the
 * admin server's `/status` and the dashboard's event stream carry. It is
 * built from `ServerSet.Status` and holds no secret: URLs lose their
 * user-info, identities are counted, never named by principal.
 *
 * @example
 * ```ts
 * import { Snapshot } from "@tether/observe"
 * import { Schema } from "effect"
 *
 * declare const snapshot: Snapshot.Snapshot
 * const json = Schema.encodeSync(Snapshot.Snapshot)(snapshot)
 * ```
 *
 * @since 0.1.0
 */
import type { ServerSet } from "@tether/core"
import { Schema } from "effect"
import { round3 } from "./internal/series.ts"

/** @since 0.1.0 @category schemas */
export const Point = Schema.Struct({
  t: Schema.Number,
  ops: Schema.Number,
  failures: Schema.Number,
  p50: Schema.NullOr(Schema.Number),
  p99: Schema.NullOr(Schema.Number)
})

/** @since 0.1.0 @category schemas */
export const Breaker = Schema.Struct({
  status: Schema.Literals(["closed", "open", "half-open"]),
  since: Schema.Number,
  retryAt: Schema.NullOr(Schema.Number),
  openings: Schema.Number,
  reason: Schema.NullOr(Schema.String)
})

/** @since 0.1.0 @category schemas */
export const Pool = Schema.Struct({
  idle: Schema.Number,
  inUse: Schema.Number,
  pending: Schema.Number,
  open: Schema.Number,
  min: Schema.Number,
  max: Schema.Number,
  created: Schema.Number,
  destroyed: Schema.Number,
  timeouts: Schema.Number,
  draining: Schema.Boolean,
  /** How many identities hold connections (labels only in metrics, never principals). */
  identities: Schema.Number
})

/** @since 0.1.0 @category schemas */
export const EndpointView = Schema.Struct({
  id: Schema.String,
  url: Schema.String,
  role: Schema.Literals(["primary", "replica", "any", "stale-primary"]),
  weight: Schema.Number,
  priority: Schema.Number,
  health: Schema.Literals(["healthy", "degraded", "unhealthy", "unknown"]),
  /** Whether new work can go there now: not unhealthy and its breaker not open. */
  usable: Schema.Boolean,
  lastError: Schema.NullOr(Schema.String),
  breaker: Schema.NullOr(Breaker),
  pool: Pool,
  latencyMillis: Schema.NullOr(Schema.Number),
  inFlight: Schema.Number,
  requests: Schema.Number,
  failures: Schema.Number,
  series: Schema.Array(Point)
})

/** @since 0.1.0 @category schemas */
export const SetView = Schema.Struct({
  name: Schema.String,
  strategy: Schema.String,
  /** A required set makes `/health/ready` fail when none of its endpoints is usable. */
  required: Schema.Boolean,
  cache: Schema.NullOr(Schema.Struct({ hits: Schema.Number, misses: Schema.Number, size: Schema.Number })),
  endpoints: Schema.Array(EndpointView)
})

/** @since 0.1.0 @category schemas */
export const Snapshot = Schema.Struct({
  /** Epoch milliseconds. */
  time: Schema.Number,
  sets: Schema.Array(SetView)
})

/** @since 0.1.0 @category models */
export type Snapshot = typeof Snapshot.Type
/** @since 0.1.0 @category models */
export type SetView = typeof SetView.Type
/** @since 0.1.0 @category models */
export type EndpointView = typeof EndpointView.Type
/** @since 0.1.0 @category models */
export type Point = typeof Point.Type

/**
 * A URL without its user-info (`ldap://admin:pw@host` → `ldap://host`).
 *
 * @since 0.1.0
 * @category utils
 */
export const redactUrl = (url: string): string => {
  try {
    const parsed = new URL(url)
    if (parsed.username === "" && parsed.password === "") return url
    parsed.username = ""
    parsed.password = ""
    return parsed.toString()
  } catch {
    // Not a URL we can parse: keep only what follows an "@", if any.
    const at = url.lastIndexOf("@")
    return at < 0 ? url : url.slice(at + 1)
  }
}

/**
 * The view of one endpoint from its `ServerSet.EndpointStatus`.
 *
 * @since 0.1.0
 * @category constructors
 */
export const endpointView = (status: ServerSet.EndpointStatus, series: ReadonlyArray<Point>): EndpointView => ({
  id: status.id,
  url: redactUrl(status.url),
  role: status.role,
  weight: status.weight,
  priority: status.priority,
  health: status.health,
  usable: status.health !== "unhealthy" && status.breaker?.status !== "open",
  lastError: status.monitor?.consecutiveFailures ? status.monitor.lastError ?? null : null,
  breaker: status.breaker === undefined ? null : {
    status: status.breaker.status,
    since: status.breaker.since,
    retryAt: status.breaker.retryAt ?? null,
    openings: status.breaker.openings,
    reason: status.breaker.reason ?? null
  },
  pool: {
    idle: status.pool.idle,
    inUse: status.pool.inUse,
    pending: status.pool.pending,
    open: status.pool.open,
    min: status.pool.min,
    max: status.pool.max,
    created: status.pool.created,
    destroyed: status.pool.destroyed,
    timeouts: status.pool.timeouts,
    // Its pool closing, or drained by the operator.
    draining: status.pool.draining || status.draining === true,
    identities: status.pool.identities.length
  },
  latencyMillis: status.latencyMillis === undefined ? null : round3(status.latencyMillis),
  inFlight: status.inFlight,
  requests: status.requests,
  failures: status.failures,
  series: series.slice()
})

/**
 * Why a set is not ready (`[]` when it is): a required set with no usable endpoint.
 *
 * @since 0.1.0
 * @category utils
 */
export const notReady = (snapshot: Snapshot): ReadonlyArray<string> =>
  snapshot.sets
    .filter((set) => set.required && !set.endpoints.some((e) => e.usable))
    .map((set) =>
      set.endpoints.length === 0
        ? `set "${set.name}" has no endpoint`
        : `set "${set.name}" has no usable endpoint (${
          set.endpoints.map((e) => `${e.id}: ${e.health}${e.breaker?.status === "open" ? ", breaker open" : ""}`).join("; ")
        })`
    )
