/**
 * Request controls as `LdapClientMemory` fakes them, the way a server applies
 * them: sort and virtual list view on searches, the assertion on the target
 * entry, pre/post-read of the entry around a write, subtree delete. A control
 * the client does not list in its root DSE fails with `LdapUnsupported`.
 *
 * @internal
 */
import { Effect, Option } from "effect"
import { FilterParser } from "ldapts"
import type * as LdapClient from "../LdapClient.ts"
import type { LdapOperationError } from "../LdapError.ts"
import type * as RequestControl from "../RequestControl.ts"
import { featureOf } from "../RequestControl.ts"
import { LdapUnsupported } from "../RootDse.ts"
import * as bulk from "./ldapBulk.ts"
import type { Directory } from "./memoryDirectory.ts"
import { ENDPOINT, failure, matches, normalize, parentOf, valuesOf } from "./memoryDirectory.ts"

/** The controlled operations of a memory client bound as `bound`, with `controls` attached. */
export const controlled = <R>(
  dir: Directory,
  /** The OIDs of the controls the client fakes. */
  supported: ReadonlySet<string>,
  bound: <A, E>(effect: Effect.Effect<A, E>) => Effect.Effect<A, E | LdapClient.LdapClientError, R>,
  controls: ReadonlyArray<RequestControl.RequestControl>
): LdapClient.ControlledOperations<R> => {
  const { add, directory, modify, modifyDN, readBack, remove, removeTree, requireEntry, search } = dir
  const check = Effect.suspend((): Effect.Effect<void, LdapClient.ControlError> => {
    for (const c of controls) {
      const { feature, oid } = featureOf(c)
      if (!supported.has(oid)) return Effect.fail(new LdapUnsupported({ feature, oid, endpoint: ENDPOINT }))
      if (c._tag === "Assertion") {
        try {
          FilterParser.parseString(c.filter)
        } catch (error) {
          return Effect.fail(failure("assertion", "invalid-filter", `the assertion filter does not parse: ${(error as Error).message}`))
        }
      }
    }
    return Effect.void
  })
  const find = <T extends RequestControl.RequestControl["_tag"]>(tag: T) =>
    controls.find((c): c is Extract<RequestControl.RequestControl, { _tag: T }> => c._tag === tag)
  /** The assertion holds for `entry` (the target, or the entry an add would create). */
  const asserted = (operation: string, entry: LdapClient.Entry | undefined) =>
    Effect.suspend((): Effect.Effect<void, LdapOperationError> => {
      const assertion = find("Assertion")
      if (assertion === undefined || entry === undefined) return Effect.void
      return matches(FilterParser.parseString(assertion.filter), entry)
        ? Effect.void
        : Effect.fail(failure(operation, "assertion-failed", "Assertion Failed", 122))
    })
  const write = (
    operation: string,
    dn: string,
    apply: Effect.Effect<void, LdapOperationError>,
    options?: { readonly added?: LdapClient.Entry; readonly renamedTo?: string }
  ) =>
    bound(Effect.gen(function*() {
      yield* check
      const before = directory.get(normalize(dn))
      yield* asserted(operation, options?.added ?? before)
      const pre = find("PreRead")
      const preRead = pre === undefined ? undefined : readBack(dn, pre.attributes)
      yield* apply
      const post = find("PostRead")
      const postRead = post === undefined || operation === "delete" ? undefined : readBack(options?.renamedTo ?? dn, post.attributes)
      const out: { -readonly [K in keyof RequestControl.ResponseControls]: RequestControl.ResponseControls[K] } = {}
      if (preRead !== undefined && operation !== "add") out.preRead = preRead
      if (postRead !== undefined) out.postRead = postRead
      return out as RequestControl.ResponseControls
    }))
  const searchControlled = (base: string, options?: LdapClient.SearchOptions) =>
    bound(Effect.gen(function*() {
      yield* check
      const sortBy = find("Sort")
      const vlv = find("VirtualListView")
      const { sizeLimit: _ignored, ...unlimited } = options ?? {}
      const found = yield* search(base, vlv === undefined ? options : unlimited)
      let entries = [...found.entries]
      const out: { -readonly [K in keyof RequestControl.ResponseControls]: RequestControl.ResponseControls[K] } = {}
      if (sortBy !== undefined) {
        const key = (e: LdapClient.Entry, attribute: string) => valuesOf(e, attribute).map((v) => v.toLowerCase()).sort()[0]
        entries.sort((a, b) => {
          for (const k of sortBy.keys) {
            const [x, y] = [key(a, k.attribute), key(b, k.attribute)]
            // Entries without the attribute sort last (RFC 2891).
            const order = x === y ? 0 : x === undefined ? 1 : y === undefined ? -1 : x < y ? -1 : 1
            if (order !== 0) return k.reverse === true ? -order : order
          }
          return 0
        })
        out.sort = { resultCode: 0 }
      }
      if (vlv !== undefined) {
        if (sortBy === undefined) return yield* Effect.fail(failure("search", "other", "VLV needs a sort control (virtualListViewError)", 76))
        const target = Math.min(Math.max(vlv.offset, 1), Math.max(entries.length, 1)) - 1
        out.virtualListView = { targetPosition: target + 1, contentCount: entries.length, resultCode: 0 }
        entries = entries.slice(Math.max(0, target - vlv.beforeCount), target + vlv.afterCount + 1)
      }
      return { ...found, entries, controls: out as RequestControl.ResponseControls }
    }))
  return {
    search: searchControlled,
    get: (dn, attributes) =>
      searchControlled(dn, { scope: "base", ...(attributes === undefined ? {} : { attributes }) }).pipe(
        Effect.map((r) => ({ entry: Option.fromNullishOr(r.entries[0]), controls: r.controls })),
        Effect.catchIf(
          (e) => e._tag === "LdapOperationError" && e.kind === "no-such-object",
          () => Effect.succeed({ entry: Option.none<LdapClient.Entry>(), controls: {} })
        )
      ),
    add: (dn, attributes) =>
      write("add", dn, add(dn, attributes), {
        added: { dn, attributes: Object.fromEntries(Object.entries(attributes).map(([t, v]) => [t, typeof v === "string" ? [v] : v])) }
      }),
    modify: (dn, changes) => write("modify", dn, modify(dn, changes)),
    delete: (dn) => write("delete", dn, find("SubtreeDelete") === undefined ? remove(dn) : removeTree(dn)),
    modifyDN: (dn, newDn) =>
      write("modifyDN", dn, modifyDN(dn, newDn), { renamedTo: bulk.parentDn(newDn) !== "" ? newDn : `${newDn},${parentOf(dn)}` }),
    compare: (dn, attribute, value) =>
      bound(Effect.gen(function*() {
        yield* check
        const entry = yield* requireEntry("compare", dn)
        yield* asserted("compare", entry)
        return { matched: valuesOf(entry, attribute).includes(value), controls: {} }
      }))
  }
}
