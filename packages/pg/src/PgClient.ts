/**
 * `PgClient`: PostgreSQL through a Tether `ServerSet` — replica routing,
 * writes only on the primary, transactions retried as a whole, failover,
 * typed errors, an opt-in query cache and a slow-query log.
 *
 * @example
 * ```ts
 * import { PgClient } from "@tether/pg"
 * import { Effect, Redacted } from "effect"
 *
 * const Live = PgClient.layer({
 *   endpoints: [
 *     { url: "postgres://10.0.0.1:5432/app", role: "primary" },
 *     { url: "postgres://10.0.0.2:5432/app", role: "replica" }
 *   ],
 *   user: "app",
 *   password: Redacted.make(process.env.PGPASSWORD!)
 * })
 *
 * const program = Effect.gen(function*() {
 *   const db = yield* PgClient.PgClient
 *   const users = yield* db.read<{ id: number; name: string }>`select id, name from users where id = ${42}`
 *   yield* db.write`update users set seen = now() where id = ${42}`
 *   yield* db.transaction((tx) => tx.sql`insert into audit (what) values (${"seen"})`, { isolation: "serializable" })
 * }).pipe(Effect.provide(Live))
 * ```
 *
 * @since 0.1.0
 */
import type { Balancer, Endpoint, Identity, InvalidPoolOptions, ServerSet } from "@tether/core"
import { Config, Context, Effect, Layer } from "effect"
import type { Schedule, Scope, Stream } from "effect"
import type * as SqlClient from "effect/sql/SqlClient"
import * as internal from "./internal/pgClient.ts"
import type { PgError } from "./PgError.ts"
import * as PgOptions from "./PgOptions.ts"
import * as PgSql from "./PgSql.ts"

/**
 * Where reads go: `replica-preferred` (default: replicas, the primary when
 * no replica is usable), `replica-only`, or `any` endpoint.
 *
 * @since 0.1.0
 * @category models
 */
export type ReadFrom = PgOptions.ReadFrom

/**
 * Transaction isolation levels.
 *
 * @since 0.1.0
 * @category models
 */
export type Isolation = "read committed" | "repeatable read" | "serializable"

/**
 * Options of {@link make} and {@link layer}: the options both clients share
 * (`PgOptions.Common`), and PgClient's own.
 *
 * @since 0.1.0
 * @category models
 */
export interface Options extends PgOptions.Common {
  /**
   * Run reads in read-only sessions (`default_transaction_read_only = on`), so
   * that a write sent as a read fails even when it lands on the primary.
   * Default `true`. A connection switches mode (one `SET`) only when its use
   * changes; on a single server with reads and writes interleaved on the same
   * connections, `false` saves those round trips at the cost of the guarantee.
   */
  readonly enforceReadOnly?: boolean | undefined
  /**
   * Plain reads share connections: up to this many statements in flight on
   * one connection (postgres.js pipelines them). Transactions, streams,
   * batches and writes always get a connection of their own. Default 1 (off).
   */
  readonly multiplex?: number | undefined
  /**
   * Options of the effect/sql client {@link layer} also provides (`PgSql`,
   * with its own pools, opened on first use), or `false` for none.
   */
  readonly sql?: false | Omit<PgSql.Options, keyof PgOptions.Common> | undefined
}

/**
 * A statement built by the `statement` tagged template (for `batch`).
 *
 * @since 0.1.0
 * @category models
 */
export interface Statement {
  readonly strings: TemplateStringsArray
  readonly values: ReadonlyArray<unknown>
}

/**
 * Builds a {@link Statement}; its values are bound parameters, never text.
 *
 * @since 0.1.0
 * @category constructors
 */
export const statement = (strings: TemplateStringsArray, ...values: ReadonlyArray<unknown>): Statement => ({
  strings,
  values
})

/**
 * A row: column name to value.
 *
 * @since 0.1.0
 * @category models
 */
export type Row = Record<string, unknown>

/**
 * Everything a statement can fail with: the statement's own errors and the
 * set's (no endpoint, breaker open, pool timeout).
 *
 * @since 0.1.0
 * @category models
 */
export type PgClientError = ServerSet.UseError<PgError>

/**
 * A tagged template that runs a statement (parameters are always bound).
 *
 * @since 0.1.0
 * @category models
 */
export type Query<R> = <A extends object = Row>(
  strings: TemplateStringsArray,
  ...values: ReadonlyArray<unknown>
) => Effect.Effect<ReadonlyArray<A>, PgClientError, R>

/**
 * Statements inside a transaction, all on its one connection.
 *
 * @since 0.1.0
 * @category models
 */
export interface Transaction {
  readonly sql: <A extends object = Row>(
    strings: TemplateStringsArray,
    ...values: ReadonlyArray<unknown>
  ) => Effect.Effect<ReadonlyArray<A>, PgError>
  readonly unsafe: <A extends object = Row>(
    text: string,
    parameters?: ReadonlyArray<unknown>
  ) => Effect.Effect<ReadonlyArray<A>, PgError>
}

/**
 * What runs statements, as the default role (`R = never`) or as an identity.
 *
 * @since 0.1.0
 * @category models
 */
export interface Executor<R> {
  /** A read, routed by `readFrom`; idempotent, so failed over and retried. */
  readonly read: Query<R>
  /** A write, on the primary only; never replayed once it may have reached the server. */
  readonly write: Query<R>
  /** A read whose result is cached (LRU + TTL) by statement, parameters and identity. */
  readonly cached: Query<R>
  /** A statement given as text with `$1…` parameters. */
  readonly unsafe: <A extends object = Row>(
    text: string,
    parameters?: ReadonlyArray<unknown>,
    options?: { readonly mode?: "read" | "write" | undefined }
  ) => Effect.Effect<ReadonlyArray<A>, PgClientError, R>
  /** A read streamed with a cursor, `batchSize` rows at a time, on a connection held until the stream ends. */
  readonly stream: <A extends object = Row>(
    strings: TemplateStringsArray,
    ...values: ReadonlyArray<unknown>
  ) => Stream.Stream<A, PgClientError, R>
  /**
   * Runs `body` in a transaction on the primary. On a serialization failure,
   * a deadlock, or a lost connection before COMMIT was sent, the whole block
   * is run again (it is atomic: nothing of a failed attempt was kept) on the
   * retry schedule. A connection lost during COMMIT is `PgOutcomeUnknown`.
   */
  readonly transaction: <A, E, R2>(
    body: (tx: Transaction) => Effect.Effect<A, E, R2>,
    options?: {
      readonly isolation?: Isolation | undefined
      readonly readOnly?: boolean | undefined
      readonly retry?: Schedule.Schedule<unknown, unknown> | undefined
    }
  ) => Effect.Effect<A, E | PgClientError, R | R2>
  /** Several statements pipelined on one connection (`mode` default `write`); their results in order. */
  readonly batch: (
    statements: ReadonlyArray<Statement>,
    options?: { readonly mode?: "read" | "write" | undefined }
  ) => Effect.Effect<ReadonlyArray<ReadonlyArray<Row>>, PgClientError, R>
}

/**
 * The client.
 *
 * @since 0.1.0
 * @category models
 */
export interface PgClient extends Executor<never> {
  /** The same operations, run as the identity `key` holds (a role and its password). */
  readonly as: <I>(key: Context.Key<I, Identity.Credentials>) => Executor<I>
  /** Drops cached results (those whose statement text matches, or all). Returns how many. */
  readonly invalidateCache: (predicate?: (text: string) => boolean) => Effect.Effect<number>
  /** Cache hits and misses so far. */
  readonly cacheStats: Effect.Effect<{ readonly hits: number; readonly misses: number; readonly size: number }>
  /**
   * Every endpoint's health, role, breaker and pool. An old primary that came
   * back outside recovery after a failover shows as `role: "stale-primary"`
   * (fenced: it gets no work) until it rejoins as a replica or is unfenced.
   */
  readonly status: Effect.Effect<ServerSet.Status>
  /**
   * The balancer's published state of the set behind {@link status}, then each
   * health, breaker, role, fence, drain, weight or strategy change (see
   * `ServerSet.balancerChanges`); the observe monitor pushes them to the dashboard.
   */
  readonly balancerChanges: Stream.Stream<Balancer.Snapshot>
  /**
   * Lifts the fence of a stale primary on the operator's word (see
   * `ServerSet.unfence`): its timeline becomes the newest, so do it only
   * after the other primary was demoted or stopped. Answers whether it was fenced.
   */
  readonly unfence: (id: Endpoint.EndpointId) => Effect.Effect<boolean>
  /**
   * Steers the client while it runs: drain, enable, add or remove servers,
   * weights, pool limits, breaker thresholds, strategy, or `apply` a whole
   * new configuration (see `ServerSet.Reconfigure`). Every change goes to the exclusive and the multiplexed sets. No operation fails for it.
   */
  readonly reconfigure: ServerSet.Reconfigure
}

/**
 * The `PgClient` service.
 *
 * @since 0.1.0
 * @category services
 */
export const PgClient: Context.Service<PgClient, PgClient> = Context.Service<PgClient>("@tether/pg/PgClient")

/**
 * Starts a client in the current scope.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make: (
  options: Options
) => Effect.Effect<PgClient, Endpoint.InvalidEndpoint | InvalidPoolOptions, Scope.Scope> = internal.make

/**
 * The `PgSql` options {@link layer} uses: the shared ones, named `<name>/sql`,
 * pools opened on first use, then `options.sql`.
 *
 * @since 0.2.0
 * @category layers
 */
export const sqlOptions = (options: Options): PgSql.Options => ({
  ...PgOptions.common(options),
  name: `${options.name ?? "pg"}/sql`,
  pool: { ...options.pool, min: 0 },
  ...options.sql
})

/**
 * Provides {@link PgClient} and, over the same endpoints and credentials,
 * effect/sql's `SqlClient` (as `PgSql`): code written for `@effect/sql-pg`'s
 * layer keeps working (`Migrator`, `SqlModel`, `SqlResolver`, `SqlSchema`,
 * `withTransaction`), next to the tagged-template API. The `SqlClient` has
 * pools of its own, opened on first use (see {@link sqlOptions}).
 *
 * @example
 * ```ts
 * import { PgClient } from "@tether/pg"
 * import { Effect } from "effect"
 * import { SqlClient } from "effect/sql"
 *
 * const Live = PgClient.layer({ endpoints: ["postgres://db1:5432/app", "postgres://db2:5432/app"], user: "app" })
 *
 * const program = Effect.gen(function*() {
 *   const db = yield* PgClient.PgClient
 *   const sql = yield* SqlClient.SqlClient
 *   yield* sql`insert into audit (what) values (${"login"})`
 *   return yield* db.read`select count(*) from audit`
 * }).pipe(Effect.provide(Live))
 * ```
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (
  options: Options
): Layer.Layer<PgClient | PgSql.PgSql | SqlClient.SqlClient, Endpoint.InvalidEndpoint | InvalidPoolOptions> =>
  Layer.merge(Layer.effect(PgClient, make(options)), PgSql.layer(sqlOptions(options)))

/**
 * {@link layer} from `Config` (e.g. environment variables), like `@effect/sql-pg`'s `layerConfig`.
 *
 * @example
 * ```ts
 * import { PgClient } from "@tether/pg"
 * import { Config } from "effect"
 *
 * const Live = PgClient.layerConfig({
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
): Layer.Layer<
  PgClient | PgSql.PgSql | SqlClient.SqlClient,
  Config.ConfigError | Endpoint.InvalidEndpoint | InvalidPoolOptions
> => Layer.unwrap(Effect.map(Config.unwrap(config), layer))
