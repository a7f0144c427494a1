import { assert, describe, it } from "@effect/vitest"
import { Identity } from "@tether/core"
import { Effect, Option, Redacted, Stream } from "effect"
import { Filter, LdapClient, LdapClientMemory } from "../src/index.ts"

class EndUser extends Identity.Service<EndUser>()("test/EndUser") {}

const base = "dc=example,dc=com"
const seed: ReadonlyArray<LdapClient.Entry> = [
  { dn: base, attributes: { objectClass: ["domain"], dc: ["example"] } },
  { dn: `ou=people,${base}`, attributes: { objectClass: ["organizationalUnit"], ou: ["people"] } },
  { dn: `uid=ada,ou=people,${base}`, attributes: { objectClass: ["person"], uid: ["ada"], cn: ["Ada Lovelace"], userPassword: ["engine"] } },
  { dn: `uid=alan,ou=people,${base}`, attributes: { objectClass: ["person"], uid: ["alan"], cn: ["Alan Turing"], userPassword: ["enigma"] } }
]

describe("LdapClientMemory", () => {
  it.effect("searches by scope and filter (and, or, not, presence, substrings), multi-valued", () =>
    Effect.gen(function*() {
      const ldap = LdapClientMemory.make(seed)
      const uids = (filter: string, scope?: "base" | "one" | "sub") =>
        Effect.map(ldap.searchAll(base, { filter, ...(scope === undefined ? {} : { scope }) }), (es) => es.map((e) => e.dn).sort())
      assert.deepStrictEqual(yield* uids("(objectClass=person)"), [`uid=ada,ou=people,${base}`, `uid=alan,ou=people,${base}`])
      assert.deepStrictEqual(yield* uids("(&(objectClass=person)(cn=ada*))"), [`uid=ada,ou=people,${base}`])
      assert.deepStrictEqual(yield* uids("(|(uid=alan)(ou=people))"), [`ou=people,${base}`, `uid=alan,ou=people,${base}`])
      assert.deepStrictEqual(yield* uids("(&(objectClass=person)(!(uid=ada)))"), [`uid=alan,ou=people,${base}`])
      assert.deepStrictEqual(yield* uids("(cn=*Tur*)"), [`uid=alan,ou=people,${base}`])
      assert.deepStrictEqual(yield* uids("(objectClass=*)", "one"), [`ou=people,${base}`])
      assert.deepStrictEqual(yield* uids(Filter.filter`(uid=${"*"})`), [])
      const streamed = yield* Stream.runCollect(ldap.search(`ou=people,${base}`, { scope: "one" }))
      assert.strictEqual(streamed.length, 2)
    }))

  it.effect("writes, and the real client's typed errors", () =>
    Effect.gen(function*() {
      const ldap = LdapClientMemory.make(seed)
      const grace = `uid=grace,ou=people,${base}`
      yield* ldap.add(grace, { objectClass: ["person"], uid: "grace", cn: "Grace Hopper" })
      const exists = yield* Effect.flip(ldap.add(grace, { objectClass: ["person"] }))
      assert.strictEqual(exists._tag === "LdapOperationError" && exists.kind, "already-exists")
      yield* ldap.modify(grace, [{ operation: "add", attribute: "mail", values: ["grace@navy.mil"] }])
      assert.isTrue(yield* ldap.compare(grace, "mail", "grace@navy.mil"))
      yield* ldap.modifyDN(grace, "uid=hopper")
      assert.isTrue(Option.isNone(yield* ldap.get(grace)))
      assert.isTrue(Option.isSome(yield* ldap.get(`uid=hopper,ou=people,${base}`)))
      const missing = yield* Effect.flip(ldap.delete(grace))
      assert.strictEqual(missing._tag === "LdapOperationError" && missing.kind, "no-such-object")
      const nonLeaf = yield* Effect.flip(ldap.delete(`ou=people,${base}`))
      assert.strictEqual(nonLeaf._tag, "LdapOperationError")
      const badFilter = yield* Effect.flip(ldap.searchAll(base, { filter: "(uid=x" }))
      assert.strictEqual(badFilter._tag === "LdapOperationError" && badFilter.kind, "invalid-filter")
      const report = yield* ldap.addMany(Stream.make(
        { dn: `uid=ada,ou=people,${base}`, attributes: { uid: ["ada"] } },
        { dn: `uid=new,ou=people,${base}`, attributes: { uid: ["new"] } }
      ), { onExists: "skip" })
      assert.deepStrictEqual(report, { done: 1, skipped: 1, failed: [] })
    }))

  it.effect("runs as an identity: binds against userPassword; a wrong one is LdapInvalidCredentials", () =>
    Effect.gen(function*() {
      const ldap = LdapClientMemory.make(seed)
      const me = yield* ldap.as(EndUser).whoami.pipe(
        Effect.provideService(EndUser, Identity.make(`uid=ada,ou=people,${base}`, Redacted.make("engine")))
      )
      assert.strictEqual(me, `dn:uid=ada,ou=people,${base}`)
      const denied = yield* Effect.flip(
        ldap.as(EndUser).searchAll(base).pipe(
          Effect.provideService(EndUser, Identity.make(`uid=ada,ou=people,${base}`, Redacted.make("wrong")))
        )
      )
      assert.strictEqual(denied._tag, "LdapInvalidCredentials")
      assert.notInclude(denied.message, "wrong")
    }))

  it.effect("is a Layer of LdapClient", () =>
    Effect.gen(function*() {
      const ldap = yield* LdapClient.LdapClient
      assert.strictEqual((yield* ldap.searchAll(base, { filter: "(uid=alan)" })).length, 1)
    }).pipe(Effect.provide(LdapClientMemory.layer(seed))))
})
