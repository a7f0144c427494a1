/**
 * The performance monitor: it times every operation that runs through a
 * `ServerSet` (and so through `PgClient` and `LdapClient`) and keeps the
 * recent history of every watched set for the dashboard.
 *
 * - `tether_operation_duration_seconds{set,endpoint,operation,outcome}`: a
 *   histogram of every `use` (its `_count` is the operation counter, so
 *   `rate(..._count[1m])` is operations per second);
 * - `tether_operations_in_flight{set}` (sampled, for watched sets);
 * - `tether_query_cache_entries{set}`, `tether_query_cache_hit_ratio{set}` for
 *   watched clients with a query cache;
 * - per endpoint, per second: operations, failures, p50 and p99 latency over
 *   the last `historySeconds` (the dashboard's sparklines).
 *
 * The monitor subscribes to each watched set's `balancerChanges` (the
 * balancer's `SubscriptionRef`): a change of health, breaker, drain, fence,
 * weight or strategy reaches `changes` (and the dashboard's event stream) as
 * soon as the set publishes it; the counters (traffic, latency, in flight)
 * are sampled once per `sampleInterval`.
 *
 * The timing comes from `set.as(key).use` itself: the layer provides a
 * `ServerSet.OperationObserver` (no span is built for it; with a tracing
 * backend installed, the spans are unchanged).
 *
 * @example
 * ```ts
 * import { Monitor } from "@tether/observe"
 * import { Effect } from "effect"
 *
 * declare const db: Monitor.Watchable
 * const program = Effect.gen(function*() {
 *   const monitor = yield* Monitor.Monitor
 *   yield* monitor.watch("db", db, { required: true })
 *   console.log(yield* monitor.snapshot)
 * }).pipe(Effect.scoped, Effect.provide(Monitor.layer()))
 * ```
 *
 * @since 0.1.0
 */
import type { Balancer, ServerSet } from "@tether/core"
import type { Duration, Effect, Scope, Stream } from "effect"
import { Context, Layer } from "effect"
import * as internal from "./internal/monitor.ts"
import type * as Snapshot from "./Snapshot.ts"

/**
 * What the monitor can watch: a `ServerSet`, a `PgClient` or an `LdapClient`
 * (anything with a `status`; a `cacheStats` is shown too). With a
 * `balancerChanges` (a `ServerSet` has one), its structural changes are
 * published at once; without one, on the next sample.
 *
 * @since 0.1.0
 * @category models
 */
export interface Watchable {
  readonly status: Effect.Effect<ServerSet.Status>
  /** The balancer's published state, then each change of it (see `ServerSet.balancerChanges`). */
  readonly balancerChanges?: Stream.Stream<Balancer.Snapshot> | undefined
  readonly cacheStats?: Effect.Effect<{ readonly hits: number; readonly misses: number; readonly size: number }> | undefined
  /** Its run-time reconfiguration (sets and clients have one): steerable from the admin server. */
  readonly reconfigure?: ServerSet.Reconfigure | undefined
}

/**
 * Run-time changes for the admin server's mutating routes: the
 * `reconfigure` handle of a `ServerSet`, `PgClient`, `PgSql` or `LdapClient`.
 *
 * @since 0.1.0
 * @category models
 */
export type Reconfigurable = ServerSet.Reconfigure

/**
 * @since 0.1.0
 * @category models
 */
export interface WatchOptions {
  /** `/health/ready` fails while this set has no usable endpoint. Default `true`. */
  readonly required?: boolean | undefined
  /**
   * What the admin server's mutating routes (with a token) steer: drain,
   * enable, add, remove, re-weight endpoints, resize pools, breaker
   * thresholds, strategy. Default: the target's own `reconfigure` (sets and
   * clients have one); `false` keeps this set read-only.
   */
  readonly reconfigure?: Reconfigurable | false | undefined
}

/**
 * A watched set, as registered.
 *
 * @since 0.1.0
 * @category models
 */
export interface Watched {
  readonly name: string
  readonly target: Watchable
  readonly required: boolean
  readonly reconfigure: Reconfigurable | undefined
}

/**
 * The monitor service.
 *
 * @since 0.1.0
 * @category models
 */
export interface MonitorService {
  /** Watches a set until the scope closes. A second `watch` with the same name replaces the first. */
  readonly watch: (name: string, target: Watchable, options?: WatchOptions) => Effect.Effect<void, never, Scope.Scope>
  /** The watched sets. */
  readonly watched: Effect.Effect<ReadonlyArray<Watched>>
  /** Every watched set now, with each endpoint's recent history. */
  readonly snapshot: Effect.Effect<Snapshot.Snapshot>
  /**
   * The latest snapshot, then a new one after every sample (once per
   * `sampleInterval`), every change a watched set's balancer publishes
   * (health, breaker, drain, fence, weight, strategy), and every `watch` and
   * unwatch.
   */
  readonly changes: Stream.Stream<Snapshot.Snapshot>
}

/**
 * @since 0.1.0
 * @category services
 */
export class Monitor extends Context.Service<Monitor, MonitorService>()("@tether/observe/Monitor") {}

/**
 * @since 0.1.0
 * @category models
 */
export interface Options {
  /** How long the sparklines reach back. Default 5 minutes. */
  readonly history?: Duration.Input | undefined
  /** Time between samples (and dashboard updates). Default 1 second. */
  readonly sampleInterval?: Duration.Input | undefined
}

/**
 * Provides the {@link Monitor} and the `ServerSet.OperationObserver` that
 * times every operation of every set (LDAP operations pipelined on a shared
 * connection included).
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (options?: Options): Layer.Layer<Monitor> => Layer.effectContext(internal.make(options ?? {}))
