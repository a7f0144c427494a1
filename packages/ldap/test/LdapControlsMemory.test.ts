import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import * as fc from "fast-check"
import { Entries, LdapClientMemory, RequestControl } from "../src/index.ts"
import type { LdapClient } from "../src/index.ts"
import { controlsSuite } from "./controlsSuite.ts"

const base = "dc=example,dc=com"
const peopleDn = `ou=people,${base}`
const users = [1, 2, 3, 4, 5, 6].map((i) => ({ dn: `uid=user${i},${peopleDn}`, uid: `user${i}`, password: `password-${i}` }))
const seed = (): ReadonlyArray<LdapClient.Entry> => [
  { dn: base, attributes: { objectClass: ["domain"], dc: ["example"] } },
  { dn: peopleDn, attributes: { objectClass: ["organizationalUnit"], ou: ["people"] } },
  ...users.map((u, i) => ({
    dn: u.dn,
    attributes: { objectClass: ["inetOrgPerson"], uid: [u.uid], cn: [`User ${i + 1}`], sn: [`User${i + 1}`], mail: [`${u.uid}@example.com`], userPassword: [u.password] }
  }))
]

describe("controls on LdapClientMemory (the suite slapd passes)", () => {
  controlsSuite((name, body) => it.effect(name, body), Effect.sync(() => ({ ldap: LdapClientMemory.make(seed()), peopleDn, users })))
})

describe("LdapClientMemory controls slapd lacks or that only it fakes", () => {
  it.effect("subtree delete removes the entry and everything under it; without it a non-leaf is refused", () =>
    Effect.gen(function*() {
      const ldap = LdapClientMemory.make(seed())
      const refused = yield* Effect.flip(ldap.delete(peopleDn))
      assert.strictEqual(refused._tag === "LdapOperationError" && refused.resultCode, 66)
      yield* ldap.withControls([RequestControl.subtreeDelete]).delete(peopleDn)
      for (const dn of [peopleDn, ...users.map((u) => u.dn)]) assert.isFalse(yield* Entries.exists(ldap, dn))
      assert.isTrue(yield* Entries.exists(ldap, base))
    }))

  it.effect("password policy is not faked: LdapUnsupported, as from a server without ppolicy", () =>
    Effect.gen(function*() {
      const ldap = LdapClientMemory.make(seed())
      const refused = yield* Effect.flip(ldap.withControls([RequestControl.passwordPolicy]).modify(users[0]!.dn, []))
      assert.strictEqual(refused._tag === "LdapUnsupported" && refused.feature, "passwordPolicy")
      const rootDse = yield* ldap.rootDse
      assert.deepStrictEqual(rootDse.namingContexts, [base])
      assert.notInclude(rootDse.supportedControls, "1.3.6.1.4.1.42.2.27.8.5.1")
    }))
})

describe("LdapClientMemory sort and VLV (properties)", () => {
  it("any sort order and VLV window: the window is the slice of the sorted list around the clamped offset", () => {
    fc.assert(
      fc.property(
        fc.uniqueArray(fc.string({ minLength: 1, maxLength: 6, unit: fc.constantFrom("a", "b", "c", "x", "y") }), { minLength: 1, maxLength: 12 }),
        fc.boolean(),
        fc.integer({ min: 1, max: 15 }),
        fc.integer({ min: 0, max: 4 }),
        fc.integer({ min: 0, max: 4 }),
        (names, reverse, offset, beforeCount, afterCount) => {
          const ldap = LdapClientMemory.make([
            { dn: base, attributes: { objectClass: ["domain"] } },
            ...names.map((n, i) => ({ dn: `cn=e${i},${base}`, attributes: { objectClass: ["device"], cn: [`e${i}`], description: [n] } }))
          ])
          const sorted = [...names].sort()
          if (reverse) sorted.reverse()
          const result = Effect.runSync(
            ldap.withControls([
              RequestControl.sort([{ attribute: "description", reverse }]),
              RequestControl.virtualListView({ offset, beforeCount, afterCount })
            ]).search(base, { scope: "one" })
          )
          const target = Math.min(offset, names.length) - 1
          assert.deepStrictEqual(
            result.entries.map((e) => String(e.attributes["description"])),
            sorted.slice(Math.max(0, target - beforeCount), target + afterCount + 1)
          )
          assert.deepStrictEqual(result.controls.virtualListView, { targetPosition: target + 1, contentCount: names.length, resultCode: 0 })
        }
      )
    )
  })
})
