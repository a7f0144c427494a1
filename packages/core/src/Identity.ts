/**
 * Identities as types. An identity is a `Context` service whose value is a
 * principal (an LDAP DN, a PostgreSQL role) and a `Redacted` secret. An
 * effect that runs as an identity has that identity's service in its `R`,
 * so forgetting to provide it is a compile error; at run time the pool hands
 * it a connection bound as that identity, and never one bound as anybody
 * else.
 *
 * @example
 * ```ts
 * import { Identity, ServerSet } from "@tether/core"
 * import { Effect, Redacted } from "effect"
 *
 * interface Client { readonly url: string }
 * declare const directory: ServerSet.ServerSet<Client, Error>
 * declare const search: (client: Client, base: string) => Effect.Effect<ReadonlyArray<string>, Error>
 *
 * // Declare identities once.
 * class ServiceAccount extends Identity.Service<ServiceAccount>()("app/ServiceAccount") {}
 * class EndUser extends Identity.Service<EndUser>()("app/EndUser") {}
 *
 * // Effect<Entries, …, EndUser>: it cannot run until an EndUser is provided.
 * const myEntries = directory.as(EndUser).use((client) => search(client, "ou=people,dc=example,dc=com"))
 *
 * // Per request: bind the logged-in user's credentials.
 * const handler = (user: string, password: string) =>
 *   myEntries.pipe(
 *     Effect.provideService(EndUser, Identity.make(`uid=${user},ou=people,dc=example,dc=com`, Redacted.make(password)))
 *   )
 * ```
 *
 * @since 0.1.0
 */
import type { Redacted } from "effect"
import { Context } from "effect"
import { digestOf } from "./internal/identityDigest.ts"

/**
 * Who a connection is bound as. The secret is `Redacted`: it prints as
 * `<redacted>` in logs, errors and spans.
 *
 * @since 0.1.0
 * @category models
 */
export interface Credentials {
  /** The principal: an LDAP bind DN, a PostgreSQL role. Not secret, but not shown in metrics unless it is the label. */
  readonly principal: string
  /** The secret, or `undefined` for an anonymous identity. */
  readonly secret: Redacted.Redacted<string> | undefined
  /** A non-secret label for metrics and status (default `"user"`; never the secret). */
  readonly label: string
}

/**
 * Makes credentials.
 *
 * @example
 * ```ts
 * import { Identity } from "@tether/core"
 * import { Redacted } from "effect"
 *
 * const admin = Identity.make("cn=admin,dc=example,dc=com", Redacted.make("s3cret"), { label: "admin" })
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (
  principal: string,
  secret: Redacted.Redacted<string>,
  options?: { readonly label?: string | undefined }
): Credentials => ({ principal, secret, label: options?.label ?? "user" })

/**
 * The anonymous identity, for directories that allow anonymous binds.
 *
 * @since 0.1.0
 * @category constructors
 */
export const anonymous: Credentials = { principal: "", secret: undefined, label: "anonymous" }

/**
 * Declares an identity: a `Context` service holding {@link Credentials}.
 *
 * @example
 * ```ts
 * import { Identity } from "@tether/core"
 *
 * class Admin extends Identity.Service<Admin>()("app/Admin") {}
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const Service = <Self>() => <const Key extends string>(key: Key): Context.ServiceClass<Self, Key, Credentials> =>
  Context.Service<Self, Credentials>()(key)

/**
 * A keyed digest of credentials (HMAC-SHA-256 with a random per-process
 * key): what pools key connections by, so that the plain secret is never a
 * map key and two credentials for the same principal with different secrets
 * never share a connection. Cached per credentials object.
 *
 * @since 0.1.0
 * @category utils
 */
export const digest = (credentials: Credentials): string => digestOf(credentials)
