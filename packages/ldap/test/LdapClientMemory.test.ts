import { assert, describe, it } from "@effect/vitest"
import { Identity } from "@tether/core"
import { Effect, Fiber, Option, Redacted, Stream } from "effect"
import { TestClock } from "effect/testing"
import { Filter, LdapClient, LdapClientMemory, Ldif } from "../src/index.ts"

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

  it.effect("importLdif reports progress at least once a second (TestClock) and once at the end", () =>
    Effect.gen(function*() {
      const ldap = LdapClientMemory.make(seed)
      const progress: Array<LdapClient.Progress> = []
      // 10 records, one every 700 ms of (test) time.
      const records = Stream.range(1, 10).pipe(
        Stream.mapEffect((i) =>
          Effect.as(Effect.sleep("700 millis"), Ldif.entry(`cn=d${i},${base}`, { objectClass: ["device"], cn: [`d${i}`] }))
        )
      )
      const fiber = yield* Effect.forkChild(
        ldap.importLdif(records, { onProgress: (p) => Effect.sync(() => progress.push(p)) })
      )
      for (let i = 0; i < 20; i++) yield* TestClock.adjust("350 millis")
      const report = yield* Fiber.join(fiber)
      assert.deepStrictEqual(report, { done: 10, skipped: 0, failed: [] })
      // 7 s of imports: a report at every whole second (the one at 7 s may come with the end), with growing counts and a rate.
      const ticks = progress.filter((p) => !p.finished).slice(0, 6)
      assert.deepStrictEqual(ticks.map((p) => p.elapsedMillis), [1000, 2000, 3000, 4000, 5000, 6000])
      assert.isAtMost(progress.filter((p) => !p.finished).length, 7)
      assert.strictEqual(progress.filter((p) => p.finished).length, 1)
      assert.deepStrictEqual(ticks.map((p) => p.done), [1, 2, 4, 5, 7, 8])
      assert.deepStrictEqual(ticks.map((p) => p.seen), [1, 2, 4, 5, 7, 8])
      assert.strictEqual(ticks[1]!.ratePerSecond, 1)
      const last = progress[progress.length - 1]!
      assert.deepStrictEqual(last, { done: 10, skipped: 0, failed: 0, seen: 10, elapsedMillis: 7000, ratePerSecond: 10 / 7, finished: true })
    }))

  it.effect("importLdif keeps going past unparsable records and orders children after parents", () =>
    Effect.gen(function*() {
      const ldap = LdapClientMemory.make(seed)
      const text = [
        `dn: ou=a,${base}`, "objectClass: organizationalUnit", "ou: a", "",
        `dn: ou=b,ou=a,${base}`, "objectClass: organizationalUnit", "ou: b", "",
        `dn: cn=broken,${base}`, "cn broken", "",
        `dn: cn=c,ou=b,ou=a,${base}`, "objectClass: device", "cn: c", "",
        `dn: cn=c,ou=b,ou=a,${base}`, "changetype: modrdn", "newrdn: cn=d", "deleteoldrdn: 0", "",
        `dn: cn=d,ou=b,ou=a,${base}`, "changetype: modify", "add: description", "description: renamed", "-", ""
      ].join("\n")
      const report = yield* ldap.importLdif(Ldif.parse(Stream.make(text), { keepGoing: true }), { concurrency: 16 })
      assert.strictEqual(report.done, 5)
      assert.deepStrictEqual(report.failed.map((f) => [f.dn, f.line, f.error._tag]), [[`cn=broken,${base}`, 10, "LdifParseError"]])
      const d = Option.getOrThrow(yield* ldap.get(`cn=d,ou=b,ou=a,${base}`))
      assert.deepStrictEqual(d.attributes["cn"], ["c", "d"])
      assert.deepStrictEqual(d.attributes["description"], ["renamed"])
    }))
})
