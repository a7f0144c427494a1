/**
 * The LDAP driver for `@tether/core`, on ldapts: every pooled item is one
 * ldapts `Client`, bound as an identity (or the configured service account,
 * or anonymous), over `ldap://`, `ldaps://` or StartTLS.
 *
 * **A connection never runs unbound.** ldapts reconnects a dropped socket on
 * the next operation *without binding*, so the server would then see the
 * operations as anonymous. This driver gives each client one socket for its
 * whole life: the socket factory it hands ldapts refuses a second one, so an
 * operation that would reconnect fails with `LdapConnectionError` (code
 * `ERECONNECT`, a connection fault: the connection is destroyed and the
 * server set retries idempotent work on a fresh, bound connection).
 * `isReady` tells the pool, before each loan, that the socket is gone, and
 * `validate` still asks the server "Who am I?".
 *
 * **TLS checks the URL's host.** `ldaps://` and StartTLS verify the server
 * certificate against the host of the endpoint URL: its IP address (IP SAN)
 * for an address, its name otherwise (or `servername` when given). Turning
 * verification off, and sending a password over plain `ldap://` without
 * StartTLS, are logged once per endpoint at WARN (`allowPlaintext: true`
 * silences the latter).
 *
 * It runs past 400 lines because a quarter of it documents the driver's contract (connect,
 * bind, probe, classify) for people writing their own.
 *
 * @since 0.1.0
 */
import type { Driver, Identity } from "@tether/core"
import { Endpoint, Validation } from "@tether/core"
import { Effect, Redacted } from "effect"
import type { Duration, Scope } from "effect"
import { Client } from "ldapts"
import * as fs from "node:fs"
import * as net from "node:net"
import * as tls from "node:tls"
import { checkDriverOptions } from "./internal/ldapOptions.ts"
import * as saslBind from "./internal/saslBind.ts"
import { classify, fromUnknown, isBroken, LdapConnectionError } from "./LdapError.ts"
import type { LdapError } from "./LdapError.ts"
import { isSasl } from "./Sasl.ts"
import type * as Sasl from "./Sasl.ts"

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
  /**
   * Whether the client has opened its one socket (an anonymous connection
   * opens it on its first operation), and the socket it writes to now (the
   * TLS one after StartTLS): pipelined operations cork it to send together.
   */
  readonly socket: { opened: boolean; current?: net.Socket | undefined }
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
  /** The default identity binds with SASL instead (`Sasl.credentials`, `Sasl.external`); excludes `bindDn`. */
  readonly sasl?: Sasl.Credentials | undefined
  /** Upgrade `ldap://` connections with StartTLS before binding. */
  readonly startTls?: boolean | undefined
  /** TLS options for `ldaps://` and StartTLS (CA, client certificate, `rejectUnauthorized`, `servername`). */
  readonly tls?: tls.ConnectionOptions | undefined
  /**
   * Send passwords over plain `ldap://` without StartTLS without a warning
   * (e.g. on loopback or inside a trusted tunnel). Default `false`: such a
   * bind is logged once per endpoint at WARN.
   */
  readonly allowPlaintext?: boolean | undefined
  /** Default 5 seconds. */
  readonly connectTimeout?: Duration.Input | undefined
  /** Bound on every operation. Default 10 seconds. */
  readonly timeout?: Duration.Input | undefined
}

const millis = Validation.millis

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
  const credentials = identity ?? options.sasl
  if (credentials !== undefined && isSasl(credentials)) return saslBind.bind(connection, credentials)
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
 * The host of an LDAP URL (without IPv6 brackets), as ldapts connects to it.
 *
 * @since 0.1.0
 * @category connecting
 */
export const hostOf = (url: string): string => {
  try {
    const host = new URL(url).hostname
    return host.startsWith("[") && host.endsWith("]") ? host.slice(1, -1) : host === "" ? "localhost" : host
  } catch {
    return "localhost"
  }
}

/**
 * The TLS options that verify the certificate against `host`: an IP address
 * is checked against the certificate's IP SANs (no SNI: RFC 6066 forbids
 * addresses there), a name against its DNS names and sent as SNI. An explicit
 * `servername` wins.
 *
 * @since 0.1.0
 * @category connecting
 */
export const verifyingHost = (host: string, options: tls.ConnectionOptions): tls.ConnectionOptions => {
  if (options.servername !== undefined) return { ...options, host }
  return net.isIP(host) === 0 ? { ...options, host, servername: host } : { ...options, host }
}

/**
 * Rejects endpoint URLs that carry credentials in an RFC 4516 extension
 * (`bindname`, `X-BINDPW`), without printing them: credentials belong in
 * `bindDn` / `password` or an identity, where they stay `Redacted`.
 * (`user:password@` is rejected by `Endpoint.decode` itself.)
 *
 * @since 0.1.0
 * @category connecting
 */
export const rejectCredentialUrls = (
  endpoints: ReadonlyArray<Endpoint.EndpointInput | string>
): Effect.Effect<void, Endpoint.InvalidEndpoint> =>
  Effect.suspend(() => {
    // Not a list: `ServerSet.make` reports it (as `InvalidPoolOptions` naming `endpoints`).
    if (!Array.isArray(endpoints)) return Effect.void
    for (const input of endpoints as ReadonlyArray<unknown>) {
      const url = typeof input === "string"
        ? input
        : typeof input === "object" && input !== null && typeof (input as { url?: unknown }).url === "string"
        ? (input as { url: string }).url
        : undefined
      // Anything else is reported by `Endpoint.decode`.
      if (url === undefined) continue
      const scheme = checkLdapUrl(url)
      if (scheme !== undefined) {
        return Effect.fail(
          new Endpoint.InvalidEndpoint({ endpoint: Endpoint.redactUrl(url), problems: [{ field: "url", message: scheme }] })
        )
      }
      if (/\?.*\b(x-bindpw|bindname)\s*(=|%3d)/i.test(url)) {
        const shown = /^([a-z][a-z0-9+.-]*:\/\/)(?:[^/?#]*@)?([^/?#]*)/i.exec(url)
        return Effect.fail(
          new Endpoint.InvalidEndpoint({
            endpoint: shown === null ? "<not a URL>" : `${shown[1]}${shown[2]}`,
            problems: [{
              field: "url",
              message: "must not contain credentials (a bindname or X-BINDPW extension): give them as bindDn and " +
                "password, or as an identity"
            }]
          })
        )
      }
    }
    return Effect.void
  })

/** Why `url` is not an LDAP URL ldapts can connect to (`ldap://` or `ldaps://` with a host), if it is not. */
const checkLdapUrl = (url: string): string | undefined => {
  const scheme = /^([a-z][a-z0-9+.-]*):/i.exec(url)?.[1]?.toLowerCase()
  if (scheme !== "ldap" && scheme !== "ldaps") {
    return `must be a URL like ldap://host:389 or ldaps://host:636 (got ${
      scheme === undefined ? "no scheme" : `the scheme ${scheme}:`
    })`
  }
  let host: string
  try {
    host = new URL(url).hostname
  } catch {
    return "must be a URL like ldap://host:389 (it could not be parsed)"
  }
  return host === "" ? "must name a host, like ldap://host:389 (ldapi:// and host-less URLs are not supported)" : undefined
}

const reconnectRefused = (endpoint: string) =>
  new LdapConnectionError({
    endpoint,
    code: "ERECONNECT",
    reason: "the connection was lost; a reconnected socket would not be bound, so it is not reopened " +
      "(Tether replaces the connection)",
    // The borrower may have run earlier operations on the lost socket: never replay its work unless idempotent.
    mayHaveReachedServer: true
  })

/**
 * Opens a connection to `endpoint` and binds it. Closing the scope unbinds it.
 * The client gets exactly one socket: ldapts's silent, unbound reconnect is
 * refused (see the module's documentation).
 *
 * @since 0.1.0
 * @category connecting
 */
export const connect = (
  options: Options,
  endpoint: Endpoint.Endpoint,
  identity: Identity.Credentials | undefined
): Effect.Effect<LdapConnection, LdapError, Scope.Scope> =>
  Effect.flatMap(tlsFor(options, endpoint), (tlsOptions) => {
    const host = hostOf(endpoint.url)
    const secure = endpoint.url.toLowerCase().startsWith("ldaps:")
    return Effect.acquireRelease(
      Effect.sync((): LdapConnection => {
        const socket: LdapConnection["socket"] = { opened: false }
        const once = () => {
          if (socket.opened) throw reconnectRefused(endpoint.url)
          socket.opened = true
        }
        const client = new Client({
          url: endpoint.url,
          connectTimeout: millis(options.connectTimeout, 5_000),
          timeout: millis(options.timeout, 10_000),
          // For ldap:// URLs the TLS options go to StartTLS only: given to the constructor too, they
          // make ldapts's StartTLS handshake fail.
          ...(secure ? { tlsOptions } : {}),
          createConnection: ((port: number, h: string) => {
            once()
            return (socket.current = net.connect(port, h))
          }) as typeof net.connect,
          createSecureConnection: ((...args: Array<unknown>) => {
            // StartTLS: the upgrade of our one socket (one options object holding it).
            if (args.length === 1) return (socket.current = tls.connect(args[0] as tls.ConnectionOptions))
            once()
            return (socket.current = tls.connect(verifyingHost(host, { ...tlsOptions, port: args[0] as number })))
          }) as typeof tls.connect
        })
        return { client, endpoint: endpoint.url, boundAs: "", socket }
      }),
      (connection) => Effect.promise(() => connection.client.unbind().catch(() => undefined))
    ).pipe(
      Effect.tap((connection) =>
        options.startTls === true && !secure
          ? attempt(connection, "startTLS", (c) => c.startTLS(verifyingHost(host, tlsOptions)))
          : Effect.void
      ),
      Effect.tap((connection) => bind(options, connection, identity))
    )
  })

/** TLS settings declared on the endpoint (`Endpoint.tls`), its CA read from a file when it is a path. */
const endpointTls = (endpoint: Endpoint.Endpoint): Effect.Effect<tls.ConnectionOptions, LdapError> => {
  const t = endpoint.tls
  if (t === undefined) return Effect.succeed({})
  const ca = t.ca
  const readCa = ca === undefined
    ? Effect.succeed(undefined)
    : ca.includes("-----BEGIN")
    ? Effect.succeed(ca)
    : Effect.try({
      try: () => fs.readFileSync(ca, "utf8"),
      catch: (cause) =>
        new LdapConnectionError({
          endpoint: endpoint.url,
          code: "ETLSCA",
          reason: `cannot read the CA file tls.ca (${ca}): ${(cause as NodeJS.ErrnoException).code ?? String(cause)}`,
          mayHaveReachedServer: false
        })
    })
  return Effect.map(readCa, (pem) => ({
    ...(pem === undefined ? {} : { ca: [pem] }),
    ...(t.rejectUnauthorized === undefined ? {} : { rejectUnauthorized: t.rejectUnauthorized }),
    ...(t.servername === undefined ? {} : { servername: t.servername })
  }))
}

const tlsFor = (options: Options, endpoint: Endpoint.Endpoint) =>
  Effect.map(endpointTls(endpoint), (fromEndpoint): tls.ConnectionOptions => ({ ...fromEndpoint, ...options.tls }))

/**
 * Asks the server whom it sees on this connection (`dn:…`, or `""` for anonymous).
 *
 * @since 0.1.0
 * @category operations
 */
export const whoami = (connection: LdapConnection): Effect.Effect<string, LdapError> =>
  Effect.map(attempt(connection, "whoami", (c) => c.exop(WHO_AM_I)), (r) => r.value ?? "")

/**
 * Whether a pooled connection may be lent: its one socket is still open (or
 * not opened yet, for an anonymous connection that opens it on first use).
 *
 * @since 0.1.0
 * @category operations
 */
export const isReady = (connection: LdapConnection): boolean =>
  !connection.socket.opened || connection.client.isConnected

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
export const make = (options: Options): Driver.Driver<LdapConnection, LdapError> => {
  // Each warning once per endpoint (and driver).
  const warned = new Set<string>()
  const warnOnce = (key: string, message: string) =>
    Effect.suspend(() => {
      if (warned.has(key)) return Effect.void
      warned.add(key)
      return Effect.logWarning(message)
    })
  const warnings = (endpoint: Endpoint.Endpoint, identity: Identity.Credentials | undefined) =>
    Effect.gen(function*() {
      const secure = endpoint.url.toLowerCase().startsWith("ldaps:")
      const verifying = endpoint.tls?.rejectUnauthorized !== false && options.tls?.rejectUnauthorized !== false
      if ((secure || options.startTls === true) && !verifying) {
        yield* warnOnce(
          `verify ${endpoint.id}`,
          `LDAP endpoint ${endpoint.id}: TLS certificate verification is OFF (rejectUnauthorized: false); ` +
            `anyone on the path can impersonate the server. Use it for tests only.`
        )
      }
      // SCRAM never sends the password; PLAIN and simple binds do.
      const bound = identity ?? options.sasl
      const sendsPassword = bound === undefined
        ? options.password !== undefined
        : bound.secret !== undefined && !(isSasl(bound) && bound.sasl.mechanism.startsWith("SCRAM"))
      if (!secure && options.startTls !== true && options.allowPlaintext !== true && sendsPassword) {
        yield* warnOnce(
          `plaintext ${endpoint.id}`,
          `LDAP endpoint ${endpoint.id}: passwords are sent in clear text (ldap:// without StartTLS). ` +
            `Use ldaps:// or startTls: true, or set allowPlaintext: true to accept it.`
        )
      }
    })
  return {
    checkOptions: checkDriverOptions(options),
    connect: (endpoint, identity) => Effect.andThen(warnings(endpoint, identity), connect(options, endpoint, identity)),
    rebind: (connection, identity) => bind(options, connection, identity),
    isReady,
    validate: (connection) =>
      isReady(connection)
        ? Effect.map(
          whoami(connection),
          (seen) => connection.boundAs === "" ? seen === "" : seen === `dn:${connection.boundAs}`
        )
        : Effect.succeed(false),
    probe: (endpoint) =>
      Effect.scoped(Effect.flatMap(connect(options, endpoint, undefined), (connection) => Effect.asVoid(whoami(connection)))),
    classify,
    isBroken
  }
}
