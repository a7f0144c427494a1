/**
 * The directory behind `LdapClientMemory`: entries in a `Map` keyed by
 * normalized DN, searched with ldapts's parsed filters, and changed with the
 * result codes a server gives (no such object, already exists, not allowed
 * on non-leaf, constraint violation).
 *
 * @internal
 */
import { Effect } from "effect"
import { AndFilter, EqualityFilter, FilterParser, GreaterThanEqualsFilter, LessThanEqualsFilter, NotFilter, OrFilter, PresenceFilter, SubstringFilter } from "ldapts"
import type { Filter } from "ldapts"
import type * as LdapClient from "../LdapClient.ts"
import { LdapOperationError } from "../LdapError.ts"
import * as bulk from "./ldapBulk.ts"

/** The endpoint name on the memory client's errors and status. */
export const ENDPOINT = "memory"

/** DNs compare case-insensitively, ignoring spaces after commas. */
export const normalize = (dn: string) => dn.toLowerCase().replace(/,\s+/g, ",")
export const parentOf = (dn: string) => {
  const i = dn.search(/(?<!\\),/)
  return i < 0 ? "" : dn.slice(i + 1)
}

export const failure = (operation: string, kind: LdapOperationError["kind"], reason: string, resultCode?: number) =>
  new LdapOperationError({ endpoint: ENDPOINT, operation, kind, resultCode, reason })

export const text = (v: string | Uint8Array) => (typeof v === "string" ? v : Buffer.from(v).toString("utf8"))

export const valuesOf = (entry: LdapClient.Entry, attribute: string): ReadonlyArray<string> => {
  const wanted = attribute.toLowerCase()
  for (const [type, values] of Object.entries(entry.attributes)) {
    if (type.toLowerCase() === wanted) return values.map(text)
  }
  return []
}

/** Whether an entry matches a parsed filter (multi-valued, case-insensitive attribute names and values). */
export const matches = (filter: Filter, entry: LdapClient.Entry): boolean => {
  if (filter instanceof AndFilter) return filter.filters.every((f) => matches(f, entry))
  if (filter instanceof OrFilter) return filter.filters.some((f) => matches(f, entry))
  if (filter instanceof NotFilter) return !matches(filter.filter, entry)
  if (filter instanceof PresenceFilter) return valuesOf(entry, filter.attribute).length > 0
  if (filter instanceof EqualityFilter) {
    const value = text(filter.value).toLowerCase()
    return valuesOf(entry, filter.attribute).some((v) => v.toLowerCase() === value)
  }
  if (filter instanceof SubstringFilter) {
    return valuesOf(entry, filter.attribute).some((raw) => {
      const v = raw.toLowerCase()
      let at = 0
      if (filter.initial) {
        if (!v.startsWith(filter.initial.toLowerCase())) return false
        at = filter.initial.length
      }
      for (const part of filter.any) {
        const found = v.indexOf(part.toLowerCase(), at)
        if (found < 0) return false
        at = found + part.length
      }
      return !filter.final || (v.length - filter.final.length >= at && v.endsWith(filter.final.toLowerCase()))
    })
  }
  if (filter instanceof GreaterThanEqualsFilter) {
    return valuesOf(entry, filter.attribute).some((v) => v.toLowerCase() >= filter.value.toLowerCase())
  }
  if (filter instanceof LessThanEqualsFilter) {
    return valuesOf(entry, filter.attribute).some((v) => v.toLowerCase() <= filter.value.toLowerCase())
  }
  return false
}

/** A directory holding `entries`, and the operations on it (each an effect, checked when run). */
export const make = (entries: Iterable<LdapClient.Entry> = []) => {
  const directory = new Map<string, LdapClient.Entry>()
  for (const entry of entries) directory.set(normalize(entry.dn), entry)

  const search = (base: string, options?: LdapClient.SearchOptions) =>
    Effect.suspend(() => {
      let filter: Filter
      try {
        filter = FilterParser.parseString(options?.filter ?? "(objectClass=*)")
      } catch (error) {
        return Effect.fail(failure("search", "invalid-filter", (error as Error).message))
      }
      const key = normalize(base)
      if (!directory.has(key)) return Effect.fail(failure("search", "no-such-object", "No Such Object", 32))
      const scope = options?.scope ?? "sub"
      const found: Array<LdapClient.Entry> = []
      for (const [dn, entry] of directory) {
        const inScope = scope === "base"
          ? dn === key
          : scope === "one"
          ? parentOf(dn) === key
          : scope === "children"
          ? dn !== key && dn.endsWith(`,${key}`)
          : dn === key || dn.endsWith(`,${key}`)
        if (inScope && matches(filter, entry)) found.push(project(entry, options?.attributes))
      }
      const limit = options?.sizeLimit ?? 0
      return Effect.succeed<LdapClient.SearchResult>(
        limit > 0 && found.length > limit
          ? { entries: found.slice(0, limit), references: [], truncated: "sizeLimit" }
          : { entries: found, references: [], truncated: undefined }
      )
    })

  const project = (entry: LdapClient.Entry, attributes: ReadonlyArray<string> | undefined): LdapClient.Entry => {
    if (attributes === undefined || attributes.length === 0 || attributes.includes("*")) return entry
    const wanted = new Set(attributes.map((a) => a.toLowerCase()))
    return { dn: entry.dn, attributes: Object.fromEntries(Object.entries(entry.attributes).filter(([t]) => wanted.has(t.toLowerCase()))) }
  }

  const requireEntry = (operation: string, dn: string) =>
    Effect.suspend(() => {
      const entry = directory.get(normalize(dn))
      return entry === undefined ? Effect.fail(failure(operation, "no-such-object", "No Such Object", 32)) : Effect.succeed(entry)
    })

  const add = (
    dn: string,
    attributes: { readonly [type: string]: string | ReadonlyArray<string | Uint8Array> } | ReadonlyMap<string, ReadonlyArray<string | Uint8Array>>
  ) =>
    Effect.suspend(() => {
      const key = normalize(dn)
      if (!/^[^=,]+=[^,]*/.test(dn)) return Effect.fail(failure("add", "invalid-dn", `invalid DN "${dn}"`, 34))
      if (directory.has(key)) return Effect.fail(failure("add", "already-exists", "Already Exists", 68))
      const parent = parentOf(key)
      if (parent !== "" && !directory.has(parent) && directory.size > 0) {
        return Effect.fail(failure("add", "no-such-object", "the parent entry does not exist", 32))
      }
      const pairs = attributes instanceof Map ? [...attributes] : Object.entries(attributes)
      const stored: Record<string, Array<string | Uint8Array>> = {}
      for (const [t, v] of pairs) {
        Object.defineProperty(stored, t, { value: typeof v === "string" ? [v] : [...v], enumerable: true, writable: true, configurable: true })
      }
      directory.set(key, { dn, attributes: stored })
      return Effect.void
    })

  const remove = (dn: string) =>
    Effect.flatMap(requireEntry("delete", dn), () => {
      const key = normalize(dn)
      for (const other of directory.keys()) {
        if (other.endsWith(`,${key}`)) return Effect.fail(failure("delete", "other", "Not Allowed On Non-leaf", 66))
      }
      directory.delete(key)
      return Effect.void
    })

  const modify = (dn: string, changes: ReadonlyArray<LdapClient.Change>) =>
    Effect.flatMap(requireEntry("modify", dn), (entry) => {
      const attributes: Record<string, Array<string | Uint8Array>> = {}
      for (const [t, vs] of Object.entries(entry.attributes)) attributes[t] = [...vs]
      for (const change of changes) {
        const type = Object.keys(attributes).find((t) => t.toLowerCase() === change.attribute.toLowerCase()) ?? change.attribute
        if (change.operation === "increment") {
          const current = attributes[type]
          if (current === undefined || current.length !== 1) {
            return Effect.fail(failure("modify", "constraint", `no single value of "${change.attribute}" to increment`, 18))
          }
          attributes[type] = [String(Number(text(current[0]!)) + Number(text(change.values[0] ?? "0")))]
        } else if (change.operation === "replace") attributes[type] = [...change.values]
        else if (change.operation === "add") attributes[type] = [...(attributes[type] ?? []), ...change.values]
        else if (change.values.length === 0) delete attributes[type]
        else {
          const removed = change.values.map(text)
          attributes[type] = (attributes[type] ?? []).filter((v) => !removed.includes(text(v)))
        }
        if (attributes[type]?.length === 0) delete attributes[type]
      }
      directory.set(normalize(dn), { dn: entry.dn, attributes })
      return Effect.void
    })

  /** Renames an entry; the new RDN's value is added, the old one's removed when `deleteOldRdn`. */
  const modifyDN = (dn: string, newDn: string, deleteOldRdn = true) =>
    Effect.flatMap(requireEntry("modifyDN", dn), (entry) => {
      const target = bulk.parentDn(newDn) !== "" ? newDn : `${newDn},${parentOf(entry.dn)}`
      if (directory.has(normalize(target))) return Effect.fail(failure("modifyDN", "already-exists", "Already Exists", 68))
      const rdnOf = (d: string) => {
        const first = d.slice(0, d.length - bulk.parentDn(d).length).replace(/,\s*$/, "")
        const eq = first.indexOf("=")
        return [first.slice(0, eq).trim(), first.slice(eq + 1).trim()] as const
      }
      const attributes: Record<string, Array<string | Uint8Array>> = {}
      for (const [t, vs] of Object.entries(entry.attributes)) {
        Object.defineProperty(attributes, t, { value: [...vs], enumerable: true, writable: true, configurable: true })
      }
      const typeOf = (name: string) => Object.keys(attributes).find((t) => t.toLowerCase() === name.toLowerCase()) ?? name
      const [oldType, oldValue] = rdnOf(entry.dn)
      const [newType, newValue] = rdnOf(target)
      if (deleteOldRdn) {
        const t = typeOf(oldType)
        attributes[t] = (attributes[t] ?? []).filter((v) => text(v).toLowerCase() !== oldValue.toLowerCase())
        if (attributes[t]!.length === 0) delete attributes[t]
      }
      const t = typeOf(newType)
      if (!(attributes[t] ?? []).some((v) => text(v).toLowerCase() === newValue.toLowerCase())) {
        attributes[t] = [...(attributes[t] ?? []), newValue]
      }
      directory.delete(normalize(dn))
      directory.set(normalize(target), { dn: target, attributes })
      return Effect.void
    })

  /** The entry's `attributes` (all for `*` or none given), as a pre/post-read control returns them. */
  const readBack = (dn: string, attributes: ReadonlyArray<string>): LdapClient.Entry | undefined => {
    const entry = directory.get(normalize(dn))
    return entry === undefined ? undefined : project(entry, attributes)
  }

  /** Subtree delete: the entry and everything under it. */
  const removeTree = (dn: string) =>
    Effect.flatMap(requireEntry("delete", dn), () =>
      Effect.sync(() => {
        const key = normalize(dn)
        for (const other of [...directory.keys()]) if (other === key || other.endsWith(`,${key}`)) directory.delete(other)
      }))

  return { directory, search, project, requireEntry, add, remove, modify, modifyDN, removeTree, readBack }
}

/** A directory and its operations. */
export type Directory = ReturnType<typeof make>
