/**
 * @tether/ldap — LDAP on ldapts through Tether: pooled connections bound per
 * identity, failover, breakers, typed errors, streaming paged search, bulk
 * operations, safe filters and DNs.
 *
 * @since 0.1.0
 */

/** The client service: search streams, CRUD, bulk operations. */
export * as LdapClient from "./LdapClient.ts"

/** The `@tether/core` driver: one ldapts client per pooled item, bound per identity, re-bindable. */
export * as LdapDriver from "./LdapDriver.ts"

/** Typed errors from LDAP result codes, and their classification. */
export * as LdapError from "./LdapError.ts"

/** Filters with escaped values (RFC 4515). */
export * as Filter from "./Filter.ts"

/** Distinguished names with escaped values (RFC 4514). */
export * as Dn from "./Dn.ts"

/** Configuration as an effect/Schema and from the environment; TLS files read at load. */
export * as LdapConfig from "./LdapConfig.ts"

/** LDIF (RFC 2849, RFC 4525 increment): byte-exact streaming parser and writer, typed errors with line numbers. */
export * as Ldif from "./Ldif.ts"

/** An in-memory LdapClient for unit tests, with the real client's typed errors. */
export * as LdapClientMemory from "./LdapClientMemory.ts"

/** One unpooled connection bound as an identity, to the first reachable endpoint (introspection, password operations, change streams). */
export * as LdapSession from "./LdapSession.ts"

/** Directory introspection: root DSE and subschema per endpoint, cached; `LdapUnsupported` for what a server lacks. */
export * as RootDse from "./RootDse.ts"

/** searchOne (LdapNotFound / LdapNotUnique), exists, deleteTree. */
export * as Entries from "./Entries.ts"

/** A typed builder of modify changes. */
export * as Changes from "./Changes.ts"

/** The Password Modify extended operation (RFC 3062) and the "user changes own password" flow. */
export * as PasswordModify from "./PasswordModify.ts"

/** Password policy on binds (draft-behera): typed warnings (expiry, grace logins) and refusals (expired, locked). */
export * as PasswordPolicy from "./PasswordPolicy.ts"

/** Change streams (RFC 4533 syncrepl refreshAndPersist) as an Effect Stream of typed events, resuming on failover. */
export * as ChangeStream from "./ChangeStream.ts"

/** ldapts request controls for `LdapSession` operations (pooled operations: `RequestControl`): assertion, proxied authorization, ManageDsaIT, pre/post-read, server-side sort. */
export * as Controls from "./Controls.ts"

/** Request controls for pooled operations (`ldap.withControls`) and their typed responses: sort, VLV, proxied authorization, assertion, pre/post-read, … */
export * as RequestControl from "./RequestControl.ts"

/** SASL credentials (PLAIN, SCRAM-SHA-1/256, EXTERNAL) for the service identity and identities of pooled connections. */
export * as Sasl from "./Sasl.ts"
