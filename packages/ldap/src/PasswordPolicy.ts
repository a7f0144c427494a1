/**
 * Password policy on binds (draft-behera-ldap-password-policy, control
 * 1.3.6.1.4.1.42.2.27.8.5.1; OpenLDAP's `ppolicy` overlay): {@link bind}
 * asks for the policy response with the bind and turns it into typed
 * warnings (seconds before the password expires, grace logins left, must
 * change the password now) and typed refusals ({@link LdapPasswordPolicyError}:
 * password expired, account locked, …) — what a login form needs to tell
 * the user.
 *
 * @example
 * ```ts
 * import { LdapSession, PasswordPolicy } from "@tether/ldap"
 * import { Effect, Redacted } from "effect"
 *
 * declare const options: LdapSession.Options
 *
 * const login = (dn: string, password: string) =>
 *   PasswordPolicy.bind(options, dn, Redacted.make(password)).pipe(
 *     Effect.tap((state) =>
 *       state.graceLoginsRemaining !== undefined
 *         ? Effect.log(`password expired: ${state.graceLoginsRemaining} grace logins left`)
 *         : Effect.void
 *     ),
 *     Effect.catchTag("LdapPasswordPolicyError", (e) => Effect.fail(`cannot log in: ${e.reason}`))
 *   )
 * ```
 *
 * @since 0.3.0
 */
import { Identity } from "@tether/core"
import type { Endpoint } from "@tether/core"
import { Data, Effect, Redacted } from "effect"
import { PasswordPolicyControl } from "ldapts"
import { fromUnknown } from "./LdapError.ts"
import type { LdapError } from "./LdapError.ts"
import * as LdapSession from "./LdapSession.ts"

/**
 * The control's OID.
 *
 * @since 0.3.0
 * @category constants
 */
export const OID = "1.3.6.1.4.1.42.2.27.8.5.1"

/**
 * The policy errors of the draft, by name.
 *
 * @since 0.3.0
 * @category models
 */
export type Reason =
  | "passwordExpired"
  | "accountLocked"
  | "changeAfterReset"
  | "passwordModNotAllowed"
  | "mustSupplyOldPassword"
  | "insufficientPasswordQuality"
  | "passwordTooShort"
  | "passwordTooYoung"
  | "passwordInHistory"
  | "unknown"

const REASONS: ReadonlyArray<Reason> = [
  "passwordExpired",
  "accountLocked",
  "changeAfterReset",
  "passwordModNotAllowed",
  "mustSupplyOldPassword",
  "insufficientPasswordQuality",
  "passwordTooShort",
  "passwordTooYoung",
  "passwordInHistory"
]

/**
 * What the policy said about a successful bind. Every field is `undefined`
 * / `false` when the server said nothing (or has no password policy).
 *
 * @since 0.3.0
 * @category models
 */
export interface BindState {
  readonly endpoint: string
  /** The password expires in this many seconds (inside the server's warning window). */
  readonly secondsBeforeExpiration: number | undefined
  /** The password has expired; this many more binds are allowed with it. */
  readonly graceLoginsRemaining: number | undefined
  /** The password was reset by an administrator: the server allows nothing but changing it. */
  readonly mustChangePassword: boolean
  /** Whether the server sent a password policy response at all. */
  readonly policyResponse: boolean
}

/**
 * The server refused the bind for a password-policy reason (its policy
 * response named it): the password expired with no grace logins left, the
 * account is locked, …
 *
 * @since 0.3.0
 * @category errors
 */
export class LdapPasswordPolicyError extends Data.TaggedError("LdapPasswordPolicyError")<{
  readonly endpoint: string
  readonly dn: string
  readonly reason: Reason
  /** The draft's error number. */
  readonly code: number
  readonly resultCode: number | undefined
}> {
  override get message() {
    const what: Record<Reason, string> = {
      passwordExpired: "the password has expired (no grace logins left); an administrator must reset it",
      accountLocked: "the account is locked after too many failed binds; wait for the lockout to end or ask an administrator",
      changeAfterReset: "the password was reset and must be changed first",
      passwordModNotAllowed: "the password may not be changed",
      mustSupplyOldPassword: "the old password must be given",
      insufficientPasswordQuality: "the new password does not meet the quality rules",
      passwordTooShort: "the new password is too short",
      passwordTooYoung: "the password was changed too recently to change it again",
      passwordInHistory: "the new password was used before",
      unknown: "a password policy error the draft does not name"
    }
    return `LDAP server ${this.endpoint} refused "${this.dn}": ${what[this.reason]} (password policy error ${this.code}).`
  }
}

/**
 * The reason for a draft error number.
 *
 * @since 0.3.0
 * @category models
 */
export const reasonOf = (code: number): Reason => REASONS[code] ?? "unknown"

/**
 * Binds `dn` with `password` on a fresh session (the first reachable
 * endpoint of `options`), asking for the password policy response, then
 * closes it. A refused bind whose policy response names an error fails with
 * {@link LdapPasswordPolicyError}; any other refusal with the usual
 * `LdapInvalidCredentials`. The password is never logged or put in an error.
 *
 * @since 0.3.0
 * @category operations
 */
export const bind = (
  options: LdapSession.Options,
  dn: string,
  password: Redacted.Redacted<string>
): Effect.Effect<BindState, LdapError | LdapPasswordPolicyError | Endpoint.InvalidEndpoint> =>
  Effect.scoped(Effect.gen(function*() {
    // Connect anonymously, then bind with the control on that connection.
    const session = yield* LdapSession.open({ ...options, bindDn: undefined, password: undefined }, Identity.anonymous)
    const control = new PasswordPolicyControl()
    const outcome = yield* Effect.result(Effect.tryPromise({
      try: () => session.connection.client.bind(dn, Redacted.value(password), control),
      catch: (cause) => cause
    }))
    const value = control.value
    if (outcome._tag === "Failure") {
      const resultCode = typeof (outcome.failure as { code?: unknown })?.code === "number"
        ? (outcome.failure as { code: number }).code
        : undefined
      if (value?.error !== undefined && resultCode !== undefined) {
        return yield* Effect.fail(
          new LdapPasswordPolicyError({ endpoint: session.endpoint, dn, reason: reasonOf(value.error), code: value.error, resultCode })
        )
      }
      return yield* Effect.fail(fromUnknown(outcome.failure, { endpoint: session.endpoint, operation: "bind", dn }))
    }
    session.connection.boundAs = dn
    return {
      endpoint: session.endpoint,
      secondsBeforeExpiration: value?.timeBeforeExpiration,
      graceLoginsRemaining: value?.graceAuthNsRemaining,
      mustChangePassword: value?.error === 2,
      policyResponse: value !== undefined
    }
  }))
