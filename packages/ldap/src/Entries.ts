/**
 * What UnboundID users reach for beyond plain search: exactly one entry
 * (`searchOne`), `exists`, and deleting a whole subtree (`deleteTree`). Each
 * works with the pooled client as the default identity or any identity
 * (`ldap.as(Key)`), and with `LdapClientMemory`.
 *
 * @example
 * ```ts
 * import { Entries, Filter, LdapClient } from "@tether/ldap"
 * import { Effect } from "effect"
 *
 * const program = Effect.gen(function*() {
 *   const ldap = yield* LdapClient.LdapClient
 *   const ann = yield* Entries.searchOne(ldap, "ou=people,dc=example,dc=com", { filter: Filter.filter`(uid=${"ann"})` })
 *   const report = yield* Entries.deleteTree(ldap, "ou=temp,dc=example,dc=com")
 *   return [ann.dn, report.deleted] as const
 * })
 * ```
 *
 * @since 0.3.0
 */
import { Data, Effect, Option } from "effect"
import type { Entry, LdapClientError, Operations, SearchOptions } from "./LdapClient.ts"

/**
 * `searchOne` found no entry.
 *
 * @since 0.3.0
 * @category errors
 */
export class LdapNotFound extends Data.TaggedError("LdapNotFound")<{
  readonly base: string
  readonly filter: string
}> {
  override get message() {
    return `No entry under "${this.base}" matches ${this.filter}. Check the filter and the base DN.`
  }
}

/**
 * `searchOne` found more than one entry.
 *
 * @since 0.3.0
 * @category errors
 */
export class LdapNotUnique extends Data.TaggedError("LdapNotUnique")<{
  readonly base: string
  readonly filter: string
  /** The DNs of the first two matches. */
  readonly dns: ReadonlyArray<string>
}> {
  override get message() {
    return `More than one entry under "${this.base}" matches ${this.filter} (${this.dns.join("; ")}, …). ` +
      `Narrow the filter (an attribute that is unique, such as uid) or the base.`
  }
}

/**
 * The one entry matching the search: fails with {@link LdapNotFound} when
 * there is none, {@link LdapNotUnique} when there are more (asks the server
 * for at most 2).
 *
 * @since 0.3.0
 * @category search
 */
export const searchOne = <R>(
  ldap: Operations<R>,
  base: string,
  options?: Omit<SearchOptions, "sizeLimit" | "pageSize">
): Effect.Effect<Entry, LdapClientError | LdapNotFound | LdapNotUnique, R> =>
  Effect.flatMap(ldap.searchAll(base, { ...options, sizeLimit: 2, pageSize: 0 }), (entries): Effect.Effect<
    Entry,
    LdapNotFound | LdapNotUnique
  > => {
    const filter = options?.filter ?? "(objectClass=*)"
    if (entries.length === 0) return Effect.fail(new LdapNotFound({ base, filter }))
    if (entries.length > 1) return Effect.fail(new LdapNotUnique({ base, filter, dns: entries.slice(0, 2).map((e) => e.dn) }))
    return Effect.succeed(entries[0]!)
  })

/**
 * Whether an entry exists at `dn` (reads no attributes).
 *
 * @since 0.3.0
 * @category search
 */
export const exists = <R>(ldap: Operations<R>, dn: string): Effect.Effect<boolean, LdapClientError, R> =>
  Effect.map(ldap.get(dn, ["1.1"]), Option.isSome)

/**
 * What `deleteTree` did: every entry of the subtree is either deleted or in
 * `failed` with its typed error (its subordinates are then left in place,
 * and so are its ancestors, which still have a child).
 *
 * @since 0.3.0
 * @category models
 */
export interface TreeDeleteReport {
  readonly deleted: number
  readonly failed: ReadonlyArray<{ readonly dn: string; readonly error: LdapClientError }>
}

/**
 * The number of RDNs in a DN (RFC 4514: escaped commas do not count).
 *
 * @since 0.3.0
 * @category utils
 */
export const depth = (dn: string): number => {
  let n = dn.trim() === "" ? 0 : 1
  for (let i = 0; i < dn.length; i++) {
    if (dn[i] === "\\") i++
    else if (dn[i] === "," || dn[i] === ";") n++
  }
  return n
}

/**
 * Deletes `dn` and everything under it, client-side: reads the subtree's
 * DNs, then deletes leaves first (deepest DNs first, `concurrency` entries
 * of the same depth at a time, default 4). Never stops at the first
 * failure: the report lists what could not be deleted. A subtree that does
 * not exist is `{ deleted: 0, failed: [] }`.
 *
 * The Tree Delete control (1.2.840.113556.1.4.805) would do this in one
 * request on servers that have it (Active Directory); OpenLDAP does not, and
 * this works everywhere.
 *
 * @since 0.3.0
 * @category write
 */
export const deleteTree = <R>(
  ldap: Operations<R>,
  dn: string,
  options?: { readonly concurrency?: number | undefined }
): Effect.Effect<TreeDeleteReport, LdapClientError, R> =>
  Effect.gen(function*() {
    const found = yield* ldap.searchAll(dn, { scope: "sub", attributes: ["1.1"] }).pipe(
      Effect.catchIf(
        (e) => e._tag === "LdapOperationError" && e.kind === "no-such-object",
        () => Effect.succeed([] as ReadonlyArray<Entry>)
      )
    )
    const levels = new Map<number, Array<string>>()
    for (const entry of found) {
      const d = depth(entry.dn)
      levels.set(d, [...(levels.get(d) ?? []), entry.dn])
    }
    let deleted = 0
    const failed: Array<{ dn: string; error: LdapClientError }> = []
    for (const d of [...levels.keys()].sort((a, b) => b - a)) {
      yield* Effect.forEach(levels.get(d)!, (target) =>
        ldap.delete(target).pipe(
          Effect.matchEffect({
            onSuccess: () => Effect.sync(() => void deleted++),
            onFailure: (error) => Effect.sync(() => void failed.push({ dn: target, error }))
          })
        ), { concurrency: options?.concurrency ?? 4, discard: true })
    }
    return { deleted, failed }
  })
