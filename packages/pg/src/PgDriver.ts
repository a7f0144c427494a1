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
import { Validation } from "@tether/core"
import { Effect } from "effect"
import type { Duration, Scope } from "effect"
import postgres from "postgres"
import { cancelStatement, isCancellable } from "./internal/cancelStatement.ts"
import * as SocketClosed from "./internal/socketClosed.ts"
import * as Deadlines from "./internal/deadlines.ts"
import { TIMED_OUT } from "./internal/deadlines.ts"
import { checkDriverOptions } from "./internal/pgOptions.ts"
import * as Session from "./internal/session.ts"
import type * as Tls from "./internal/tls.ts"
import { classify, fromUnknown, isBroken, PgOutcomeUnknown, PgTimeout, PgTlsError } from "./PgError.ts"
import type { PgError } from "./PgError.ts"
import type * as PgOptions from "./PgOptions.ts"

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
  /**
   * Session state Tether tracks: whether `default_transaction_read_only` is
   * on (`undefined`: unknown, a change was sent and not confirmed), whether a
   * transaction is open, and whether a cancel request was sent for one of
   * its statements (`cancelled`: PostgreSQL cancels whatever the backend runs
   * when the request arrives, which may already be a later statement, so the
   * session is never lent again).
   */
  readonly session: { readOnly: boolean | undefined; inTransaction: boolean; cancelled: boolean }
  /**
   * Whether the session's socket closed. A closed session is never lent
   * (postgres.js would reconnect it silently), and statements in flight on
   * it fail at once with `CONNECTION_CLOSED` (postgres.js can leave them
   * unsettled).
   */
  readonly socket: SocketClosed.SocketClosed
}

/**
 * TLS, as libpq's `sslmode`: `disable` (plaintext), `allow` / `prefer`
 * (encrypted when the server offers it, certificate not checked; both try
 * TLS first), `require` (encrypted, certificate not checked — but checked as
 * `verify-ca` when a CA is given, as libpq does), `verify-ca` (the chain is
 * checked against the CA), `verify-full` (the chain and the name: the URL's
 * host, an IP address against the certificate's IP SANs, or the endpoint's
 * `tls.servername`).
 *
 * Per endpoint, `?sslmode=` and `?sslrootcert=` (a CA file, or `system`) in
 * the URL win over the endpoint's `tls` settings (`tls.ca`: PEM text or a file
 * path; an endpoint with `tls` defaults to `verify-full`), which win over the
 * client's `ssl` and `ca`. The default is `disable`. An unknown `sslmode`
 * fails with a typed error (`InvalidEndpoint` from `PgClient.make`,
 * `PgTlsError` from `connect`); a mode that does not verify the certificate
 * is logged once per endpoint at WARN.
 *
 * @since 0.1.0
 * @category models
 */
export type SslMode = Tls.SslMode

/**
 * Options of {@link make}.
 *
 * @since 0.1.0
 * @category models
 */
export interface Options extends
  Pick<
    PgOptions.Common,
    "user" | "password" | "database" | "ssl" | "ca" | "connectTimeout" | "statementTimeout" | "applicationName"
  >
{
  /** Bound on validation and probes. Default 2 seconds. */
  readonly probeTimeout?: Duration.Input | undefined
  /** Open every session with `default_transaction_read_only = on` (sessions that only ever read). */
  readonly readOnlySessions?: boolean | undefined
  /** Log once per endpoint at WARN when its server certificate is not verified. Default `true`. */
  readonly warnUnverified?: boolean | undefined
}

/**
 * The TLS settings of an endpoint (see {@link SslMode}), or what is wrong
 * with them. Files are read once per endpoint.
 *
 * @since 0.1.0
 * @category connecting
 */
export const tlsOf: (
  options: Pick<Options, "ssl" | "ca">,
  endpoint: Endpoint.Endpoint
) => Tls.ResolvedTls | { readonly problem: string } = Session.tlsOf


/**
 * The warning for an endpoint whose server certificate is not verified.
 *
 * @since 0.1.0
 * @category connecting
 */
export const unverifiedWarning = (endpoint: Endpoint.Endpoint, why: string): string =>
  `PostgreSQL endpoint ${endpoint.id}: the server's TLS certificate is not verified (${why}); ` +
  `anyone on the path can impersonate the server and read the password and the data. ` +
  `Use sslmode=verify-full with a CA (sslrootcert, tls.ca or ca)`

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
  const setup = Session.setup(options, endpoint, identity)
  if (setup instanceof PgTlsError) return Effect.fail(setup)
  const { connectMillis, context, user } = setup
  const socket = SocketClosed.forEndpoint(context.endpoint)
  return Effect.acquireRelease(
    Effect.sync(() => postgres(setup.url, { ...setup.base, max: 1, prepare: true, onclose: socket.close })),
    (sql) => Effect.promise(() => sql.end({ timeout: 0 }).catch(() => undefined))
  ).pipe(
    Effect.flatMap((sql) =>
      backendPid(sql, context, connectMillis).pipe(
        Effect.map((pid): PgConnection => ({
          sql,
          pid,
          user,
          endpoint: context.endpoint,
          session: { readOnly: options.readOnlySessions === true, inTransaction: false, cancelled: false },
          socket
        }))
      )
    )
  )
}

/**
 * Opens a postgres.js session for real (postgres.js connects lazily) by
 * reading its backend pid, within the connect timeout. The pid tells a
 * silent reconnect apart later (see `validate`).
 *
 * @since 0.2.0
 * @category connecting
 */
export const backendPid = (
  sql: postgres.Sql,
  context: { readonly endpoint: string; readonly user: string },
  connectMillis: number
): Effect.Effect<number, PgError> =>
  Effect.tryPromise({
    try: () => sql<Array<{ pid: number }>>`select pg_backend_pid() as pid`,
    catch: (cause) => fromUnknown(cause, context)
  }).pipe(
    Effect.timeoutOrElse({
      duration: connectMillis,
      orElse: () => Effect.fail(new PgTimeout({ endpoint: context.endpoint, operation: "connect", timeoutMillis: connectMillis }))
    }),
    Effect.map((rows) => rows[0]!.pid)
  )

/**
 * Whether a session may be lent (checked before every loan, without I/O): no
 * transaction left open (its rollback failed), no session setting in an
 * unknown state, no cancel request sent for it.
 */
const isReady = (connection: PgConnection): boolean =>
  !connection.socket.closed && !connection.session.inTransaction && connection.session.readOnly !== undefined && !connection.session.cancelled

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
  options?: {
    readonly write?: boolean | undefined
    readonly timeoutMillis?: number | undefined
    /**
     * Interrupted (an AbortSignal, a timeout, a closing client): cancel the
     * statement on the server too (postgres.js `PendingQuery.cancel`), so a
     * slow statement does not run on. Only for a session its borrower holds
     * alone: on a shared (multiplexed) session the request could cancel
     * another borrower's statement. A cancelled session is never lent again
     * (see `PgConnection.session.cancelled` and the driver's `isReady`).
     */
    readonly cancelOnInterrupt?: boolean | undefined
  }
): Effect.Effect<A, PgError> => {
  const timeoutMillis = options?.timeoutMillis
  const attempt = (deadlines: Deadlines.Deadlines | undefined) =>
    Effect.tryPromise({
      // The bound is a shared deadline sweep on the fiber's Clock around the promise: an Effect race (or a timer) per statement costs more.
      try: (signal) => {
        const pending = query(connection.sql)
        const settled = connection.socket.race(pending)
        if (options?.cancelOnInterrupt === true && isCancellable(pending)) {
          signal.addEventListener("abort", () => {
            connection.session.cancelled = true
            cancelStatement(pending)
          }, { once: true })
        }
        return deadlines === undefined ? settled : deadlines.bounded(settled, timeoutMillis!)
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
  return timeoutMillis === undefined ? attempt(undefined) : Effect.withFiber((fiber) => attempt(Deadlines.forFiber(fiber)))
}

/**
 * The probe's query: the role (`pg_is_in_recovery()`) and the timeline.
 *
 * On a primary the timeline is read from the name of the WAL segment being
 * written (`pg_walfile_name(pg_current_wal_lsn())`, its first 8 hex digits):
 * a promoted server writes on its new timeline from the moment it leaves
 * recovery, whereas `pg_control_checkpoint()` keeps the old timeline until
 * the first checkpoint after the promotion finishes (a fast promotion only
 * requests it). On a replica it is the newest of the last restartpoint's
 * timeline and the timeline the WAL receiver streams (`received_tli`, visible
 * to privileged roles only); a replica's timeline only matters by raising the
 * highest timeline seen. Every function used is executable by any role.
 */
const PROBE = `select pg_is_in_recovery() as replica,
  case when pg_is_in_recovery()
    then greatest((select timeline_id from pg_control_checkpoint()), (select received_tli from pg_stat_wal_receiver))::int
    else ('x' || substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8))::bit(32)::int
  end as timeline`

/**
 * The driver: connect as an identity, validate by backend pid, probe the
 * server's role with `pg_is_in_recovery()` (so a promoted replica is seen as
 * the primary on the next probe) and its timeline (so an old primary that
 * comes back outside recovery is fenced, never written to), classify errors.
 *
 * @example
 * ```ts
 * import { PgDriver } from "@tether/pg"
 * import { ServerSet } from "@tether/core"
 * import { Redacted } from "effect"
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
  // A bad probeTimeout fails `checkOptions` (run by `ServerSet.make`) before any probe runs: never throw here.
  const probeMillis = Validation.millis(options.probeTimeout, 2_000)
  const warned = new Set<string>()
  /** Says once per endpoint, at WARN, that its server certificate is not verified. */
  const warnOnce = (endpoint: Endpoint.Endpoint) =>
    Effect.suspend(() => {
      if (options.warnUnverified === false || warned.has(endpoint.id)) return Effect.void
      const tls = tlsOf(options, endpoint)
      if ("problem" in tls || tls.unverified === undefined) return Effect.void
      warned.add(endpoint.id)
      return Effect.logWarning(unverifiedWarning(endpoint, tls.unverified))
    })
  return {
    checkOptions: checkDriverOptions(options),
    connect: (endpoint, identity) => Effect.andThen(warnOnce(endpoint), connect(options, endpoint, identity)),
    validate: (connection) =>
      Effect.map(
        run(connection, "validation", (sql) => sql<Array<{ pid: number }>>`select pg_backend_pid() as pid`, {
          timeoutMillis: probeMillis
        }),
        // A different pid: postgres.js reconnected behind our back; the session (and its state) is gone.
        // A transaction left open (its rollback failed), or a session setting in an unknown state, makes it unusable too.
        (rows) =>
          rows[0]!.pid === connection.pid && isReady(connection)
      ),
    isReady,
    probe: (endpoint) =>
      Effect.scoped(
        Effect.gen(function*() {
          const connection = yield* connect({ ...options, connectTimeout: probeMillis }, endpoint, undefined)
          const rows = yield* run(
            connection,
            "probe",
            (sql) => sql.unsafe<Array<{ replica: boolean; timeline: number | null }>>(PROBE),
            { timeoutMillis: probeMillis }
          )
          const row = rows[0]!
          return {
            role: row.replica ? "replica" as const : "primary" as const,
            timeline: row.timeline === null ? undefined : Number(row.timeline)
          }
        })
      ),
    classify,
    isBroken
  }
}
