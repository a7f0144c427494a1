import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { Changes, Entries, LdapClientMemory } from "../src/index.ts"
import type { LdapClient } from "../src/index.ts"

const base = "dc=example,dc=com"
const seed: ReadonlyArray<LdapClient.Entry> = [
  { dn: base, attributes: { objectClass: ["domain"], dc: ["example"] } },
  { dn: `ou=people,${base}`, attributes: { objectClass: ["organizationalUnit"], ou: ["people"] } },
  { dn: `uid=ada,ou=people,${base}`, attributes: { objectClass: ["person"], uid: ["ada"], cn: ["Ada"] } },
  { dn: `uid=alan,ou=people,${base}`, attributes: { objectClass: ["person"], uid: ["alan"], cn: ["Alan"] } },
  { dn: `cn=x\\,1,uid=alan,ou=people,${base}`, attributes: { objectClass: ["organizationalRole"], cn: ["x,1"] } }
]

describe("Entries on LdapClientMemory", () => {
  it.effect("searchOne, exists", () =>
    Effect.gen(function*() {
      const ldap = LdapClientMemory.make(seed)
      assert.strictEqual((yield* Entries.searchOne(ldap, base, { filter: "(uid=ada)" })).dn, `uid=ada,ou=people,${base}`)
      assert.strictEqual((yield* Effect.flip(Entries.searchOne(ldap, base, { filter: "(uid=nobody)" })))._tag, "LdapNotFound")
      const many = yield* Effect.flip(Entries.searchOne(ldap, base, { filter: "(objectClass=person)" }))
      assert.strictEqual(many._tag, "LdapNotUnique")
      assert.match(many.message, /Narrow the filter/)
      assert.isTrue(yield* Entries.exists(ldap, `uid=ada,ou=people,${base}`))
      assert.isFalse(yield* Entries.exists(ldap, `uid=ghost,ou=people,${base}`))
    }))

  it.effect("deleteTree removes a subtree leaves first (escaped commas included) and nothing else", () =>
    Effect.gen(function*() {
      const ldap = LdapClientMemory.make(seed)
      const report = yield* Entries.deleteTree(ldap, `ou=people,${base}`)
      assert.deepStrictEqual(report, { deleted: 4, failed: [] })
      assert.isTrue(yield* Entries.exists(ldap, base))
      assert.isFalse(yield* Entries.exists(ldap, `ou=people,${base}`))
      assert.deepStrictEqual(yield* Entries.deleteTree(ldap, `ou=people,${base}`), { deleted: 0, failed: [] })
    }))

  it.effect("Changes apply in the memory client as on a server", () =>
    Effect.gen(function*() {
      const ldap = LdapClientMemory.make(seed)
      const dn = `uid=ada,ou=people,${base}`
      yield* ldap.modify(dn, Changes.make().replace("cn", "Ada L.").add("mail", "ada@example.com").build())
      const entry = yield* Entries.searchOne(ldap, base, { filter: "(uid=ada)" })
      assert.deepStrictEqual(entry.attributes["cn"], ["Ada L."])
      assert.deepStrictEqual(entry.attributes["mail"], ["ada@example.com"])
    }))
})
