import { assert, describe, layer } from "@effect/vitest"
import { Identity } from "@tether/core"
import { Slapd } from "@tether/testkit"
import { Effect, Layer, Option, Redacted } from "effect"
import { Changes, Entries, LdapClient, PasswordModify, RequestControl } from "../src/index.ts"
import { controlsSuite } from "./controlsSuite.ts"
import { adminClient } from "./support.ts"

class User1 extends Identity.Service<User1>()("test/User1") {}

const POLICY = { pwdMinLength: "8", pwdCheckQuality: "2", pwdAllowUserChange: "TRUE" }

layer(Slapd.layer({ servers: 1, users: 6, ppolicy: { defaultPolicy: POLICY }, sssvlv: true, sasl: true }), { excludeTestServices: true })(
  "controls on pooled operations, observed on slapd",
  (it) => {
    const clientOf = (d: Slapd.Directory) =>
      LdapClient.make({ endpoints: [d.server.url], bindDn: d.adminDn, password: Redacted.make(d.adminPassword), health: false, allowPlaintext: true })

    describe("the shared suite (LdapClientMemory passes it too)", () => {
      controlsSuite(
        (name, body) => it.effect(name, () => Effect.scoped(body())),
        Effect.gen(function*() {
          const d = yield* Slapd.Slapd
          return { ldap: yield* clientOf(d), peopleDn: d.peopleDn, users: d.users }
        })
      )
    })

    it.effect("proxied authorization (RFC 4370): the service account acts as a user, with the user's rights", () =>
      Effect.gen(function*() {
        const d = yield* Slapd.Slapd
        const ldap = yield* clientOf(d)
        const [u1, u2] = [d.users[0]!, d.users[1]!]
        // The admin reads user2's password; acting as user1 it may not (ACL: self and auth only).
        assert.isDefined(Option.getOrThrow(yield* ldap.get(u2.dn, ["userPassword"])).attributes["userPassword"])
        const asUser1 = ldap.withControls([RequestControl.proxiedAuthorization(`dn:${u1.dn}`)])
        const seen = yield* asUser1.get(u2.dn, ["userPassword", "uid"])
        assert.deepStrictEqual(Option.getOrThrow(seen.entry).attributes, { uid: [u2.uid] })
        // A write user1 may not do is refused though the admin asked; user1's own password it may write.
        const denied = yield* Effect.flip(asUser1.modify(u2.dn, Changes.make().replace("description", "nope").build()))
        assert.strictEqual(denied._tag === "LdapOperationError" && denied.kind, "insufficient-access")
        yield* asUser1.modify(u1.dn, Changes.make().replace("userPassword", u1.password).build())
      }).pipe(Effect.scoped))

    it.effect("ManageDsaIT (RFC 3296): a referral object is an entry with the control, a referral without", () =>
      Effect.gen(function*() {
        const d = yield* Slapd.Slapd
        const ldap = yield* clientOf(d)
        const dn = `ou=pooled-elsewhere,${d.suffix}`
        const manage = ldap.withControls([RequestControl.manageDsaIT()])
        yield* manage.add(dn, { objectClass: ["referral", "extensibleObject"], ou: "pooled-elsewhere", ref: "ldap://other.example.com/ou=x,dc=example,dc=com" })
        const referred = yield* Effect.flip(ldap.searchAll(dn, { scope: "base" }))
        assert.strictEqual(referred._tag === "LdapOperationError" && referred.resultCode, 10)
        const managed = yield* manage.get(dn, ["ref"])
        assert.deepStrictEqual(Option.getOrThrow(managed.entry).attributes["ref"], ["ldap://other.example.com/ou=x,dc=example,dc=com"])
        yield* manage.delete(dn)
        assert.isTrue(Option.isNone((yield* manage.get(dn)).entry))
      }).pipe(Effect.scoped))

    it.effect("subtree delete: slapd does not advertise it, so it is refused before sending and nothing is deleted", () =>
      Effect.gen(function*() {
        const d = yield* Slapd.Slapd
        const ldap = yield* clientOf(d)
        const refused = yield* Effect.flip(ldap.withControls([RequestControl.subtreeDelete]).delete(d.peopleDn))
        assert.strictEqual(refused._tag === "LdapUnsupported" && refused.feature, "treeDelete")
        assert.strictEqual(refused._tag === "LdapUnsupported" && refused.endpoint, d.server.url)
        assert.isTrue(yield* Entries.exists(ldap, d.users[5]!.dn))
      }).pipe(Effect.scoped))

    it.effect("password policy response controls: a refused change is LdapPasswordPolicyError naming the reason", () =>
      Effect.gen(function*() {
        const d = yield* Slapd.Slapd
        const ldap = yield* clientOf(d)
        const u = d.users[4]!
        const asUser = ldap.as(User1).withControls([RequestControl.passwordPolicy])
        const credentials = Layer.succeed(User1, Identity.make(u.dn, Redacted.make(u.password)))
        const short = yield* Effect.flip(asUser.modify(u.dn, Changes.make().replace("userPassword", "short").build()).pipe(Effect.provide(credentials)))
        assert.strictEqual(short._tag, "LdapPasswordPolicyError")
        assert.strictEqual(short._tag === "LdapPasswordPolicyError" && short.reason, "passwordTooShort")
        assert.strictEqual(short._tag === "LdapPasswordPolicyError" && short.dn, u.dn)
        // Without the control the same refusal is a plain constraint violation.
        const plain = yield* Effect.flip(ldap.as(User1).modify(u.dn, Changes.make().replace("userPassword", "short").build()).pipe(Effect.provide(credentials)))
        assert.strictEqual(plain._tag === "LdapOperationError" && plain.kind, "constraint")
        // A good password passes, with no policy error in the response.
        const ok = yield* asUser.modify(u.dn, Changes.make().replace("userPassword", "long-enough-1").build()).pipe(Effect.provide(credentials))
        assert.isUndefined(ok.passwordPolicy?.error)
      }).pipe(Effect.scoped))

    it.effect("rootDse: read through the pool, cached per endpoint", () =>
      Effect.gen(function*() {
        const d = yield* Slapd.Slapd
        const ldap = yield* clientOf(d)
        const rootDse = yield* ldap.rootDse
        assert.strictEqual(rootDse.endpoint, d.server.url)
        assert.include(rootDse.namingContexts, d.suffix)
        for (const oid of ["1.2.840.113556.1.4.473", "2.16.840.1.113730.3.4.9", "1.3.6.1.1.13.1", "1.3.6.1.4.1.42.2.27.8.5.1"]) {
          assert.include(rootDse.supportedControls, oid)
        }
      }).pipe(Effect.scoped))
  }
)

layer(Slapd.layer({ servers: 2, users: 4, sssvlv: true }), { excludeTestServices: true })("controls across a failover", (it) => {
  it.effect("a sorted search with a dead first server runs on the second, checked against that server's root DSE", () =>
    Effect.gen(function*() {
      const d = yield* Slapd.Slapd
      const ldap = yield* adminClient(d, {
        endpoints: d.servers.map((s) => s.url),
        allowPlaintext: true,
        strategy: "priority",
        connectTimeout: "10 seconds",
        timeout: "20 seconds"
      })
      const sorted = ldap.withControls([RequestControl.sort([{ attribute: "uid", orderingRule: "caseIgnoreOrderingMatch", reverse: true }])])
      const first = yield* sorted.search(d.peopleDn, { filter: "(uid=user*)", attributes: ["uid"] })
      yield* d.kill(d.servers[0]!)
      const second = yield* sorted.search(d.peopleDn, { filter: "(uid=user*)", attributes: ["uid"] })
      assert.deepStrictEqual(second.entries.map((e) => e.attributes["uid"]), first.entries.map((e) => e.attributes["uid"]))
      assert.deepStrictEqual(second.entries.map((e) => String(e.attributes["uid"])), ["user4", "user3", "user2", "user1"])
      assert.deepStrictEqual(second.controls.sort, { resultCode: 0 })
      assert.strictEqual((yield* ldap.rootDse).endpoint, d.servers[1]!.url)
    }).pipe(Effect.scoped))
})

layer(Slapd.layer({ servers: 1, users: 2, ppolicy: { defaultPolicy: { pwdMustChange: "TRUE", pwdAllowUserChange: "TRUE" } } }), {
  excludeTestServices: true
})("password policy on pooled operations: must change after a reset", (it) => {
  it.effect("after an administrator's reset the user's operations are refused as changeAfterReset until the password changes", () =>
    Effect.gen(function*() {
      const d = yield* Slapd.Slapd
      const ldap = yield* adminClient(d, {
        allowPlaintext: true
      })
      const u = d.users[0]!
      yield* PasswordModify.modifyWith(ldap, { user: u.dn, newPassword: Redacted.make("Reset-Pass-1") })
      const afterReset = Layer.succeed(User1, Identity.make(u.dn, Redacted.make("Reset-Pass-1")))
      const withPolicy = ldap.as(User1).withControls([RequestControl.passwordPolicy])
      // slapd 2.5 answers the policy control on a restricted modify (not on a restricted search or compare).
      const refused = yield* Effect.flip(withPolicy.modify(u.dn, Changes.make().replace("description", "x").build()).pipe(Effect.provide(afterReset)))
      assert.strictEqual(refused._tag, "LdapPasswordPolicyError")
      assert.strictEqual(refused._tag === "LdapPasswordPolicyError" && refused.reason, "changeAfterReset")
      const plainSearch = yield* Effect.flip(ldap.as(User1).searchAll(d.peopleDn).pipe(Effect.provide(afterReset)))
      assert.strictEqual(plainSearch._tag === "LdapOperationError" && plainSearch.resultCode, 50)
      // The change itself is allowed; then the user's operations run again.
      yield* withPolicy.modify(u.dn, Changes.make().replace("userPassword", "Own-Pass-2").build()).pipe(Effect.provide(afterReset))
      const changed = Layer.succeed(User1, Identity.make(u.dn, Redacted.make("Own-Pass-2")))
      const compared = yield* withPolicy.compare(d.users[1]!.dn, "uid", "user2").pipe(Effect.provide(changed))
      assert.isTrue(compared.matched)
      assert.isUndefined(compared.controls.passwordPolicy?.error)
    }).pipe(Effect.scoped))
})
