/**
 * SASL binds (RFC 4422) for pooled connections: the service identity
 * (`LdapClient` option `sasl`) or an `Identity` whose credentials are made
 * here. The credentials say which mechanism; their principal names it
 * (`sasl:SCRAM-SHA-256:ann`), so pools never hand a connection bound one way
 * to an identity bound another.
 *
 * - `PLAIN` (RFC 4616): user name and password, sent as they are — use TLS;
 * - `SCRAM-SHA-1` / `SCRAM-SHA-256` (RFC 5802 / 7677): the password never
 *   crosses the wire, and the server proves it knows it too. ldapts sends
 *   only one-step SASL binds, so Tether runs the exchange itself (the
 *   password is NFKC-normalised, SASLprep's common case; no channel binding);
 * - `EXTERNAL` (RFC 4422 appendix A): the TLS client certificate of the
 *   client's `tls` options is the identity.
 *
 * The server maps the SASL user name to an entry (OpenLDAP: `authz-regexp`);
 * connections then know whom they are bound as from "Who am I?". A
 * mechanism the server does not offer or allow is refused with
 * `LdapInvalidCredentials` (result code 7, auth method not supported, or
 * 48, inappropriate authentication — OpenLDAP's default `sasl-secprops
 * noplain` refuses PLAIN so). Which mechanisms a server offers is in its
 * root DSE (`ldap.rootDse`, `supportedSaslMechanisms`); the type does not
 * know the servers, so this is checked at bind time.
 *
 * @example
 * ```ts
 * import { Identity } from "@tether/core"
 * import { LdapClient, Sasl } from "@tether/ldap"
 * import { Effect, Layer, Redacted } from "effect"
 *
 * class Ann extends Identity.Service<Ann>()("Ann") {}
 *
 * const Live = LdapClient.layer({
 *   endpoints: ["ldaps://ldap1:636"],
 *   sasl: Sasl.credentials("SCRAM-SHA-256", "app", Redacted.make("secret"))
 * })
 * const AnnLive = Layer.succeed(Ann, Sasl.credentials("SCRAM-SHA-256", "ann", Redacted.make("ann-secret")))
 * const program = Effect.gen(function*() {
 *   const ldap = yield* LdapClient.LdapClient
 *   return yield* ldap.as(Ann).whoami // "dn:uid=ann,…"
 * }).pipe(Effect.provide(Layer.merge(Live, AnnLive)))
 * ```
 *
 * @since 0.3.0
 */
import type { Identity } from "@tether/core"
import type { Redacted } from "effect"

/**
 * The mechanisms Tether binds with.
 *
 * @since 0.3.0
 * @category models
 */
export type Mechanism = "PLAIN" | "SCRAM-SHA-1" | "SCRAM-SHA-256" | "EXTERNAL"

/**
 * Credentials bound with a SASL mechanism: `Identity.Credentials` (usable
 * wherever an identity is) plus the mechanism and user name.
 *
 * @since 0.3.0
 * @category models
 */
export interface Credentials<M extends Mechanism = Mechanism> extends Identity.Credentials {
  readonly sasl: {
    readonly mechanism: M
    /** The SASL user name (authentication identity), e.g. `ann`. `""` for EXTERNAL. */
    readonly user: string
    /** Act as this authorization identity (`dn:…`, `u:…`) after authenticating, if the server allows it. */
    readonly authzId: string | undefined
  }
}

/**
 * Credentials for a password mechanism (`PLAIN`, `SCRAM-SHA-1`, `SCRAM-SHA-256`).
 *
 * @since 0.3.0
 * @category constructors
 */
export const credentials = <M extends Exclude<Mechanism, "EXTERNAL">>(
  mechanism: M,
  user: string,
  password: Redacted.Redacted<string>,
  options?: { readonly authzId?: string | undefined; readonly label?: string | undefined }
): Credentials<M> => ({
  principal: `sasl:${mechanism}:${user}${options?.authzId === undefined ? "" : `;${options.authzId}`}`,
  secret: password,
  label: options?.label ?? "user",
  sasl: { mechanism, user, authzId: options?.authzId }
})

/**
 * Credentials for SASL EXTERNAL: the TLS client certificate is the identity.
 *
 * @since 0.3.0
 * @category constructors
 */
export const external = (
  options?: { readonly authzId?: string | undefined; readonly label?: string | undefined }
): Credentials<"EXTERNAL"> => ({
  principal: `sasl:EXTERNAL:${options?.authzId ?? ""}`,
  secret: undefined,
  label: options?.label ?? "external",
  sasl: { mechanism: "EXTERNAL", user: "", authzId: options?.authzId }
})

const MECHANISMS: ReadonlySet<string> = new Set(["PLAIN", "SCRAM-SHA-1", "SCRAM-SHA-256", "EXTERNAL"])

/**
 * Whether credentials bind with SASL.
 *
 * @since 0.3.0
 * @category guards
 */
export const isSasl = (credentials: Identity.Credentials): credentials is Credentials => {
  const sasl = (credentials as { readonly sasl?: unknown }).sasl
  return typeof sasl === "object" && sasl !== null && MECHANISMS.has((sasl as { mechanism?: unknown }).mechanism as string)
}
