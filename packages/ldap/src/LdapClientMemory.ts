/**
 * An in-memory `LdapClient` for users' unit tests: a directory held in a
 * `Map`, the same operations and the same typed errors as the real client
 * (no such object, already exists, invalid filter, invalid credentials), no
 * server. Identities bind against `userPassword` values of the entries
 * (SASL PLAIN / SCRAM identities by `uid`).
 *
 * Faked as a server does it: `withControls` with sort, virtual list view,
 * assertion, pre/post-read and subtree delete (paged results, ManageDsaIT
 * and proxied authorization are accepted and change nothing: there are no
 * pages, referrals or ACLs here); Who am I? and Password Modify through
 * `exop`; `rootDse` listing exactly that. Not faked: access control, the
 * password policy (its control is `LdapUnsupported`, as on a server without
 * it), SASL EXTERNAL (refused, result code 7), the subschema, change
 * streams and referrals.
 *
 * @example
 * ```ts
 * import { LdapClient, LdapClientMemory } from "@tether/ldap"
 * import { Effect } from "effect"
 *
 * const TestLdap = LdapClientMemory.layer([
 *   { dn: "dc=example,dc=com", attributes: { objectClass: ["domain"], dc: ["example"] } },
 *   { dn: "uid=ada,dc=example,dc=com", attributes: { objectClass: ["person"], uid: ["ada"], userPassword: ["secret"] } }
 * ])
 * const test = Effect.gen(function*() {
 *   const ldap = yield* LdapClient.LdapClient
 *   return yield* ldap.searchAll("dc=example,dc=com", { filter: "(uid=ada)" })
 * }).pipe(Effect.provide(TestLdap))
 * ```
 *
 * @since 0.1.0
 */
import type { Identity } from "@tether/core"
import { ServerSet } from "@tether/core"
import { randomBytes } from "node:crypto"
import { Effect, Layer, Option, Redacted, Stream } from "effect"
import type { Context } from "effect"
import { AndFilter, EqualityFilter, FilterParser, GreaterThanEqualsFilter, LessThanEqualsFilter, NotFilter, OrFilter, PresenceFilter, SubstringFilter } from "ldapts"
import type { Filter } from "ldapts"
import * as LdapClient from "./LdapClient.ts"
import type * as Ldif from "./Ldif.ts"
import { LdapInvalidCredentials, LdapOperationError } from "./LdapError.ts"
import type * as RequestControl from "./RequestControl.ts"
import { isSasl } from "./Sasl.ts"
import type * as Sasl from "./Sasl.ts"
import { featureOf } from "./RequestControl.ts"
import { FEATURES, LdapUnsupported } from "./RootDse.ts"
import type * as RootDse from "./RootDse.ts"
import * as bulk from "./internal/ldapBulk.ts"
import * as passwordModify from "./internal/passwordModify.ts"
import { toLdifEntry } from "./internal/ldapClient.ts"

const ENDPOINT = "memory"

/** The controls the memory client fakes (ManageDsaIT and proxied authorization are accepted and change nothing). */
const MEMORY_CONTROLS = [
  "pagedResults",
  "serverSideSort",
  "virtualListView",
  "manageDsaIT",
  "proxiedAuthorization",
  "treeDelete",
  "assertion",
  "preRead",
  "postRead"
] as const

/** DNs compare case-insensitively, ignoring spaces after commas. */
const normalize = (dn: string) => dn.toLowerCase().replace(/,\s+/g, ",")
const parentOf = (dn: string) => {
  const i = dn.search(/(?<!\\),/)
  return i < 0 ? "" : dn.slice(i + 1)
}

const failure = (operation: string, kind: LdapOperationError["kind"], reason: string, resultCode?: number) =>
  new LdapOperationError({ endpoint: ENDPOINT, operation, kind, resultCode, reason })

const text = (v: string | Uint8Array) => (typeof v === "string" ? v : Buffer.from(v).toString("utf8"))

const valuesOf = (entry: LdapClient.Entry, attribute: string): ReadonlyArray<string> => {
  const wanted = attribute.toLowerCase()
  for (const [type, values] of Object.entries(entry.attributes)) {
    if (type.toLowerCase() === wanted) return values.map(text)
  }
  return []
}

/** Whether an entry matches a parsed filter (multi-valued, case-insensitive attribute names and values). */
const matches = (filter: Filter, entry: LdapClient.Entry): boolean => {
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

/**
 * Makes an in-memory client holding `entries`.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (entries: Iterable<LdapClient.Entry> = []): LdapClient.LdapClient => {
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

  /** The root DSE: what the memory client fakes. */
  const rootDse = (): RootDse.RootDse => ({
    endpoint: ENDPOINT,
    namingContexts: [...directory.values()].filter((e) => !directory.has(parentOf(normalize(e.dn)))).map((e) => e.dn),
    supportedControls: MEMORY_CONTROLS.map((f) => FEATURES[f].oid),
    supportedExtensions: [FEATURES.whoAmI.oid, FEATURES.passwordModify.oid],
    supportedFeatures: [],
    supportedSaslMechanisms: ["PLAIN", "SCRAM-SHA-1", "SCRAM-SHA-256"],
    supportedLdapVersions: ["3"],
    subschemaSubentry: undefined,
    vendorName: "Tether LdapClientMemory",
    vendorVersion: undefined
  })

  /** The entry's `attributes` (all for `*` or none given), as a pre/post-read control returns them. */
  const readBack = (dn: string, attributes: ReadonlyArray<string>): LdapClient.Entry | undefined => {
    const entry = directory.get(normalize(dn))
    return entry === undefined ? undefined : project(entry, attributes)
  }

  const controlled = <R>(
    bound: <A, E>(effect: Effect.Effect<A, E>) => Effect.Effect<A, E | LdapClient.LdapClientError, R>,
    controls: ReadonlyArray<RequestControl.RequestControl>
  ): LdapClient.ControlledOperations<R> => {
    const supported = new Set(rootDse().supportedControls)
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

  /** Password Modify (RFC 3062): the target's userPassword replaced, checking the old one when given. */
  const changePassword = (me: string, value: string | Uint8Array | undefined) =>
    Effect.suspend(() => {
      const bytes = value === undefined ? new Uint8Array(0) : typeof value === "string" ? new TextEncoder().encode(value) : value
      const request = passwordModify.decodeRequest(bytes)
      if (request === undefined) return Effect.fail(failure("exop", "other", "the Password Modify request value is not BER", 2))
      const user = request.userIdentity?.replace(/^dn:/, "") ?? (me.startsWith("dn:") ? me.slice(3) : "")
      if (user === "") return Effect.fail(failure("exop", "unavailable", "no user to change the password of (anonymous)", 53))
      return Effect.flatMap(requireEntry("exop", user), (entry) => {
        if (request.oldPassword !== undefined && !valuesOf(entry, "userPassword").includes(request.oldPassword)) {
          return Effect.fail(failure("passwordModify", "other", "unwilling to verify old password", 53))
        }
        const generated = request.newPassword === undefined ? randomBytes(9).toString("base64url") : undefined
        return Effect.as(
          modify(entry.dn, [{ operation: "replace", attribute: "userPassword", values: [request.newPassword ?? generated!] }]),
          { oid: undefined, value: new TextDecoder().decode(passwordModify.encodeResponse(generated)) }
        )
      })
    })

  /** Subtree delete: the entry and everything under it. */
  const removeTree = (dn: string) =>
    Effect.flatMap(requireEntry("delete", dn), () =>
      Effect.sync(() => {
        const key = normalize(dn)
        for (const other of [...directory.keys()]) if (other === key || other.endsWith(`,${key}`)) directory.delete(other)
      }))

  const operations = <R>(whoami: Effect.Effect<string, LdapClient.LdapClientError, R>): LdapClient.Operations<R> => {
    // Each operation first checks the caller's bind, like the real client's connection.
    const bound = <A, E>(effect: Effect.Effect<A, E>) => Effect.andThen(whoami, effect)
    const importLdif: LdapClient.Operations<R>["importLdif"] = (records, options) => {
      const apply = (record: Ldif.LdifRecord): Effect.Effect<"done" | "skipped", LdapClient.LdapClientError, R> => {
        switch (record._tag) {
          case "Entry":
          case "Add":
            return bound(add(record.dn, record.attributes)).pipe(
              Effect.as("done" as const),
              Effect.catch((error) => {
                const exists = error._tag === "LdapOperationError" && error.kind === "already-exists"
                if (!exists || (options?.onExists ?? "fail") === "fail") return Effect.fail(error)
                if (options?.onExists === "skip") return Effect.succeed("skipped" as const)
                return Effect.as(Effect.andThen(remove(record.dn), add(record.dn, record.attributes)), "done" as const)
              })
            )
          case "Delete":
            return Effect.as(bound(remove(record.dn)), "done" as const)
          case "Modify":
            return Effect.as(bound(modify(record.dn, record.changes)), "done" as const)
          case "ModRdn":
            return Effect.as(
              bound(modifyDN(record.dn, `${record.newRdn},${record.newSuperior ?? parentOf(record.dn)}`, record.deleteOldRdn)),
              "done" as const
            )
        }
      }
      return bulk.run(records, apply, options)
    }
    return {
      withControls: (controls) => controlled(bound, controls),
      search: (base, options) => Stream.unwrap(Effect.map(bound(search(base, options)), (r) => Stream.fromIterable(r.entries))),
      searchItems: (base, options) =>
        Stream.unwrap(Effect.map(bound(search(base, options)), (r) =>
          Stream.fromIterable<LdapClient.SearchItem>([
            ...r.entries.map((entry) => ({ _tag: "Entry" as const, entry })),
            ...(r.truncated === undefined ? [] : [{ _tag: "Truncated" as const, reason: r.truncated }])
          ]))),
      searchWithInfo: (base, options) => bound(search(base, options)),
      searchAll: (base, options) => Effect.map(bound(search(base, options)), (r) => r.entries),
      get: (dn, attributes) =>
        bound(search(dn, { scope: "base", ...(attributes === undefined ? {} : { attributes }) })).pipe(
          Effect.map((found) => Option.fromNullishOr(found.entries[0])),
          Effect.catchIf((e) => e._tag === "LdapOperationError" && e.kind === "no-such-object", () => Effect.succeed(Option.none()))
        ),
      add: (dn, attributes) => bound(add(dn, attributes)),
      modify: (dn, changes) => bound(modify(dn, changes)),
      delete: (dn) => bound(remove(dn)),
      modifyDN: (dn, newDn) => bound(modifyDN(dn, newDn)),
      compare: (dn, attribute, value) =>
        bound(Effect.map(requireEntry("compare", dn), (entry) => valuesOf(entry, attribute).includes(value))),
      whoami,
      exop: (oid, value) =>
        Effect.flatMap(whoami, (me) => {
          if (oid === FEATURES.whoAmI.oid) return Effect.succeed({ oid: undefined, value: me })
          if (oid === passwordModify.OID) return changePassword(me, value)
          return Effect.fail(failure("exop", "other", `extended operation ${oid} is not supported in memory`, 2))
        }),
      addMany: (entries, options) => importLdif(Stream.map(entries, toLdifEntry), options),
      modifyMany: (modifications, options) =>
        importLdif(Stream.map(modifications, (m): Ldif.LdifRecord => ({ _tag: "Modify", dn: m.dn, changes: m.changes })), options),
      importLdif
    }
  }

  /**
   * SASL PLAIN / SCRAM: the user name maps to the entry whose `uid` it is
   * (as OpenLDAP's `authz-regexp` in the testkit); EXTERNAL has no
   * certificate here and is refused (result code 7).
   */
  const saslBind = (credentials: Sasl.Credentials) =>
    Effect.suspend(() => {
      const who = `(SASL ${credentials.sasl.mechanism}${credentials.sasl.user === "" ? "" : ` ${credentials.sasl.user}`})`
      if (credentials.sasl.mechanism === "EXTERNAL") {
        return Effect.fail(new LdapInvalidCredentials({ endpoint: ENDPOINT, dn: who, resultCode: 7 }))
      }
      const password = credentials.secret === undefined ? "" : Redacted.value(credentials.secret)
      const entry = [...directory.values()].find((e) => valuesOf(e, "uid").some((u) => u.toLowerCase() === credentials.sasl.user.toLowerCase()))
      if (entry === undefined || !valuesOf(entry, "userPassword").includes(password)) {
        return Effect.fail(new LdapInvalidCredentials({ endpoint: ENDPOINT, dn: who, resultCode: 49 }))
      }
      return Effect.succeed(`dn:${entry.dn}`)
    })

  /** Binds as an identity: its principal must be an entry whose `userPassword` is its secret. */
  const bindAs = (credentials: Identity.Credentials) =>
    Effect.suspend(() => {
      if (isSasl(credentials)) return saslBind(credentials)
      const entry = directory.get(normalize(credentials.principal))
      const password = credentials.secret === undefined ? "" : Redacted.value(credentials.secret)
      if (entry === undefined || !valuesOf(entry, "userPassword").includes(password)) {
        return Effect.fail(new LdapInvalidCredentials({ endpoint: ENDPOINT, dn: credentials.principal, resultCode: 49 }))
      }
      return Effect.succeed(`dn:${entry.dn}`)
    })

  return {
    ...operations(Effect.succeed("")),
    as: <I>(key: Context.Key<I, Identity.Credentials>) => operations(Effect.flatMap(Effect.service(key), bindAs)),
    rootDse: Effect.sync(rootDse),
    // No servers: an empty status.
    status: Effect.succeed({ name: ENDPOINT, strategy: "round-robin", endpoints: [] }),
    balancerChanges: Stream.make({ strategy: "round-robin", highestTimeline: undefined, endpoints: [] }),
    reconfigure: ServerSet.serverlessReconfigure(
      ENDPOINT,
      Effect.succeed({ name: ENDPOINT, strategy: "round-robin", endpoints: [] })
    )
  }
}

/**
 * A `Layer` of an in-memory `LdapClient` holding `entries`.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (entries: Iterable<LdapClient.Entry> = []): Layer.Layer<LdapClient.LdapClient> =>
  Layer.sync(LdapClient.LdapClient, () => make(entries))
