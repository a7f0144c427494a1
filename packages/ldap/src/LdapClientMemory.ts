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
import * as LdapClient from "./LdapClient.ts"
import type * as Ldif from "./Ldif.ts"
import { LdapInvalidCredentials } from "./LdapError.ts"
import type * as RequestControl from "./RequestControl.ts"
import { isSasl } from "./Sasl.ts"
import type * as Sasl from "./Sasl.ts"
import { FEATURES } from "./RootDse.ts"
import type * as RootDse from "./RootDse.ts"
import * as bulk from "./internal/ldapBulk.ts"
import * as passwordModify from "./internal/passwordModify.ts"
import { toLdifEntry } from "./internal/ldapClient.ts"
import * as MemoryControls from "./internal/memoryControls.ts"
import * as MemoryDirectory from "./internal/memoryDirectory.ts"
import { ENDPOINT, failure, normalize, parentOf, valuesOf } from "./internal/memoryDirectory.ts"

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

/**
 * Makes an in-memory client holding `entries`.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (entries: Iterable<LdapClient.Entry> = []): LdapClient.LdapClient => {
  const dir = MemoryDirectory.make(entries)
  const { add, directory, modify, modifyDN, remove, requireEntry, search } = dir

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

  const controlled = <R>(
    bound: <A, E>(effect: Effect.Effect<A, E>) => Effect.Effect<A, E | LdapClient.LdapClientError, R>,
    controls: ReadonlyArray<RequestControl.RequestControl>
  ): LdapClient.ControlledOperations<R> => MemoryControls.controlled(dir, new Set(rootDse().supportedControls), bound, controls)

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
