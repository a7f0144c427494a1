/**
 * Minimal drivers for the core's integration tests against real servers.
 * (The full drivers are `@tether/ldap` and `@tether/pg`; these only connect,
 * validate, probe and classify, which is all the core needs.)
 */
import type { Driver, Identity } from "@tether/core"
import { Fault } from "@tether/core"
import { Data, Effect, Redacted } from "effect"
import { Client } from "ldapts"
import postgres from "postgres"

/** A failure of a real client library, with its error code when it has one. */
export class ClientError extends Data.TaggedError("ClientError")<{
  readonly code: string | undefined
  readonly cause: unknown
}> {}

/** The operation took longer than the test's operation timeout (the server may hang). */
export class OperationTimeout extends Data.TaggedError("OperationTimeout")<{ readonly endpoint: string }> {}

const codeOf = (e: unknown) => {
  if (typeof e !== "object" || e === null) return undefined
  if ("code" in e && e.code !== undefined) return String(e.code)
  // ldapts reports a broken socket as a plain Error.
  const message = e instanceof Error ? e.message : ""
  if (/socket error|connection closed|socket closed/i.test(message)) return "ECONNRESET"
  return e.constructor?.name
}

/** Runs a client promise, failing with a ClientError that carries its code. */
export const attempt = <A>(f: () => Promise<A>) =>
  Effect.tryPromise({ try: f, catch: (cause) => new ClientError({ code: codeOf(cause), cause }) })

/** Bounds an operation: a hung server fails it with OperationTimeout. */
export const bounded = <A, E, R>(endpoint: string, effect: Effect.Effect<A, E, R>, millis = 500) =>
  Effect.timeoutOrElse(effect, {
    duration: millis,
    orElse: () => Effect.fail(new OperationTimeout({ endpoint }))
  })

const connectionCodes = new Set([
  "ECONNREFUSED",
  "ECONNRESET",
  "EPIPE",
  "ETIMEDOUT",
  "CONNECT_TIMEOUT",
  "CONNECTION_CLOSED",
  "CONNECTION_ENDED",
  "CONNECTION_DESTROYED",
  "57P01",
  "57P02",
  "57P03"
])

const classify = (error: unknown) => {
  if (error instanceof OperationTimeout) return Fault.make("connection", { mayHaveReachedServer: true })
  if (!(error instanceof ClientError)) return Fault.make("unknown")
  const code = error.code ?? ""
  if (code === "ECONNREFUSED" || code === "CONNECT_TIMEOUT") {
    return Fault.make("connection", { mayHaveReachedServer: false })
  }
  if (connectionCodes.has(code)) return Fault.make("connection", { mayHaveReachedServer: true })
  // PostgreSQL 28P01 / LDAP 49: invalid credentials. LDAP 51 busy, 52 unavailable.
  if (code === "28P01" || code === "49") return Fault.make("authentication")
  if (code === "51" || code === "52") return Fault.make("overload", { mayHaveReachedServer: false })
  return Fault.make("semantic")
}

/** A node's URL without the user name: endpoints carry no credentials, identities do. */
export const endpointUrl = (node: { readonly host: string; readonly port: number }) =>
  `postgres://${node.host}:${node.port}/postgres`

/** A pooled PostgreSQL session and its backend pid (postgres.js reconnects silently; the pid tells). */
export interface PgSession {
  readonly sql: postgres.Sql
  readonly pid: number
  /**
   * Set once the socket closed: postgres.js would reconnect it silently on the next query, so it is
   * never lent again; `promise` rejects then (see {@link run}).
   */
  readonly closed: ClosedSignal
}

interface ClosedSignal {
  value: boolean
  readonly promise: Promise<never>
  readonly fire: () => void
}

const closedSignal = (): ClosedSignal => {
  let reject: (error: Error) => void = () => undefined
  const promise = new Promise<never>((_, no) => {
    reject = no
  })
  promise.catch(() => undefined)
  const signal: ClosedSignal = {
    value: false,
    promise,
    fire: () => {
      signal.value = true
      reject(Object.assign(new Error("connection closed"), { code: "CONNECTION_CLOSED" }))
    }
  }
  return signal
}

/**
 * Runs a query on a session; fails with `CONNECTION_CLOSED` as soon as its socket closes. (postgres.js
 * can leave a query in flight on a reset socket unsettled for ever: seen under `FaultProxy.resetAll`.)
 */
export const run = <A>(session: PgSession, f: (sql: postgres.Sql) => Promise<A>) =>
  attempt(() => Promise.race([f(session.sql), session.closed.promise]))

/**
 * A PostgreSQL driver over postgres.js, one server session per pooled item,
 * as the role of the identity asked for, or as the superuser `postgres`
 * (endpoints carry no credentials).
 */
export const pgDriver: Driver.Driver<PgSession, ClientError> = {
  connect: (endpoint, identity) =>
    Effect.acquireRelease(
      Effect.sync(() => {
        const closed = closedSignal()
        const sql = postgres(endpoint.url, {
          username: identity?.principal ?? "postgres",
          ...(identity?.secret === undefined ? {} : { password: Redacted.value(identity.secret) }),
          max: 1,
          idle_timeout: 0,
          connect_timeout: 1,
          onnotice: () => undefined,
          onclose: () => closed.fire(),
          fetch_types: false
        })
        return { sql, closed }
      }),
      ({ sql }) => Effect.promise(() => sql.end({ timeout: 0 }).catch(() => undefined))
    ).pipe(
      Effect.flatMap(({ closed, sql }) =>
        attempt(() => sql<Array<{ pid: number }>>`select pg_backend_pid() as pid`).pipe(
          Effect.map((rows) => ({ sql, pid: rows[0]!.pid, closed }))
        )
      )
    ),
  isReady: (session) => !session.closed.value,
  validate: (session) =>
    bounded(
      "validate",
      attempt(() => session.sql<Array<{ pid: number }>>`select pg_backend_pid() as pid`).pipe(
        Effect.map((rows) => rows[0]!.pid === session.pid)
      )
    ),
  probe: (endpoint) =>
    Effect.acquireUseRelease(
      Effect.sync(() =>
        postgres(endpoint.url, { username: "postgres", max: 1, connect_timeout: 1, onnotice: () => undefined, fetch_types: false })
      ),
      (sql) =>
        attempt(() => sql<Array<{ replica: boolean }>>`select pg_is_in_recovery() as replica`).pipe(
          Effect.map((rows) => ({ role: rows[0]!.replica ? "replica" as const : "primary" as const }))
        ),
      (sql) => Effect.promise(() => sql.end({ timeout: 0 }).catch(() => undefined))
    ),
  classify,
  isBroken: (error) => classify(error).kind === "connection"
}

const bindAs = (client: Client, dn: string, password: string, identity: Identity.Credentials | undefined) =>
  attempt(() =>
    identity === undefined
      ? client.bind(dn, password)
      : client.bind(identity.principal, identity.secret === undefined ? "" : Redacted.value(identity.secret))
  )

/**
 * An LDAP driver over ldapts: each pooled connection is bound as the identity
 * asked for (default: `dn`); with `rebind`, an idle connection can be bound
 * again as another identity.
 */
export const ldapDriver = (
  dn: string,
  password: string,
  options?: { readonly rebind?: boolean }
): Driver.Driver<Client, ClientError> => ({
  rebind: options?.rebind === false ? undefined : (client, identity) => bindAs(client, dn, password, identity),
  connect: (endpoint, identity) =>
    Effect.acquireRelease(
      Effect.sync(() => new Client({ url: endpoint.url, connectTimeout: 1_000, timeout: 2_000 })),
      (client) => Effect.promise(() => client.unbind().catch(() => undefined))
    ).pipe(Effect.tap((client) => bindAs(client, dn, password, identity))),
  // Still bound as the right identity? (ldapts reconnects a lost connection anonymously.)
  validate: (client, identity) =>
    bounded(
      "validate",
      attempt(() => client.exop("1.3.6.1.4.1.4203.1.11.3")).pipe(
        Effect.map((r) => r.value === `dn:${identity?.principal ?? dn}`)
      )
    ),
  classify,
  isBroken: (error) => classify(error).kind === "connection"
})
