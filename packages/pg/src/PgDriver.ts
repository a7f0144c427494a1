/**
 * The PostgreSQL driver for `@tether/core`: every pooled item is one
 * postgres.js connection (its own pool fixed at one connection), so Tether's
 * lifetime, validation, identity and breaker rules apply to each session.
 *
 * postgres.js hazards it defends against:
 * - it reconnects a lost session silently, on a new backend: `validate`
 *   compares the backend pid with the one recorded at connect;
 * - a statement sent while its socket is dying can wait forever, and a
 *   connection cut during start-up retries in a loop: every network step is
 *   bounded by an Effect timeout, and a timed-out connection is destroyed;
 * - its array-type lookup at connect is an unawaited promise that rejects
 *   when the connection is ended early: `fetch_types` is off.
 *
 * @since 0.1.0
 */
import type { Driver, Endpoint, Identity } from "@tether/core"
import { Duration, Effect, Redacted } from "effect"
import type { Scope } from "effect"
import postgres from "postgres"
import { bounded, TIMED_OUT } from "./internal/deadlines.ts"
import { classify, fromUnknown, isBroken, PgOutcomeUnknown, PgTimeout } from "./PgError.ts"
import type { PgError } from "./PgError.ts"

/**
 * One pooled session: its postgres.js handle, backend pid, and the role it
 * logged in as.
 *
 * @since 0.1.0
 * @category models
 */
export interface PgConnection {
  readonly sql: postgres.Sql
  readonly pid: number
  readonly user: string
  readonly endpoint: string
  /** Session state Tether tracks: whether `default_transaction_read_only` is on, whether a transaction is open. */
  readonly session: { readOnly: boolean; inTransaction: boolean }
}

/**
 * TLS: `disable` (default), `require` (encrypted, certificate not checked),
 * `verify-full` (encrypted, certificate and host name checked against `ca`
 * or the system's CAs).
 *
 * @since 0.1.0
 * @category models
 */
export type SslMode = "disable" | "require" | "verify-full"

/**
 * Options of {@link make}.
 *
 * @since 0.1.0
 * @category models
 */
export interface Options {
  /** The role of the default identity (used when an operation runs as no identity). */
  readonly user: string
  readonly password?: Redacted.Redacted<string> | undefined
  /** Default `postgres`, or the database in the endpoint's URL. */
  readonly database?: string | undefined
  readonly ssl?: SslMode | undefined
  /** PEM text of the CA for `verify-full`. */
  readonly ca?: string | undefined
  /** Default 5 seconds. */
  readonly connectTimeout?: Duration.Input | undefined
  /** Server-side `statement_timeout` of every session. Default: none. */
  readonly statementTimeout?: Duration.Input | undefined
  /** Bound on validation and probes. Default 2 seconds. */
  readonly probeTimeout?: Duration.Input | undefined
  /** `application_name` of every session. Default `tether`. */
  readonly applicationName?: string | undefined
  /** Open every session with `default_transaction_read_only = on` (sessions that only ever read). */
  readonly readOnlySessions?: boolean | undefined
}

const millis = (input: Duration.Input | undefined, fallback: number) =>
  input === undefined ? fallback : Duration.toMillis(Duration.fromInputUnsafe(input))

/** The endpoint's URL without credentials, as shown in errors. */
const show = (endpoint: Endpoint.Endpoint) => endpoint.url

/**
 * Opens one session to `endpoint` as `identity` (a role and its password)
 * or as the default user. Closing the scope ends it.
 *
 * @since 0.1.0
 * @category connecting
 */
export const connect = (
  options: Options,
  endpoint: Endpoint.Endpoint,
  identity: Identity.Credentials | undefined
): Effect.Effect<PgConnection, PgError, Scope.Scope> => {
  const user = identity?.principal ?? options.user
  const secret = identity === undefined ? options.password : identity.secret
  const connectMillis = millis(options.connectTimeout, 5_000)
  const statementMillis = options.statementTimeout === undefined ? undefined : millis(options.statementTimeout, 0)
  const context = { endpoint: show(endpoint), user }
  const ssl = options.ssl ?? "disable"
  return Effect.acquireRelease(
    Effect.sync(() =>
      postgres(endpoint.url, {
        username: user,
        ...(secret === undefined ? {} : { password: Redacted.value(secret) }),
        ...(options.database === undefined ? {} : { database: options.database }),
        max: 1,
        idle_timeout: 0,
        max_lifetime: null,
        connect_timeout: Math.max(1, Math.ceil(connectMillis / 1000)),
        fetch_types: false,
        prepare: true,
        onnotice: () => undefined,
        ssl: ssl === "disable"
          ? false
          : ssl === "require"
          ? { rejectUnauthorized: false }
          : { rejectUnauthorized: true, ...(options.ca === undefined ? {} : { ca: options.ca }) },
        connection: {
          application_name: options.applicationName ?? "tether",
          ...(options.readOnlySessions === true ? { default_transaction_read_only: true } : {}),
          ...(statementMillis === undefined ? {} : { statement_timeout: statementMillis })
        }
      })
    ),
    (sql) => Effect.promise(() => sql.end({ timeout: 0 }).catch(() => undefined))
  ).pipe(
    Effect.flatMap((sql) =>
      Effect.tryPromise({
        try: () => sql<Array<{ pid: number }>>`select pg_backend_pid() as pid`,
        catch: (cause) => fromUnknown(cause, context)
      }).pipe(
        Effect.timeoutOrElse({
          duration: connectMillis,
          orElse: () =>
            Effect.fail(new PgTimeout({ endpoint: context.endpoint, operation: "connect", timeoutMillis: connectMillis }))
        }),
        Effect.map((rows): PgConnection => ({
          sql,
          pid: rows[0]!.pid,
          user,
          endpoint: context.endpoint,
          session: { readOnly: options.readOnlySessions === true, inTransaction: false }
        }))
      )
    )
  )
}

/**
 * Runs one query on a session, bounded by `timeoutMillis` when given.
 *
 * @since 0.1.0
 * @category connecting
 */
export const run = <A>(
  connection: PgConnection,
  operation: string,
  query: (sql: postgres.Sql) => Promise<A>,
  options?: { readonly write?: boolean | undefined; readonly timeoutMillis?: number | undefined }
): Effect.Effect<A, PgError> => {
  const timeoutMillis = options?.timeoutMillis
  return Effect.tryPromise({
    // The bound is a shared deadline sweeper around the promise: an Effect race (or a timer) per statement costs more.
    try: (signal) => {
      const pending = query(connection.sql)
      // Interrupted (an AbortSignal, a timeout, a closing client): cancel the statement on the
      // server too (postgres.js `PendingQuery.cancel`), so the connection is not left busy.
      const cancel = (pending as { cancel?: () => unknown }).cancel
      if (typeof cancel === "function") signal.addEventListener("abort", () => void cancel.call(pending), { once: true })
      return timeoutMillis === undefined ? pending : bounded(pending, timeoutMillis)
    },
    catch: (cause) => {
      if (cause !== TIMED_OUT) {
        return fromUnknown(cause, { endpoint: connection.endpoint, user: connection.user, write: options?.write })
      }
      return options?.write === true
        // A write without an answer may have been applied.
        ? new PgOutcomeUnknown({ endpoint: connection.endpoint, reason: `no answer within ${timeoutMillis} ms` })
        : new PgTimeout({ endpoint: connection.endpoint, operation, timeoutMillis: timeoutMillis! })
    }
  })
}

/**
 * The driver: connect as an identity, validate by backend pid, probe the
 * server's role with `pg_is_in_recovery()` (so a promoted replica is seen as
 * the primary on the next probe), classify errors.
 *
 * @example
 * ```ts
 * import { PgDriver } from "@tether/pg"
 * import { ServerSet } from "@tether/core"
 *
 * const set = ServerSet.make({
 *   name: "db",
 *   endpoints: ["postgres://10.0.0.1:5432/app", "postgres://10.0.0.2:5432/app"],
 *   driver: PgDriver.make({ user: "app", password: Redacted.make(process.env.PGPASSWORD!) })
 * })
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (options: Options): Driver.Driver<PgConnection, PgError> => {
  const probeMillis = millis(options.probeTimeout, 2_000)
  return {
    connect: (endpoint, identity) => connect(options, endpoint, identity),
    validate: (connection) =>
      Effect.map(
        run(connection, "validation", (sql) => sql<Array<{ pid: number }>>`select pg_backend_pid() as pid`, {
          timeoutMillis: probeMillis
        }),
        // A different pid: postgres.js reconnected behind our back; the session (and its state) is gone.
        // A transaction left open (its rollback failed) makes the session unusable too.
        (rows) => rows[0]!.pid === connection.pid && !connection.session.inTransaction
      ),
    probe: (endpoint) =>
      Effect.scoped(
        Effect.gen(function*() {
          const connection = yield* connect({ ...options, connectTimeout: probeMillis }, endpoint, undefined)
          const rows = yield* run(
            connection,
            "probe",
            (sql) => sql<Array<{ replica: boolean }>>`select pg_is_in_recovery() as replica`,
            { timeoutMillis: probeMillis }
          )
          return { role: rows[0]!.replica ? "replica" as const : "primary" as const }
        })
      ),
    classify,
    isBroken
  }
}
