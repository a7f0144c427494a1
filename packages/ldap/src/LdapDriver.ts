/**
 * The LDAP driver for `@tether/core`, on ldapts: every pooled item is one
 * ldapts `Client`, bound as an identity (or the configured service account,
 * or anonymous), over `ldap://`, `ldaps://` or StartTLS.
 *
 * ldapts reconnects a dropped connection silently and *anonymously*, so a
 * liveness check is not enough: `validate` asks the server "Who am I?" and
 * checks it still sees the identity the connection was bound as.
 *
 * @since 0.1.0
 */
import type { Driver, Endpoint, Identity } from "@tether/core"
import { Duration, Effect, Redacted } from "effect"
import type { Scope } from "effect"
import { Client } from "ldapts"
import type * as tls from "node:tls"
import { classify, fromUnknown, isBroken } from "./LdapError.ts"
import type { LdapError } from "./LdapError.ts"

/** The "Who am I?" extended operation (RFC 4532). */
export const WHO_AM_I = "1.3.6.1.4.1.4203.1.11.3"

/**
 * One pooled connection: the ldapts client and whom it is bound as now
 * (`""`: anonymous).
 *
 * @since 0.1.0
 * @category models
 */
export interface LdapConnection {
  readonly client: Client
  readonly endpoint: string
  boundAs: string
}

/**
 * Options of {@link make}.
 *
 * @since 0.1.0
 * @category models
 */
export interface Options {
  /** The default identity's DN (a service account); none: anonymous. */
  readonly bindDn?: string | undefined
  readonly password?: Redacted.Redacted<string> | undefined
  /** Upgrade `ldap://` connections with StartTLS before binding. */
  readonly startTls?: boolean | undefined
  /** TLS options for `ldaps://` and StartTLS (CA, client certificate, `rejectUnauthorized`, `servername`). */
  readonly tls?: tls.ConnectionOptions | undefined
  /** Default 5 seconds. */
  readonly connectTimeout?: Duration.Input | undefined
  /** Bound on every operation. Default 10 seconds. */
  readonly timeout?: Duration.Input | undefined
}

const millis = (input: Duration.Input | undefined, fallback: number) =>
  input === undefined ? fallback : Duration.toMillis(Duration.fromInputUnsafe(input))

/**
 * Runs an ldapts call on a connection, mapping its failure.
 *
 * @since 0.1.0
 * @category operations
 */
export const attempt = <A>(
  connection: LdapConnection,
  operation: string,
  f: (client: Client) => Promise<A>,
  dn?: string
): Effect.Effect<A, LdapError> =>
  Effect.tryPromise({
    try: () => f(connection.client),
    catch: (cause) => fromUnknown(cause, { endpoint: connection.endpoint, operation, dn })
  })

/**
 * Binds the connection as `identity` (or the default identity).
 *
 * @since 0.1.0
 * @category operations
 */
export const bind = (
  options: Options,
  connection: LdapConnection,
  identity: Identity.Credentials | undefined
): Effect.Effect<void, LdapError> => {
  const dn = identity === undefined ? options.bindDn ?? "" : identity.principal
  const secret = identity === undefined ? options.password : identity.secret
  if (dn === "" && identity === undefined) {
    // Anonymous: nothing to send on a new connection; on a re-bind, an anonymous bind resets it.
    return connection.boundAs === ""
      ? Effect.void
      : Effect.tap(attempt(connection, "bind", (c) => c.bind("", "")), () => Effect.sync(() => (connection.boundAs = "")))
  }
  return attempt(connection, "bind", (c) => c.bind(dn, secret === undefined ? "" : Redacted.value(secret)), dn).pipe(
    Effect.tap(() => Effect.sync(() => (connection.boundAs = dn))),
    // A failed bind leaves the connection anonymous on the server.
    Effect.tapError(() => Effect.sync(() => (connection.boundAs = "")))
  )
}

/**
 * Opens a connection to `endpoint` and binds it. Closing the scope unbinds it.
 *
 * @since 0.1.0
 * @category connecting
 */
export const connect = (
  options: Options,
  endpoint: Endpoint.Endpoint,
  identity: Identity.Credentials | undefined
): Effect.Effect<LdapConnection, LdapError, Scope.Scope> => {
  const tlsOptions: tls.ConnectionOptions = {
    ...endpointTls(endpoint),
    ...options.tls
  }
  return Effect.acquireRelease(
    Effect.sync((): LdapConnection => ({
      client: new Client({
        url: endpoint.url,
        connectTimeout: millis(options.connectTimeout, 5_000),
        timeout: millis(options.timeout, 10_000),
        // For ldap:// URLs the TLS options go to StartTLS only: given to the constructor too, they
        // make ldapts's StartTLS handshake fail.
        ...(endpoint.url.startsWith("ldaps:") ? { tlsOptions } : {})
      }),
      endpoint: endpoint.url,
      boundAs: ""
    })),
    (connection) => Effect.promise(() => connection.client.unbind().catch(() => undefined))
  ).pipe(
    Effect.tap((connection) =>
      options.startTls === true && endpoint.url.startsWith("ldap:")
        ? attempt(connection, "startTLS", (c) => c.startTLS({ ...tlsOptions }))
        : Effect.void
    ),
    Effect.tap((connection) => bind(options, connection, identity))
  )
}

/** TLS settings declared on the endpoint (`Endpoint.tls`). */
const endpointTls = (endpoint: Endpoint.Endpoint): tls.ConnectionOptions => {
  const t = endpoint.tls
  if (t === undefined) return {}
  return {
    ...(t.ca === undefined ? {} : { ca: [t.ca] }),
    ...(t.rejectUnauthorized === undefined ? {} : { rejectUnauthorized: t.rejectUnauthorized }),
    ...(t.servername === undefined ? {} : { servername: t.servername })
  }
}

/**
 * Asks the server whom it sees on this connection (`dn:…`, or `""` for anonymous).
 *
 * @since 0.1.0
 * @category operations
 */
export const whoami = (connection: LdapConnection): Effect.Effect<string, LdapError> =>
  Effect.map(attempt(connection, "whoami", (c) => c.exop(WHO_AM_I)), (r) => r.value ?? "")

/**
 * The driver.
 *
 * @example
 * ```ts
 * import { LdapDriver } from "@tether/ldap"
 * import { ServerSet } from "@tether/core"
 * import { Redacted } from "effect"
 *
 * const set = ServerSet.make({
 *   name: "directory",
 *   endpoints: ["ldaps://ldap1:636", "ldaps://ldap2:636"],
 *   driver: LdapDriver.make({ bindDn: "cn=app,dc=example,dc=com", password: Redacted.make("…") })
 * })
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (options: Options): Driver.Driver<LdapConnection, LdapError> => ({
  connect: (endpoint, identity) => connect(options, endpoint, identity),
  rebind: (connection, identity) => bind(options, connection, identity),
  validate: (connection) =>
    Effect.map(whoami(connection), (seen) => connection.boundAs === "" ? seen === "" : seen === `dn:${connection.boundAs}`),
  probe: (endpoint) =>
    Effect.scoped(Effect.flatMap(connect(options, endpoint, undefined), (connection) => Effect.asVoid(whoami(connection)))),
  classify,
  isBroken
})
