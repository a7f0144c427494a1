/**
 * Request controls for the pooled client's operations, as plain values
 * (`ldap.withControls([...])`), and the typed response controls the
 * operations return. Each control is checked against the root DSE of the
 * server the operation lands on (read once per endpoint): one it does not
 * advertise fails with `LdapUnsupported` before anything is sent.
 *
 * | control | on | response |
 * | --- | --- | --- |
 * | `sort` (RFC 2891) | search | `sort.resultCode` |
 * | `virtualListView` (draft-ietf-ldapext-ldapv3-vlv; needs `sort`) | search | `virtualListView` |
 * | `proxiedAuthorization` (RFC 4370) | any | — (the operation runs as that identity) |
 * | `manageDsaIT` (RFC 3296) | any | — |
 * | `subtreeDelete` (draft-armijo-ldap-treedelete) | delete | — |
 * | `assertion` (RFC 4528) | any | — (else `LdapOperationError` kind `assertion-failed`) |
 * | `preRead` / `postRead` (RFC 4527) | add, modify, delete, modifyDN | `preRead` / `postRead` entries |
 * | `passwordPolicy` (draft-behera) | any (modify of a password) | `passwordPolicy` warnings; refusals as `LdapPasswordPolicyError` |
 *
 * Paged results (RFC 2696) are `SearchOptions.pageSize` (on by default).
 *
 * @example
 * ```ts
 * import { LdapClient, RequestControl } from "@tether/ldap"
 * import { Effect } from "effect"
 *
 * const program = Effect.gen(function*() {
 *   const ldap = yield* LdapClient.LdapClient
 *   // Read-your-write without a second search, only if the entry still has the old mail.
 *   const { postRead } = yield* ldap.withControls([
 *     RequestControl.assertion("(mail=old@example.com)"),
 *     RequestControl.postRead(["mail", "modifyTimestamp"])
 *   ]).modify("uid=ann,dc=example,dc=com", [{ operation: "replace", attribute: "mail", values: ["new@example.com"] }])
 *   // Sorted, as a user the service account may act for.
 *   const sorted = yield* ldap.withControls([
 *     RequestControl.sort([{ attribute: "sn", orderingRule: "caseIgnoreOrderingMatch" }]),
 *     RequestControl.proxiedAuthorization("dn:uid=ann,dc=example,dc=com")
 *   ]).search("dc=example,dc=com", { filter: "(objectClass=person)" })
 *   return [postRead, sorted.entries] as const
 * })
 * ```
 *
 * @since 0.3.0
 */
import type { Entry } from "./LdapClient.ts"
import type { Reason } from "./PasswordPolicy.ts"
import type { SortKey } from "./Controls.ts"
import { FEATURES } from "./RootDse.ts"
import type { Feature } from "./RootDse.ts"

/**
 * A request control.
 *
 * @since 0.3.0
 * @category models
 */
export type RequestControl =
  | { readonly _tag: "Sort"; readonly keys: ReadonlyArray<SortKey>; readonly critical: boolean }
  | {
    readonly _tag: "VirtualListView"
    readonly beforeCount: number
    readonly afterCount: number
    /** 1-based position of the target entry in the sorted list. */
    readonly offset: number
    /** The client's estimate of the list's size (0: none). */
    readonly contentCount: number
  }
  | { readonly _tag: "ProxiedAuthorization"; readonly authzId: string }
  | { readonly _tag: "ManageDsaIT"; readonly critical: boolean }
  | { readonly _tag: "SubtreeDelete" }
  | { readonly _tag: "Assertion"; readonly filter: string }
  | { readonly _tag: "PreRead"; readonly attributes: ReadonlyArray<string> }
  | { readonly _tag: "PostRead"; readonly attributes: ReadonlyArray<string> }
  | { readonly _tag: "PasswordPolicy" }
  | { readonly _tag: "Other"; readonly oid: string; readonly critical: boolean; readonly value: Uint8Array | undefined }

/**
 * Server-side sorting (RFC 2891). A key without an ordering rule uses the
 * attribute's ORDERING rule (OpenLDAP refuses a critical sort on an
 * attribute without one: give `orderingRule: "caseIgnoreOrderingMatch"`).
 *
 * @since 0.3.0
 * @category constructors
 */
export const sort = (keys: ReadonlyArray<SortKey>, options?: { readonly critical?: boolean | undefined }): RequestControl => ({
  _tag: "Sort",
  keys,
  critical: options?.critical ?? true
})

/**
 * Virtual list view by offset: `beforeCount` entries before the `offset`-th
 * (1-based) of the sorted result and `afterCount` after it. Needs `sort`;
 * the search is not paged.
 *
 * @since 0.3.0
 * @category constructors
 */
export const virtualListView = (window: {
  readonly offset: number
  readonly beforeCount?: number | undefined
  readonly afterCount?: number | undefined
  readonly contentCount?: number | undefined
}): RequestControl => ({
  _tag: "VirtualListView",
  offset: window.offset,
  beforeCount: window.beforeCount ?? 0,
  afterCount: window.afterCount ?? 0,
  contentCount: window.contentCount ?? 0
})

/**
 * Proxied authorization (RFC 4370): the operation runs as `authzId`
 * (`dn:…`, `u:…`, or `""` for anonymous) — another way to act as an
 * identity, without its password, when the bound identity may (OpenLDAP:
 * `authzTo` / `authzFrom`).
 *
 * @since 0.3.0
 * @category constructors
 */
export const proxiedAuthorization = (authzId: string): RequestControl => ({ _tag: "ProxiedAuthorization", authzId })

/**
 * ManageDsaIT (RFC 3296): referral objects are entries, not followed.
 *
 * @since 0.3.0
 * @category constructors
 */
export const manageDsaIT = (options?: { readonly critical?: boolean | undefined }): RequestControl => ({
  _tag: "ManageDsaIT",
  critical: options?.critical ?? true
})

/**
 * Subtree delete (draft-armijo-ldap-treedelete): `delete` removes the
 * entry and everything under it. OpenLDAP does not offer it (use
 * `Entries.deleteTree`, which deletes depth-first with a report).
 *
 * @since 0.3.0
 * @category constructors
 */
export const subtreeDelete: RequestControl = { _tag: "SubtreeDelete" }

/**
 * Assertion (RFC 4528): the operation applies only when its entry matches
 * `filter`; else it fails with `LdapOperationError` kind `assertion-failed`.
 * A filter that does not parse fails with kind `invalid-filter`.
 *
 * @since 0.3.0
 * @category constructors
 */
export const assertion = (filter: string): RequestControl => ({ _tag: "Assertion", filter })

/**
 * Pre-read (RFC 4527): the entry's `attributes` as they were before the write.
 *
 * @since 0.3.0
 * @category constructors
 */
export const preRead = (attributes: ReadonlyArray<string>): RequestControl => ({ _tag: "PreRead", attributes })

/**
 * Post-read (RFC 4527): the entry's `attributes` after the write.
 *
 * @since 0.3.0
 * @category constructors
 */
export const postRead = (attributes: ReadonlyArray<string>): RequestControl => ({ _tag: "PostRead", attributes })

/**
 * Password policy (draft-behera): warnings in the response; a refusal the
 * policy names fails with `LdapPasswordPolicyError`.
 *
 * @since 0.3.0
 * @category constructors
 */
export const passwordPolicy: RequestControl = { _tag: "PasswordPolicy" }

/**
 * Any other control, its value given as BER bytes.
 *
 * @since 0.3.0
 * @category constructors
 */
export const other = (oid: string, options?: { readonly critical?: boolean | undefined; readonly value?: Uint8Array | undefined }): RequestControl => ({
  _tag: "Other",
  oid,
  critical: options?.critical ?? false,
  value: options?.value
})

/**
 * What the server said in its response controls. A field is absent when
 * the control was not sent or the server sent no response for it.
 *
 * @since 0.3.0
 * @category models
 */
export interface ResponseControls {
  /** Server-side sort result (RFC 2891): 0 sorted, else why not. */
  readonly sort?: { readonly resultCode: number } | undefined
  /** Where the VLV target landed (1-based) in a list of `contentCount` entries; `resultCode` 0: success. */
  readonly virtualListView?: { readonly targetPosition: number; readonly contentCount: number; readonly resultCode: number } | undefined
  readonly preRead?: Entry | undefined
  readonly postRead?: Entry | undefined
  /** Password-policy warnings (the operation succeeded). */
  readonly passwordPolicy?: {
    readonly secondsBeforeExpiration: number | undefined
    readonly graceLoginsRemaining: number | undefined
    /** A policy state the server reported on success (e.g. `changeAfterReset`). */
    readonly error: Reason | undefined
  } | undefined
}

/**
 * The root DSE feature a control needs, or its OID for `Other`.
 *
 * @since 0.3.0
 * @category models
 */
export const featureOf = (control: RequestControl): { readonly feature: string; readonly oid: string } => {
  const named = (feature: Feature) => ({ feature, oid: FEATURES[feature].oid })
  switch (control._tag) {
    case "Sort":
      return named("serverSideSort")
    case "VirtualListView":
      return named("virtualListView")
    case "ProxiedAuthorization":
      return named("proxiedAuthorization")
    case "ManageDsaIT":
      return named("manageDsaIT")
    case "SubtreeDelete":
      return named("treeDelete")
    case "Assertion":
      return named("assertion")
    case "PreRead":
      return named("preRead")
    case "PostRead":
      return named("postRead")
    case "PasswordPolicy":
      return named("passwordPolicy")
    case "Other":
      return { feature: `control ${control.oid}`, oid: control.oid }
  }
}
