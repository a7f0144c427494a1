/**
 * The driver under `PgSql`: like `PgDriver`, one postgres.js session per
 * pooled item, plus what a shared, pipelined session needs.
 *
 * - `closed`: postgres.js reconnects a lost session on its own and would run
 *   the next statement on a new backend (outside the transaction it belonged
 *   to). Once the socket closes, the session refuses every statement: the
 *   pool sees a broken connection and replaces it.
 * - `prepare`: named prepared statements, off behind PgBouncer in transaction mode.
 * - `notify`: LISTEN notifications of this session go to its listeners.
 */
import type { Driver, Endpoint, Identity } from "@tether/core"
import { Validation } from "@tether/core"
import { Effect } from "effect"
import type { Scope } from "effect"
import postgres from "postgres"
import * as PgDriver from "../PgDriver.ts"
import { classify, isBroken, PgConnectionError, PgTlsError } from "../PgError.ts"
import * as Session from "./session.ts"
import * as SocketClosed from "./socketClosed.ts"
import type { PgError } from "../PgError.ts"

/** One session of the SQL client. */
export interface SqlSession {
  readonly sql: postgres.Sql
  readonly pid: number
  readonly user: string
  readonly endpoint: string
  /** `host` and `port` of the endpoint (span attributes). */
  readonly host: string
  readonly port: number
  /** Set once the socket closed or the session was retired: it never runs another statement. */
  closed: boolean
  /**
   * The socket watch: statements are raced against the close (postgres.js can
   * leave one in flight on a reset socket unsettled). In a group, one
   * connection's close retires the whole group and cuts off its statements
   * still in flight after one event-loop turn (reads are retried; a write's
   * outcome is unknown).
   */
  readonly socket: SocketClosed.SocketClosed
  /** Whether a transaction is open on it (tracked from BEGIN / COMMIT / ROLLBACK). */
  inTransaction: boolean
  /** LISTEN listeners of this session. */
  readonly listeners: Set<(channel: string, payload: string) => void>
  /** Called once when the socket closes. */
  readonly onClose: Set<() => void>
  /** Connections behind `sql` (a group when more than one). */
  readonly connections: number
}

/** Options of {@link make}. */
export interface Options extends PgDriver.Options {
  /** Named prepared statements (default `true`; `false` behind PgBouncer in transaction mode). */
  readonly prepare?: boolean | undefined
  /** Statements postgres.js pipelines before waiting (its `max_pipeline`). Default 100. */
  readonly maxPipeline?: number | undefined
  /** Behind PgBouncer: the backend changes between transactions, so validation only checks the socket. */
  readonly pgbouncer?: boolean | undefined
  /**
   * postgres.js connections per pooled session of the default role (default 1). With more, the
   * session is a group: postgres.js spreads statements over its idle connections first and
   * pipelines on busy ones, as raw postgres.js does.
   */
  readonly connections?: number | undefined
}

const millis = Validation.millis

const hostPort = (url: string): { host: string; port: number } => {
  try {
    const parsed = new URL(url)
    return { host: parsed.hostname, port: parsed.port === "" ? 5432 : Number(parsed.port) }
  } catch {
    return { host: url, port: 5432 }
  }
}

/** Opens one session; closing the scope ends it. */
export const connect = (
  options: Options,
  endpoint: Endpoint.Endpoint,
  identity: Identity.Credentials | undefined
): Effect.Effect<SqlSession, PgError, Scope.Scope> => {
  const setup = Session.setup(options, endpoint, identity)
  if (setup instanceof PgTlsError) return Effect.fail(setup)
  const { connectMillis, context, user } = setup
  const max = identity === undefined ? Math.max(1, options.connections ?? 1) : 1
  const listeners = new Set<(channel: string, payload: string) => void>()
  const onClose = new Set<() => void>()
  const socket = SocketClosed.forEndpoint(context.endpoint)
  let session: SqlSession | undefined
  let closedEarly = false
  return Effect.acquireRelease(
    Effect.sync(() =>
      postgres(setup.url, {
        ...setup.base,
        max,
        max_pipeline: options.maxPipeline ?? 100,
        prepare: options.prepare ?? true,
        onnotify: (channel: string, payload: string) => {
          for (const listener of listeners) listener(channel, payload)
        },
        onclose: () => {
          socket.close()
          if (session === undefined) closedEarly = true
          else session.closed = true
          for (const f of onClose) f()
          onClose.clear()
        }
      } as postgres.Options<Record<string, postgres.PostgresType>>)
    ),
    (sql) => Effect.promise(() => sql.end({ timeout: 0 }).catch(() => undefined))
  ).pipe(
    Effect.flatMap((sql) =>
      PgDriver.backendPid(sql, context, connectMillis).pipe(
        Effect.flatMap((pid) => {
          if (closedEarly) {
            return Effect.fail(
              new PgConnectionError({
                endpoint: context.endpoint,
                code: "CONNECTION_CLOSED",
                reason: "closed while connecting",
                mayHaveReachedServer: false
              })
            )
          }
          session = {
            sql,
            pid,
            user,
            endpoint: context.endpoint,
            ...hostPort(endpoint.url),
            closed: false,
            inTransaction: false,
            listeners,
            onClose,
            socket,
            connections: max
          }
          return Effect.succeed(session)
        })
      )
    )
  )
}

/** Errors inside `use` arrive wrapped in a `SqlError`; the breaker and failover look at the Tether error under it. */
const unwrap = (error: unknown): unknown => {
  if (typeof error === "object" && error !== null && "_tag" in error && error._tag === "SqlError") {
    const reason = (error as { reason?: { cause?: unknown } }).reason
    return reason?.cause ?? error
  }
  return error
}

/** The driver: sessions as above; validation, probes and classification as `PgDriver`'s. */
export const make = (options: Options): Driver.Driver<SqlSession, unknown> => {
  const base = PgDriver.make(options)
  const probeMillis = millis(options.probeTimeout, 2_000)
  return {
    connect: (endpoint, identity) => connect(options, endpoint, identity),
    validate: (session) =>
      session.closed || session.inTransaction
        ? Effect.succeed(false)
        : options.pgbouncer === true || session.connections > 1
        // Behind PgBouncer the backend changes; in a group, any of its backends answers: the socket watch is the check.
        ? Effect.succeed(true)
        : Effect.map(
          PgDriver.run(
            session as unknown as PgDriver.PgConnection,
            "validation",
            (sql) => sql<Array<{ pid: number }>>`select pg_backend_pid() as pid`,
            { timeoutMillis: probeMillis }
          ),
          (rows) => rows[0]!.pid === session.pid && !session.closed
        ),
    probe: base.probe,
    classify: (error) => classify(unwrap(error)),
    isBroken: (error) => isBroken(unwrap(error))
  }
}
