/**
 * Password changes with the Password Modify extended operation (RFC 3062,
 * OID 1.3.6.1.4.1.4203.1.11.1): the server applies its own hashing and
 * password policy (a plain `replace userPassword` does neither), can check
 * the old password, and can generate the new one.
 *
 * **A user changes their own password** with {@link changeOwnPassword}: it
 * binds as the user with the current password (an unpooled session), sends
 * old and new password, and returns the user's new credentials. Provide
 * those for the identity from then on: pools key connections by a digest of
 * the credentials, so no connection bound with the old secret is ever
 * handed out for the new one (the old ones idle out).
 *
 * @example
 * ```ts
 * import { Identity } from "@tether/core"
 * import { LdapSession, PasswordModify } from "@tether/ldap"
 * import { Effect, Redacted } from "effect"
 *
 * declare const options: LdapSession.Options
 * declare const current: Identity.Credentials
 *
 * const program = Effect.gen(function*() {
 *   const updated = yield* PasswordModify.changeOwnPassword(options, current, Redacted.make("n3w-Secret!"))
 *   return updated // provide it for the user's identity from now on
 * })
 * ```
 *
 * @since 0.3.0
 */
import type { Endpoint, Identity } from "@tether/core"
import { Effect, Option, Redacted } from "effect"
import * as internal from "./internal/passwordModify.ts"
import type { LdapClientError, Operations } from "./LdapClient.ts"
import * as LdapDriver from "./LdapDriver.ts"
import { LdapOperationError } from "./LdapError.ts"
import type { LdapError } from "./LdapError.ts"
import * as LdapSession from "./LdapSession.ts"
import * as RootDse from "./RootDse.ts"

/**
 * The operation's OID.
 *
 * @since 0.3.0
 * @category constants
 */
export const OID: string = internal.OID

/**
 * A Password Modify request. Every field is optional: no `user` means the
 * bound user; no `newPassword` asks the server to generate one.
 *
 * @since 0.3.0
 * @category models
 */
export interface Request {
  /** The user whose password changes (a DN, or `u:`/`dn:` authzId); default the bound user. */
  readonly user?: string | undefined
  readonly oldPassword?: Redacted.Redacted<string> | undefined
  readonly newPassword?: Redacted.Redacted<string> | undefined
}

/**
 * Sends a Password Modify request on a session, after checking that the
 * server advertises it (`directories`: the per-endpoint cache to check with;
 * a fresh read without it). Returns the password the server generated, when
 * it generated one. A wrong old password fails with the server's
 * `LdapOperationError` (OpenLDAP: result code 53 unwilling, or 49).
 *
 * @since 0.3.0
 * @category operations
 */
export const modify = (
  session: LdapSession.Session,
  request: Request,
  directories?: RootDse.Cache
): Effect.Effect<Option.Option<Redacted.Redacted<string>>, LdapError | RootDse.LdapUnsupported> =>
  Effect.gen(function*() {
    const { rootDse } = yield* (directories === undefined ? RootDse.read(session, { schema: false }) : directories.get(session))
    yield* RootDse.require(rootDse, "passwordModify")
    const value = internal.encodeRequest({
      userIdentity: request.user,
      oldPassword: request.oldPassword === undefined ? undefined : Redacted.value(request.oldPassword),
      newPassword: request.newPassword === undefined ? undefined : Redacted.value(request.newPassword)
    })
    const response = yield* LdapDriver.attempt(
      session.connection,
      "passwordModify",
      (client) => client.exop(internal.OID, Buffer.from(value))
    )
    const malformed = (reason: string) =>
      new LdapOperationError({ endpoint: session.endpoint, operation: "passwordModify", kind: "other", resultCode: undefined, reason })
    const bytes = internal.responseBytesFromText(response.value)
    if (bytes === undefined) {
      return yield* Effect.fail(malformed("the password was changed, but the server's response value could not be read losslessly"))
    }
    const decoded = internal.decodeResponse(bytes)
    if ("malformed" in decoded) {
      return yield* Effect.fail(malformed(`the password was changed, but ${decoded.malformed}`))
    }
    return decoded.generated === undefined ? Option.none() : Option.some(Redacted.make(decoded.generated))
  })

/**
 * A user changes their own password: binds as `identity` with its current
 * secret (on the first reachable endpoint), sends the old and new password,
 * and returns the new credentials (same principal and label). A wrong
 * current password fails with `LdapInvalidCredentials` before anything is
 * changed.
 *
 * @since 0.3.0
 * @category operations
 */
export const changeOwnPassword = (
  options: LdapSession.Options,
  identity: Identity.Credentials,
  newPassword: Redacted.Redacted<string>,
  directories?: RootDse.Cache
): Effect.Effect<Identity.Credentials, LdapError | RootDse.LdapUnsupported | Endpoint.InvalidEndpoint> =>
  Effect.scoped(Effect.gen(function*() {
    const session = yield* LdapSession.open(options, identity)
    yield* modify(session, { oldPassword: identity.secret, newPassword }, directories)
    return { principal: identity.principal, secret: newPassword, label: identity.label }
  }))

/**
 * The BER value of a Password Modify request, for `exop`.
 *
 * @since 0.3.0
 * @category operations
 */
export const exopValue = (request: Request): Uint8Array =>
  internal.encodeRequest({
    userIdentity: request.user,
    oldPassword: request.oldPassword === undefined ? undefined : Redacted.value(request.oldPassword),
    newPassword: request.newPassword === undefined ? undefined : Redacted.value(request.newPassword)
  })

/**
 * Sends a Password Modify request through the pooled client (or
 * `LdapClientMemory`), as its default identity or `ldap.as(Key)`: an
 * administrator's reset, or a user's own change. Given the client itself
 * (which has `rootDse`), it first checks the server advertises the
 * operation. After a user's own change, provide the new credentials for
 * the identity (see {@link changeOwnPassword}).
 *
 * @example
 * ```ts
 * import { LdapClient, PasswordModify } from "@tether/ldap"
 * import { Effect } from "effect"
 *
 * // An administrator's reset: the server generates the new password.
 * const reset = (dn: string) =>
 *   Effect.gen(function*() {
 *     const ldap = yield* LdapClient.LdapClient
 *     return yield* PasswordModify.modifyWith(ldap, { user: dn })
 *   })
 * ```
 *
 * @since 0.3.0
 * @category operations
 */
export const modifyWith = <R>(
  ldap: Operations<R> & { readonly rootDse?: Effect.Effect<RootDse.RootDse, LdapClientError> | undefined },
  request: Request
): Effect.Effect<Option.Option<Redacted.Redacted<string>>, LdapClientError | RootDse.LdapUnsupported, R> =>
  Effect.gen(function*() {
    if (ldap.rootDse !== undefined) yield* RootDse.require(yield* ldap.rootDse, "passwordModify")
    const response = yield* ldap.exop(internal.OID, exopValue(request))
    const bytes = internal.responseBytesFromText(response.value)
    const decoded = bytes === undefined ? { malformed: "its response value could not be read losslessly" } : internal.decodeResponse(bytes)
    if ("malformed" in decoded) {
      return yield* Effect.fail(
        new LdapOperationError({
          endpoint: "(pool)",
          operation: "passwordModify",
          kind: "other",
          resultCode: undefined,
          reason: `the password was changed, but ${decoded.malformed}`
        })
      )
    }
    return decoded.generated === undefined ? Option.none() : Option.some(Redacted.make(decoded.generated))
  })
