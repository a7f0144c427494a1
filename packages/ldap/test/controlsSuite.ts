/**
 * One suite of request/response-control behaviour, run against real slapd
 * (LdapControls.integration.test.ts) and LdapClientMemory
 * (LdapControlsMemory.test.ts): the memory client must answer as the server does.
 */
import { assert } from "@effect/vitest"
import { Identity } from "@tether/core"
import { Effect, Layer, Option, Redacted } from "effect"
import { Changes, Entries, PasswordModify, RequestControl, Sasl } from "../src/index.ts"
import type { LdapClient } from "../src/index.ts"

class Someone extends Identity.Service<Someone>()("test/Someone") {}

export interface Context {
  /** Bound as the directory's administrator. */
  readonly ldap: LdapClient.LdapClient
  readonly peopleDn: string
  /** uid=user1 … user6 under peopleDn, each with sn, cn, mail and its password (stored in clear: SCRAM needs it). */
  readonly users: ReadonlyArray<{ readonly dn: string; readonly uid: string; readonly password: string }>
}

export type Register<R> = (name: string, body: () => Effect.Effect<void, unknown, R>) => void

const byUid = { attribute: "uid", orderingRule: "caseIgnoreOrderingMatch" }

export const controlsSuite = <R>(test: Register<R>, context: Effect.Effect<Context, unknown, R>) => {
  test("sort (RFC 2891): the entries come back in the requested order, with the sort result", () =>
    Effect.gen(function*() {
      const { ldap, peopleDn } = yield* context
      const down = yield* ldap.withControls([RequestControl.sort([{ ...byUid, reverse: true }])]).search(peopleDn, { filter: "(uid=user*)", attributes: ["uid"] })
      const uids = down.entries.map((e) => String(e.attributes["uid"]))
      assert.isAbove(uids.length, 5)
      assert.deepStrictEqual(uids, [...uids].sort().reverse())
      assert.strictEqual(uids[uids.length - 1], "user1")
      assert.deepStrictEqual(down.controls.sort, { resultCode: 0 })
      // Paged and sorted: the pages are slices of one sorted result.
      const up = yield* ldap.withControls([RequestControl.sort([byUid])]).search(peopleDn, { filter: "(uid=user*)", attributes: ["uid"], pageSize: 2 })
      assert.deepStrictEqual(up.entries.map((e) => String(e.attributes["uid"])), [...uids].reverse())
    }))

  test("virtual list view: a window around a 1-based offset of the sorted result, with its position and the list's size", () =>
    Effect.gen(function*() {
      const { ldap, peopleDn } = yield* context
      const all = yield* ldap.withControls([RequestControl.sort([byUid])]).search(peopleDn, { filter: "(uid=user*)", attributes: ["uid"] })
      const window = yield* ldap.withControls([
        RequestControl.sort([byUid]),
        RequestControl.virtualListView({ offset: 3, beforeCount: 1, afterCount: 1 })
      ]).search(peopleDn, { filter: "(uid=user*)", attributes: ["uid"] })
      assert.deepStrictEqual(window.entries.map((e) => e.dn), all.entries.slice(1, 4).map((e) => e.dn))
      assert.deepStrictEqual(window.controls.virtualListView, { targetPosition: 3, contentCount: all.entries.length, resultCode: 0 })
      // Without a sort, the server refuses (OpenLDAP: virtualListViewError, 76).
      const unsorted = yield* Effect.flip(ldap.withControls([RequestControl.virtualListView({ offset: 1 })]).search(peopleDn, { filter: "(uid=user*)" }))
      assert.strictEqual(unsorted._tag === "LdapOperationError" && unsorted.resultCode, 76)
    }))

  test("assertion (RFC 4528): a write applies only when the entry matches; a bad filter is invalid-filter", () =>
    Effect.gen(function*() {
      const { ldap, users } = yield* context
      const dn = users[1]!.dn
      const refused = yield* Effect.flip(
        ldap.withControls([RequestControl.assertion("(sn=Nobody)")]).modify(dn, Changes.make().replace("description", "asserted-wrong").build())
      )
      assert.strictEqual(refused._tag === "LdapOperationError" && refused.kind, "assertion-failed")
      assert.strictEqual(refused._tag === "LdapOperationError" && refused.resultCode, 122)
      assert.isUndefined(Option.getOrThrow(yield* ldap.get(dn, ["description"])).attributes["description"])
      yield* ldap.withControls([RequestControl.assertion(`(uid=${users[1]!.uid})`)]).modify(dn, Changes.make().replace("description", "asserted").build())
      assert.deepStrictEqual(Option.getOrThrow(yield* ldap.get(dn, ["description"])).attributes["description"], ["asserted"])
      const bad = yield* Effect.flip(ldap.withControls([RequestControl.assertion("(uid=unbalanced")]).delete(dn))
      assert.strictEqual(bad._tag === "LdapOperationError" && bad.kind, "invalid-filter")
      assert.isTrue(yield* Entries.exists(ldap, dn))
      // On compare and get too.
      const compared = yield* Effect.flip(ldap.withControls([RequestControl.assertion("(sn=Nobody)")]).compare(dn, "uid", users[1]!.uid))
      assert.strictEqual(compared._tag === "LdapOperationError" && compared.kind, "assertion-failed")
    }))

  test("pre-read and post-read (RFC 4527): values before and after modify, add, rename and delete", () =>
    Effect.gen(function*() {
      const { ldap, peopleDn, users } = yield* context
      const dn = users[2]!.dn
      yield* ldap.modify(dn, Changes.make().replace("title", "before").build())
      const modified = yield* ldap.withControls([RequestControl.preRead(["title", "uid"]), RequestControl.postRead(["title"])])
        .modify(dn, Changes.make().replace("title", "after").build())
      assert.deepStrictEqual(modified.preRead, { dn, attributes: { title: ["before"], uid: [users[2]!.uid] } })
      assert.deepStrictEqual(modified.postRead, { dn, attributes: { title: ["after"] } })

      const temp = `uid=readback,${peopleDn}`
      const added = yield* ldap.withControls([RequestControl.postRead(["sn", "cn"])])
        .add(temp, { objectClass: ["inetOrgPerson"], uid: "readback", sn: "Back", cn: "Read Back" })
      assert.deepStrictEqual(added.postRead?.attributes, { sn: ["Back"], cn: ["Read Back"] })
      const renamedDn = `uid=readback2,${peopleDn}`
      const renamed = yield* ldap.withControls([RequestControl.postRead(["uid"])]).modifyDN(temp, "uid=readback2")
      assert.strictEqual(renamed.postRead?.dn.toLowerCase(), renamedDn.toLowerCase())
      assert.deepStrictEqual(renamed.postRead?.attributes["uid"], ["readback2"])
      const deleted = yield* ldap.withControls([RequestControl.preRead(["sn"])]).delete(renamedDn)
      assert.deepStrictEqual(deleted.preRead?.attributes, { sn: ["Back"] })
      assert.isFalse(yield* Entries.exists(ldap, renamedDn))
    }))

  test("a control the server does not advertise is LdapUnsupported, and nothing is sent", () =>
    Effect.gen(function*() {
      const { ldap, users } = yield* context
      const dn = users[3]!.dn
      const refused = yield* Effect.flip(
        ldap.withControls([RequestControl.other("1.3.6.1.4.1.99999.1", { critical: true })]).modify(dn, Changes.make().replace("title", "unsent").build())
      )
      assert.strictEqual(refused._tag, "LdapUnsupported")
      assert.strictEqual(refused._tag === "LdapUnsupported" && refused.oid, "1.3.6.1.4.1.99999.1")
      assert.isUndefined(Option.getOrThrow(yield* ldap.get(dn, ["title"])).attributes["title"])
      const rootDse = yield* ldap.rootDse
      assert.include(rootDse.supportedControls, "1.3.6.1.1.12")
      assert.notInclude(rootDse.supportedControls, "1.3.6.1.4.1.99999.1")
    }))

  test("get with controls: the entry or none, as get", () =>
    Effect.gen(function*() {
      const { ldap, peopleDn, users } = yield* context
      const found = yield* ldap.withControls([RequestControl.manageDsaIT()]).get(users[0]!.dn, ["uid"])
      assert.deepStrictEqual(Option.map(found.entry, (e) => e.attributes["uid"]), Option.some([users[0]!.uid]))
      const missing = yield* ldap.withControls([RequestControl.manageDsaIT()]).get(`uid=nobody,${peopleDn}`)
      assert.isTrue(Option.isNone(missing.entry))
    }))

  test("SASL SCRAM-SHA-256 and PLAIN identities: the user name maps to the entry; a wrong password is LdapInvalidCredentials", () =>
    Effect.gen(function*() {
      const { ldap, users } = yield* context
      const u = users[0]!
      const whoAs = (credentials: Identity.Credentials) => ldap.as(Someone).whoami.pipe(Effect.provide(Layer.succeed(Someone, credentials)))
      for (const mechanism of ["SCRAM-SHA-256", "PLAIN"] as const) {
        assert.strictEqual((yield* whoAs(Sasl.credentials(mechanism, u.uid, Redacted.make(u.password)))).toLowerCase(), `dn:${u.dn}`.toLowerCase())
        const wrong = yield* Effect.flip(whoAs(Sasl.credentials(mechanism, u.uid, Redacted.make("wrong-password"))))
        assert.strictEqual(wrong._tag === "LdapInvalidCredentials" && wrong.resultCode, 49)
      }
      assert.includeMembers([...(yield* ldap.rootDse).supportedSaslMechanisms], ["PLAIN", "SCRAM-SHA-1", "SCRAM-SHA-256"])
    }))

  test("Password Modify (RFC 3062) through the pool: a reset, a generated password, a wrong old password", () =>
    Effect.gen(function*() {
      const { ldap, users } = yield* context
      const [u, v] = [users[3]!, users[5]!]
      const canBind = (dn: string, password: string) =>
        ldap.as(Someone).whoami.pipe(
          Effect.provide(Layer.succeed(Someone, Identity.make(dn, Redacted.make(password)))),
          Effect.as(true),
          Effect.catchTag("LdapInvalidCredentials", () => Effect.succeed(false))
        )
      assert.isTrue(Option.isNone(yield* PasswordModify.modifyWith(ldap, { user: u.dn, newPassword: Redacted.make("reset-Pass-4711") })))
      assert.isTrue(yield* canBind(u.dn, "reset-Pass-4711"))
      assert.isFalse(yield* canBind(u.dn, u.password))
      const generated = yield* PasswordModify.modifyWith(ldap, { user: v.dn })
      assert.isTrue(Option.isSome(generated))
      assert.isTrue(yield* canBind(v.dn, Redacted.value(Option.getOrThrow(generated))))
      // The user's own change, with a wrong old password: refused, nothing changed.
      const asUser = ldap.as(Someone)
      const wrongOld = yield* Effect.flip(
        PasswordModify.modifyWith(asUser, { oldPassword: Redacted.make("not-it"), newPassword: Redacted.make("other-Pass-4711") }).pipe(
          Effect.provide(Layer.succeed(Someone, Identity.make(u.dn, Redacted.make("reset-Pass-4711"))))
        )
      )
      assert.strictEqual(wrongOld._tag, "LdapOperationError")
      // The answer, not an overloaded server: not retried, not counted by the breaker.
      assert.strictEqual(wrongOld._tag === "LdapOperationError" && wrongOld.kind, "other")
      assert.strictEqual(wrongOld._tag === "LdapOperationError" && wrongOld.resultCode, 53)
      assert.isTrue(yield* canBind(u.dn, "reset-Pass-4711"))
      assert.isFalse(yield* canBind(u.dn, "other-Pass-4711"))
    }))
}
