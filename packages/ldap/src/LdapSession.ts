/**
 * `LdapSession`: one unpooled connection, bound as an identity, to the first
 * reachable endpoint of a list (in order). For what a pool must not share:
 * directory introspection per endpoint, password operations as the user
 * whose password changes, binds whose password-policy answer matters, and
 * long-lived change streams. Closing the scope unbinds it.
 *
 * @example
 * ```ts
 * import { LdapSession } from "@tether/ldap"
 * import { Effect, Redacted } from "effect"
 *
 * const program = Effect.scoped(Effect.gen(function*() {
 *   const session = yield* LdapSession.open({
 *     endpoints: ["ldap://ldap1:389", "ldap://ldap2:389"],
 *     bindDn: "cn=app,dc=example,dc=com",
 *     password: Redacted.make("secret")
 *   })
 *   return session.endpoint // the server it reached
 * }))
 * ```
 *
 * @since 0.3.0
 */
import { Endpoint, Identity as Identities } from "@tether/core"
import type { Identity } from "@tether/core"
import { Effect } from "effect"
import type { Scope } from "effect"
import * as LdapDriver from "./LdapDriver.ts"
import type { LdapConnection } from "./LdapDriver.ts"
import { fromUnknown, isBroken, LdapInvalidCredentials } from "./LdapError.ts"
import type { LdapError } from "./LdapError.ts"

/**
 * Options of {@link open}: the driver's options and the endpoints, tried in order.
 *
 * @since 0.3.0
 * @category models
 */
export interface Options extends LdapDriver.Options {
  readonly endpoints: ReadonlyArray<Endpoint.EndpointInput | string>
}

/**
 * An open session: the connection and the endpoint it reached.
 *
 * @since 0.3.0
 * @category models
 */
export interface Session {
  readonly connection: LdapConnection
  readonly endpoint: string
}

/**
 * Opens a connection bound as `identity` (default: the options' `bindDn`)
 * to the first endpoint that answers. A connection failure moves on to the
 * next endpoint; a refused bind (wrong password, locked account) does not —
 * it is the answer, and is returned at once. With every endpoint down, the
 * last connection error. `skip`: endpoints to try last (after a failure there).
 *
 * @since 0.3.0
 * @category constructors
 */
export const open = (
  options: Options,
  identity?: Identity.Credentials,
  skip?: ReadonlySet<string>
): Effect.Effect<Session, LdapError | Endpoint.InvalidEndpoint, Scope.Scope> =>
  Effect.gen(function*() {
    const endpoints = yield* Endpoint.decodeAll(options.endpoints)
    const order = skip === undefined || endpoints.every((e) => skip.has(e.url))
      ? endpoints
      : [...endpoints.filter((e) => !skip.has(e.url)), ...endpoints.filter((e) => skip.has(e.url))]
    let last: LdapError | undefined
    for (const endpoint of order) {
      const result = yield* Effect.result(LdapDriver.connect(options, endpoint, identity))
      if (result._tag === "Success") return { connection: result.success, endpoint: endpoint.url }
      if (!isBroken(result.failure)) return yield* Effect.fail(result.failure)
      last = result.failure
    }
    return yield* Effect.fail(last!)
  })

/**
 * Opens a session authenticated with SASL EXTERNAL (RFC 4422): the
 * identity is the TLS client certificate (give `tls: { cert, key }` with an
 * `ldaps://` endpoint or `startTls`), mapped to an entry by the server.
 * `authorizedAs` is whom the server then sees (`dn:…`). Without a
 * certificate the server accepts, the bind fails with
 * `LdapInvalidCredentials` (result code 7: no EXTERNAL identity; or 48/49).
 *
 * @since 0.3.0
 * @category constructors
 */
export const openExternal = (
  options: Options
): Effect.Effect<Session & { readonly authorizedAs: string }, LdapError | Endpoint.InvalidEndpoint, Scope.Scope> =>
  Effect.gen(function*() {
    const session = yield* open({ ...options, bindDn: undefined, password: undefined }, Identities.anonymous)
    yield* LdapDriver.attempt(session.connection, "bind", (client) => client.bindSASL("EXTERNAL"), "(SASL EXTERNAL)").pipe(
      Effect.mapError((e) => fromUnknown(e, { endpoint: session.endpoint, operation: "bind", dn: "(SASL EXTERNAL)" })),
      // 7 (auth method not supported): no client certificate was presented, or none the server accepts.
      Effect.mapError((e) =>
        e._tag === "LdapOperationError" && e.resultCode === 7
          ? new LdapInvalidCredentials({ endpoint: e.endpoint, dn: "(SASL EXTERNAL)", resultCode: 7 })
          : e
      )
    )
    const authorizedAs = yield* LdapDriver.whoami(session.connection)
    session.connection.boundAs = authorizedAs.startsWith("dn:") ? authorizedAs.slice(3) : authorizedAs
    return { ...session, authorizedAs }
  })
