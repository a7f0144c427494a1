/**
 * Directory introspection: what a server says about itself in its root DSE
 * (RFC 4512 5.1: naming contexts, supported controls, extended operations,
 * features, SASL mechanisms, vendor) and its subschema (attribute types with
 * their syntaxes, object classes) — read once per endpoint and cached — and
 * a typed refusal, {@link LdapUnsupported}, for a feature the server does
 * not advertise.
 *
 * @example
 * ```ts
 * import { LdapSession, RootDse } from "@tether/ldap"
 * import { Effect } from "effect"
 *
 * const directories = RootDse.makeCache()
 * const program = Effect.scoped(Effect.gen(function*() {
 *   const session = yield* LdapSession.open({ endpoints: ["ldap://ldap1:389"] })
 *   const { rootDse } = yield* directories.get(session)
 *   yield* RootDse.require(rootDse, "passwordModify") // LdapUnsupported when not advertised
 *   return rootDse.namingContexts
 * }))
 * ```
 *
 * @since 0.3.0
 */
import { Data, Effect } from "effect"
import * as internal from "./internal/rootDse.ts"
import * as LdapDriver from "./LdapDriver.ts"
import type { LdapError } from "./LdapError.ts"
import type { Session } from "./LdapSession.ts"

/**
 * The root DSE. Lists are as the server sent them (OIDs for controls,
 * extensions and features).
 *
 * @since 0.3.0
 * @category models
 */
export interface RootDse {
  readonly endpoint: string
  readonly namingContexts: ReadonlyArray<string>
  readonly supportedControls: ReadonlyArray<string>
  readonly supportedExtensions: ReadonlyArray<string>
  readonly supportedFeatures: ReadonlyArray<string>
  readonly supportedSaslMechanisms: ReadonlyArray<string>
  readonly supportedLdapVersions: ReadonlyArray<string>
  readonly subschemaSubentry: string | undefined
  readonly vendorName: string | undefined
  readonly vendorVersion: string | undefined
}

/**
 * An attribute type of the subschema. `oid` is its numeric OID, `syntax`
 * the syntax OID (its own or inherited through `sup`).
 *
 * @since 0.3.0
 * @category models
 */
export interface AttributeType {
  readonly oid: string
  readonly names: ReadonlyArray<string>
  readonly sup: string | undefined
  readonly syntax: string | undefined
  readonly singleValue: boolean
}

/**
 * An object class of the subschema.
 *
 * @since 0.3.0
 * @category models
 */
export interface ObjectClass {
  readonly oid: string
  readonly names: ReadonlyArray<string>
  readonly sup: ReadonlyArray<string>
  readonly kind: "abstract" | "structural" | "auxiliary"
  readonly must: ReadonlyArray<string>
  readonly may: ReadonlyArray<string>
}

/**
 * The subschema, keyed by every lower-case name and OID.
 *
 * @since 0.3.0
 * @category models
 */
export interface Subschema {
  readonly attributeTypes: ReadonlyMap<string, AttributeType>
  readonly objectClasses: ReadonlyMap<string, ObjectClass>
}

/**
 * What one endpoint says about itself. `subschema` is `undefined` when the
 * server names none or it was not asked for.
 *
 * @since 0.3.0
 * @category models
 */
export interface Directory {
  readonly rootDse: RootDse
  readonly subschema: Subschema | undefined
}

/**
 * Features Tether can check for, with the OID the root DSE advertises and
 * where (`supportedControl` or `supportedExtension`).
 *
 * @since 0.3.0
 * @category models
 */
export const FEATURES = {
  passwordModify: { oid: "1.3.6.1.4.1.4203.1.11.1", in: "extension", rfc: "RFC 3062" },
  whoAmI: { oid: "1.3.6.1.4.1.4203.1.11.3", in: "extension", rfc: "RFC 4532" },
  startTls: { oid: "1.3.6.1.4.1.1466.20037", in: "extension", rfc: "RFC 4511" },
  cancel: { oid: "1.3.6.1.1.8", in: "extension", rfc: "RFC 3909" },
  pagedResults: { oid: "1.2.840.113556.1.4.319", in: "control", rfc: "RFC 2696" },
  serverSideSort: { oid: "1.2.840.113556.1.4.473", in: "control", rfc: "RFC 2891" },
  virtualListView: { oid: "2.16.840.1.113730.3.4.9", in: "control", rfc: "draft-ietf-ldapext-ldapv3-vlv" },
  treeDelete: { oid: "1.2.840.113556.1.4.805", in: "control", rfc: "draft-armijo-ldap-treedelete" },
  persistentSearch: { oid: "2.16.840.1.113730.3.4.3", in: "control", rfc: "draft-ietf-ldapext-psearch" },
  syncrepl: { oid: "1.3.6.1.4.1.4203.1.9.1.1", in: "control", rfc: "RFC 4533" },
  passwordPolicy: { oid: "1.3.6.1.4.1.42.2.27.8.5.1", in: "control", rfc: "draft-behera-ldap-password-policy" },
  proxiedAuthorization: { oid: "2.16.840.1.113730.3.4.18", in: "control", rfc: "RFC 4370" },
  manageDsaIT: { oid: "2.16.840.1.113730.3.4.2", in: "control", rfc: "RFC 3296" },
  assertion: { oid: "1.3.6.1.1.12", in: "control", rfc: "RFC 4528" },
  preRead: { oid: "1.3.6.1.1.13.1", in: "control", rfc: "RFC 4527" },
  postRead: { oid: "1.3.6.1.1.13.2", in: "control", rfc: "RFC 4527" }
} as const

/**
 * A feature name of {@link FEATURES}.
 *
 * @since 0.3.0
 * @category models
 */
export type Feature = keyof typeof FEATURES

/**
 * The server does not advertise a feature (control or extended operation)
 * in its root DSE, so Tether did not send the request.
 *
 * @since 0.3.0
 * @category errors
 */
export class LdapUnsupported extends Data.TaggedError("LdapUnsupported")<{
  readonly feature: string
  readonly oid: string
  readonly endpoint: string
}> {
  override get message() {
    return `LDAP server ${this.endpoint} does not support ${this.feature} (${this.oid} is not in its root DSE). ` +
      `Enable it on the server (an overlay or module), or use a server that has it.`
  }
}

/**
 * Whether the root DSE advertises the feature.
 *
 * @since 0.3.0
 * @category checks
 */
export const supports = (rootDse: RootDse, feature: Feature): boolean => {
  const f = FEATURES[feature]
  return (f.in === "control" ? rootDse.supportedControls : rootDse.supportedExtensions).includes(f.oid)
}

/**
 * Succeeds when the root DSE advertises the feature, else fails with {@link LdapUnsupported}.
 *
 * @since 0.3.0
 * @category checks
 */
export const require = (rootDse: RootDse, feature: Feature): Effect.Effect<void, LdapUnsupported> =>
  supports(rootDse, feature)
    ? Effect.void
    : Effect.fail(new LdapUnsupported({ feature, oid: FEATURES[feature].oid, endpoint: rootDse.endpoint }))

/**
 * The syntax OID of an attribute (by any of its names or its OID, any case), if the schema knows it.
 *
 * @since 0.3.0
 * @category checks
 */
export const syntaxOf = (subschema: Subschema, attribute: string): string | undefined =>
  subschema.attributeTypes.get(attribute.split(";")[0]!.toLowerCase())?.syntax

/**
 * Reads what the session's endpoint says about itself (the subschema too,
 * unless `schema: false`), with no caching.
 *
 * @since 0.3.0
 * @category reading
 */
export const read = (session: Session, options?: { readonly schema?: boolean | undefined }): Effect.Effect<Directory, LdapError> =>
  LdapDriver.attempt(session.connection, "search", (client) => internal.read(client, session.endpoint, options?.schema ?? true))

/**
 * A per-endpoint cache of {@link read}.
 *
 * @since 0.3.0
 * @category models
 */
export interface Cache {
  /** The endpoint's directory, read on the first call for that endpoint (a failed read is not cached). */
  readonly get: (session: Session) => Effect.Effect<Directory, LdapError>
  /** Forgets an endpoint (after a server upgrade), or every endpoint. */
  readonly invalidate: (endpoint?: string) => Effect.Effect<void>
}

/**
 * Makes a cache: each endpoint is read once, concurrent first calls share one read.
 *
 * @since 0.3.0
 * @category constructors
 */
export const makeCache = (options?: { readonly schema?: boolean | undefined }): Cache => {
  const known = new Map<string, Promise<Directory>>()
  return {
    get: (session) =>
      Effect.suspend(() => {
        let pending = known.get(session.endpoint)
        if (pending === undefined) {
          pending = Effect.runPromise(Effect.result(read(session, options))).then((r) => {
            if (r._tag === "Success") return r.success
            known.delete(session.endpoint)
            throw r.failure
          })
          known.set(session.endpoint, pending)
        }
        const shared = pending
        return Effect.tryPromise({ try: () => shared, catch: (e) => e as LdapError })
      }),
    invalidate: (endpoint) =>
      Effect.sync(() => {
        if (endpoint === undefined) known.clear()
        else known.delete(endpoint)
      })
  }
}
