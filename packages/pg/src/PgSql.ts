/**
 * `PgSql`: effect/sql's `SqlClient` over Tether's server sets. Everything
 * written for `@effect/sql-pg` keeps working (statements and helpers,
 * `withTransaction` with savepoints, `SqlSchema`, `SqlResolver`, `SqlModel`,
 * `Migrator`, streams, LISTEN/NOTIFY), and gains failover, breakers, replica
 * reads and identities underneath.
 *
 * - Plain statements go to the primary and are **pipelined**: up to
 *   `pipeline` statements share one connection (postgres.js pipelines them).
 *   A statement whose connection broke after it was sent fails with
 *   `PgOutcomeUnknown` under the `SqlError` (it may have run); one that was
 *   never sent fails over and runs elsewhere.
 * - Transactions, streams, `reserve` and LISTEN take a connection of their own.
 * - {@link readReplica} sends reads to replicas (read-only, failed over and retried).
 * - {@link as} runs statements on connections logged in as an identity.
 * - {@link withTransaction} adds isolation levels and whole-transaction retries
 *   for transactions declared idempotent.
 * - `pgbouncer: "transaction"` avoids what PgBouncer's transaction pooling breaks.
 *
 * `PgSql` is a separate client from `PgClient` (its own pools); both can run side by side.
 *
 * @example
 * ```ts
 * import { PgSql } from "@tether/pg"
 * import { Effect, Redacted } from "effect"
 * import { SqlClient } from "effect/sql"
 *
 * const Live = PgSql.layer({
 *   endpoints: ["postgres://10.0.0.1:5432/app", "postgres://10.0.0.2:5432/app"],
 *   user: "app",
 *   password: Redacted.make("secret")
 * })
 *
 * const program = Effect.gen(function*() {
 *   const sql = yield* SqlClient.SqlClient
 *   yield* sql`insert into audit ${sql.insert({ what: "login" })}`
 *   const rows = yield* PgSql.readReplica(sql`select id, what from audit where id in ${sql.in([1, 2, 3])}`)
 *   return rows
 * }).pipe(Effect.provide(Live))
 * ```
 *
 * @since 0.2.0
 */
import type { Balancer, Endpoint, Identity, InvalidPoolOptions, ServerSet } from "@tether/core"
import { Config, Context, Effect, Layer } from "effect"
import type { Schedule, Scope, Stream } from "effect"
import * as Reactivity from "effect/reactivity/Reactivity"
import type { Loader } from "effect/sql/Migrator"
import * as SqlClient from "effect/sql/SqlClient"
import type { SqlError } from "effect/sql/SqlError"
import type { Fragment } from "effect/sql/Statement"
import * as Statement from "effect/sql/Statement"
import type * as PgOptions from "./PgOptions.ts"
import * as internal from "./internal/sqlClient.ts"
import * as migrations from "./internal/sqlMigrations.ts"

/**
 * Options of {@link make} and {@link layer}.
 *
 * @since 0.2.0
 * @category models
 */
export interface Options extends PgOptions.Common {
  /** Where {@link readReplica} statements go. Default `replica-preferred`. */
  readonly readFrom?: PgOptions.ReadFrom | undefined
  /**
   * Statements in flight on one shared connection (postgres.js pipelines
   * them). Default 16; `1` sends one at a time. Transactions, streams,
   * `reserve` and LISTEN always take a connection of their own.
   */
  readonly pipeline?: number | undefined
  /** `"transaction"`: the endpoints are PgBouncer in transaction pooling mode (see README). */
  readonly pgbouncer?: "transaction" | undefined
  /** Behind PgBouncer: the servers' own URLs, for LISTEN (which needs a session of its own). */
  readonly listenEndpoints?: ReadonlyArray<Endpoint.EndpointInput | string> | undefined
  /**
   * The pipelined connections of each endpoint: at most `max` (default 10), each shared by up to
   * `pipeline` statements. A connection is filled before the next one opens, so statements that
   * arrive together leave in one write. Behind PgBouncer (`pgbouncer: "transaction"`) the default
   * role's `max` connections are one pooled session that sends to an idle connection first, and
   * each other identity gets one connection. `min > 0` opens them at start. Other fields as
   * `ServerSet.Options.pool`.
   */
  readonly pool?: ServerSet.Options<unknown, unknown>["pool"]
  /** The connections for transactions, streams, `reserve` and LISTEN. Default `{ min: 0, max: pool.max ?? 10 }`. */
  readonly exclusivePool?: ServerSet.Options<unknown, unknown>["pool"]
  /** The read-only pipelined connections of {@link readReplica}. Default like `pool`, with `min: 0`. */
  readonly readPool?: ServerSet.Options<unknown, unknown>["pool"]
  /** Renames result columns (e.g. snake_case to camelCase), as in `@effect/sql-pg`. */
  readonly transformResultNames?: ((name: string) => string) | undefined
  /** Renames identifiers in statements (e.g. camelCase to snake_case). */
  readonly transformQueryNames?: ((name: string) => string) | undefined
  /** Whether the transforms also apply inside JSON values. Default `true`. */
  readonly transformJson?: boolean | undefined
  /** Extra attributes of every statement span. */
  readonly spanAttributes?: Record<string, unknown> | undefined
}

/**
 * The client: an effect/sql `SqlClient` plus PostgreSQL helpers.
 *
 * @since 0.2.0
 * @category models
 */
export interface PgSql extends SqlClient.SqlClient {
  /** A fragment holding a value as a `jsonb` parameter: `sql\`insert into t (doc) values (${sql.json(doc)})\``. */
  readonly json: (value: unknown) => Fragment
  /**
   * Notifications on `channel`, on a session of their own to the primary.
   * When that session is lost the stream re-subscribes (following failover);
   * notifications sent while no session listened are not seen.
   */
  readonly listen: (channel: string) => Stream.Stream<string, SqlError>
  /** `pg_notify(channel, payload)` on the primary. */
  readonly notify: (channel: string, payload: string) => Effect.Effect<void, SqlError>
  /**
   * `statement`'s rows from the cache (by text, parameters, identity and read
   * routing), or from running it: concurrent misses run it once, failures are
   * never kept. Inside a transaction it runs uncached (the transaction may see
   * its own writes).
   */
  readonly cached: <A extends object>(statement: Statement.Statement<A>) => Effect.Effect<ReadonlyArray<A>, SqlError>
  /** Drops cached results (those whose statement text matches, or all). Returns how many. */
  readonly invalidateCache: (predicate?: (text: string) => boolean) => Effect.Effect<number>
  /** Cache hits and misses so far, and entries held. */
  readonly cacheStats: Effect.Effect<{ readonly hits: number; readonly misses: number; readonly size: number }>
  /** The pipelined connections' endpoints: health, role, breaker, pool. */
  readonly status: Effect.Effect<ServerSet.Status>
  /**
   * The balancer's published state of the set behind {@link status}, then each
   * health, breaker, role, fence, drain, weight or strategy change (see
   * `ServerSet.balancerChanges`); the observe monitor pushes them to the dashboard.
   */
  readonly balancerChanges: Stream.Stream<Balancer.Snapshot>
  /** Every set's status: the pipelined and the exclusive connections. */
  readonly statusAll: Effect.Effect<{ readonly shared: ServerSet.Status; readonly exclusive: ServerSet.Status }>
  /**
   * Steers the client while it runs: drain, enable, add or remove servers,
   * weights, pool limits, breaker thresholds, strategy, or `apply` a whole
   * new configuration (see `ServerSet.Reconfigure`). Every change goes to the pipelined and the exclusive sets (pool limits too). No operation fails for it.
   */
  readonly reconfigure: ServerSet.Reconfigure
}

/**
 * The `PgSql` service (the same value is provided as `SqlClient.SqlClient`).
 *
 * @since 0.2.0
 * @category services
 */
export const PgSql: Context.Service<PgSql, PgSql> = Context.Service<PgSql>("@tether/pg/PgSql")

/**
 * Starts a client in the current scope.
 *
 * @since 0.2.0
 * @category constructors
 */
export const make: (
  options: Options
) => Effect.Effect<PgSql, Endpoint.InvalidEndpoint | InvalidPoolOptions, Scope.Scope | Reactivity.Reactivity> =
  internal.make

/**
 * Provides `PgSql` and effect/sql's `SqlClient` (and turns on statement span
 * propagation, so spans carry the server each statement ran on).
 *
 * @example
 * ```ts
 * import { PgSql } from "@tether/pg"
 *
 * const Live = PgSql.layer({ endpoints: ["postgres://db1:5432/app", "postgres://db2:5432/app"], user: "app" })
 * ```
 *
 * @since 0.2.0
 * @category layers
 */
export const layer = (
  options: Options
): Layer.Layer<PgSql | SqlClient.SqlClient, Endpoint.InvalidEndpoint | InvalidPoolOptions> =>
  layerFrom(make(options))

/**
 * {@link layer} from `Config` (e.g. environment variables), like `@effect/sql-pg`'s `layerConfig`.
 *
 * @example
 * ```ts
 * import { PgSql } from "@tether/pg"
 * import { Config } from "effect"
 *
 * const Live = PgSql.layerConfig({
 *   endpoints: Config.String("DB_URLS").pipe(Config.map((s) => s.split(","))),
 *   user: Config.String("DB_USER"),
 *   password: Config.Redacted("DB_PASSWORD")
 * })
 * ```
 *
 * @since 0.2.0
 * @category layers
 */
export const layerConfig = (
  config: Config.Wrap<Options>
): Layer.Layer<PgSql | SqlClient.SqlClient, Config.ConfigError | Endpoint.InvalidEndpoint | InvalidPoolOptions> =>
  layerFrom(Effect.flatMap(Config.unwrap(config), make))

const layerFrom = <E>(
  acquire: Effect.Effect<PgSql, E, Scope.Scope | Reactivity.Reactivity>
): Layer.Layer<PgSql | SqlClient.SqlClient, E> =>
  Layer.effectContext(
    Effect.map(acquire, (client) =>
      Context.make(PgSql, client).pipe(
        Context.add(SqlClient.SqlClient, client),
        Context.add(Statement.SpanPropagationEnabled, true)
      ))
  ).pipe(Layer.provide(Reactivity.layer)) as Layer.Layer<PgSql | SqlClient.SqlClient, E>

/**
 * Runs `effect`'s statements (outside transactions) on replicas, per
 * `readFrom`: read-only sessions, idempotent, so failed over and retried.
 * A transaction started inside runs on a replica too (make it read-only).
 *
 * @example
 * ```ts
 * import { PgSql } from "@tether/pg"
 * import { Effect } from "effect"
 * import { SqlClient } from "effect/sql"
 *
 * const names = Effect.flatMap(Effect.service(SqlClient.SqlClient), (sql) => sql`select name from users`)
 * const fromReplica = PgSql.readReplica(names)
 * ```
 *
 * @since 0.2.0
 * @category routing
 */
export const readReplica = <A, E, R>(effect: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> =>
  Effect.provideService(effect, internal.ReadReplica, true)

/**
 * Declares a `SqlResolver`/`SqlSchema` constructor's reads read-only:
 * `PgSql.readOnly(SqlResolver.findById)({ … })`. Outside a transaction the
 * `execute` statements go to replicas (as {@link readReplica}); inside
 * `withTransaction` they stay on the transaction's connection (the primary).
 * Resolvers run `execute` in the first request's context, so the declaration
 * belongs to the resolver, not to its callers.
 *
 * @example
 * ```ts
 * import { PgSql } from "@tether/pg"
 * import { Effect, Schema } from "effect"
 * import { SqlClient, SqlResolver, SqlSchema } from "effect/sql"
 *
 * const make = Effect.gen(function*() {
 *   const sql = yield* SqlClient.SqlClient
 *   const byId = PgSql.readOnly(SqlResolver.findById)({
 *     Id: Schema.Number,
 *     Result: Schema.Struct({ id: Schema.Number, name: Schema.String }),
 *     ResultId: (row) => row.id,
 *     execute: (ids) => sql`select id, name from users where id in ${sql.in(ids)}`
 *   })
 *   const all = PgSql.readOnly(SqlSchema.findAll)({
 *     Request: Schema.String,
 *     Result: Schema.Struct({ id: Schema.Number }),
 *     execute: (name) => sql`select id from users where name = ${name}`
 *   })
 *   return { byId, all }
 * })
 * ```
 *
 * @since 0.2.0
 * @category routing
 */
export const readOnly = <A extends readonly [options: { readonly execute: (request: any) => Effect.Effect<any, any, any> }], B>(
  make: (...args: A) => B
): (...args: A) => B =>
(...args: A): B => {
  const options = args[0]
  return make(...([{ ...options, execute: (request: unknown) => readReplica(options.execute(request)) }] as unknown as A))
}

/**
 * Runs `effect`'s statements on connections logged in as the identity `key`
 * holds; the identity appears in the requirements.
 *
 * @example
 * ```ts
 * import { PgSql } from "@tether/pg"
 * import { Identity } from "@tether/core"
 * import { Effect } from "effect"
 * import { SqlClient } from "effect/sql"
 *
 * class Reporting extends Identity.Service<Reporting>()("app/Reporting") {}
 * const mine = Effect.flatMap(Effect.service(SqlClient.SqlClient), (sql) => sql`select current_user`)
 * const asReporting = PgSql.as(Reporting)(mine) // Effect<…, …, SqlClient | Reporting>
 * ```
 *
 * @since 0.2.0
 * @category routing
 */
export const as = <I>(key: Context.Key<I, Identity.Credentials>) =>
<A, E, R>(effect: Effect.Effect<A, E, R>): Effect.Effect<A, E, R | I> =>
  Effect.andThen(
    Effect.service(key),
    Effect.provideService(effect, internal.CurrentIdentity, key as Context.Key<unknown, Identity.Credentials>)
  )

/**
 * Options of {@link withTransaction}.
 *
 * @since 0.2.0
 * @category models
 */
export interface TransactionOptions {
  readonly isolation?: "read committed" | "repeatable read" | "serializable" | undefined
  readonly readOnly?: boolean | undefined
  /**
   * The whole block may run again: on a serialization failure, a deadlock, or
   * a connection lost before COMMIT was sent, it is retried on `retry`. A
   * COMMIT whose answer was lost (`PgOutcomeUnknown`) is never retried.
   * Default `false`.
   */
  readonly idempotent?: boolean | undefined
  /** Default: backoff from 50 ms, up to 10 seconds. */
  readonly retry?: Schedule.Schedule<unknown, unknown> | undefined
}

const retryableTransaction = (error: unknown): boolean => {
  if (typeof error !== "object" || error === null || !("_tag" in error) || error._tag !== "SqlError") return false
  const reason = (error as SqlError).reason
  if (reason._tag === "SerializationError" || reason._tag === "DeadlockError") return true
  if (reason._tag !== "ConnectionError") return false
  // Never a write whose outcome is unknown (those are UnknownError anyway).
  const cause = reason.cause as { _tag?: string } | undefined
  return cause?._tag !== "PgOutcomeUnknown"
}

/**
 * `sql.withTransaction` with an isolation level, read-only mode, and whole
 * retries for blocks declared idempotent. Nested calls use savepoints.
 *
 * @example
 * ```ts
 * import { PgSql } from "@tether/pg"
 * import { Effect } from "effect"
 * import { SqlClient } from "effect/sql"
 *
 * const transfer = Effect.gen(function*() {
 *   const sql = yield* SqlClient.SqlClient
 *   yield* sql`update accounts set balance = balance - 10 where id = 1`
 *   yield* sql`update accounts set balance = balance + 10 where id = 2`
 * }).pipe(PgSql.withTransaction({ isolation: "serializable", idempotent: true }))
 * ```
 *
 * @since 0.2.0
 * @category transactions
 */
export const withTransaction = (options: TransactionOptions = {}) =>
<A, E, R>(effect: Effect.Effect<A, E, R>): Effect.Effect<A, E | SqlError, R | SqlClient.SqlClient> =>
  Effect.flatMap(Effect.service(SqlClient.SqlClient), (sql) => {
    const begin = `BEGIN ISOLATION LEVEL ${(options.isolation ?? "read committed").toUpperCase()}${
      options.readOnly === true ? " READ ONLY" : ""
    }`
    const attempt = sql.withTransaction(effect).pipe(Effect.provideService(SqlClient.BeginTransaction, begin))
    return options.idempotent === true
      ? Effect.retry(attempt, {
        schedule: (options.retry ?? internal.defaultRetry) as Schedule.Schedule<unknown, unknown>,
        while: retryableTransaction
      })
      : attempt
  })

/**
 * A `Migrator` loader reading `NNNN_name.sql` files from `directory` (each
 * file runs as one multi-statement script, in the migration's transaction).
 *
 * @example
 * ```ts
 * import { PgSql } from "@tether/pg"
 * import * as Migrator from "effect/sql/Migrator"
 *
 * const migrate = Migrator.make({})({ loader: PgSql.fromSqlFiles("./migrations") })
 * ```
 *
 * @since 0.2.0
 * @category migrations
 */
export const fromSqlFiles: (directory: string) => Loader = migrations.fromSqlFiles
