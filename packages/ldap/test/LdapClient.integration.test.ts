import { describe, expect, layer } from "@effect/vitest"
import { Identity } from "@tether/core"
import { Slapd } from "@tether/testkit"
import { Effect, Option, Redacted, Stream } from "effect"
import type { LdapClient } from "../src/index.ts"
import { Dn, Filter, Ldif } from "../src/index.ts"
import { adminClient } from "./support.ts"

class EndUser extends Identity.Service<EndUser>()("test/EndUser") {}

layer(Slapd.layer({ servers: 2, replication: true, tls: true, users: 5 }), { excludeTestServices: true })(
  "LdapClient on real slapd",
  (it) => {
    describe("operations", () => {
      it.effect("add, get, compare, modify, modifyDN, delete, whoami — as the service account and as a user", () =>
        Effect.gen(function*() {
          const directory = yield* Slapd.Slapd
          const ldap = yield* adminClient(directory)
          const ou = `ou=ops,${directory.suffix}`
          yield* ldap.add(ou, { objectClass: ["organizationalUnit"], ou: "ops" })
          const dn = Dn.make([["cn", "Ada, Countess"]], ou)
          yield* ldap.add(dn, { objectClass: ["inetOrgPerson"], cn: "Ada, Countess", sn: "Lovelace", mail: "ada@example.com" })
          const entry = yield* ldap.get(dn)
          expect(Option.isSome(entry) && entry.value.attributes["sn"]).toEqual(["Lovelace"])
          expect(yield* ldap.compare(dn, "sn", "Lovelace")).toBe(true)
          expect(yield* ldap.compare(dn, "sn", "Byron")).toBe(false)
          yield* ldap.modify(dn, [{ operation: "replace", attribute: "mail", values: ["ada@analytical.engine"] }])
          const moved = Dn.make([["cn", "Ada"]], ou)
          yield* ldap.modifyDN(dn, Dn.rdn("cn", "Ada"))
          expect(Option.isNone(yield* ldap.get(dn))).toBe(true)
          const after = yield* ldap.get(moved)
          expect(Option.isSome(after) && after.value.attributes["mail"]).toEqual(["ada@analytical.engine"])
          yield* ldap.delete(moved)
          yield* ldap.delete(ou)
          expect(Option.isNone(yield* ldap.get(moved))).toBe(true)

          expect(yield* ldap.whoami).toBe(`dn:${directory.adminDn}`)
          const user = directory.users[0]!
          const me = yield* ldap.as(EndUser).whoami.pipe(
            Effect.provideService(EndUser, Identity.make(user.dn, Redacted.make(user.password), { label: user.uid }))
          )
          expect(me).toBe(`dn:${user.dn}`)
        }).pipe(Effect.scoped))

      it.effect("paged search over 10,000 entries added in bulk, then modified in bulk", () =>
        Effect.gen(function*() {
          const directory = yield* Slapd.Slapd
          const ldap = yield* adminClient(directory, { pool: { max: 8 } })
          const ou = `ou=bulk,${directory.suffix}`
          yield* ldap.add(ou, { objectClass: ["organizationalUnit"], ou: "bulk" })
          const entries = Stream.range(1, 10_000).pipe(
            Stream.map((i): LdapClient.Entry => ({
              dn: `cn=item${i},${ou}`,
              attributes: { objectClass: ["person"], cn: [`item${i}`], sn: [`n${i % 7}`] }
            }))
          )
          const report = yield* ldap.addMany(entries, { concurrency: 8 })
          expect(report).toEqual({ done: 10_000, skipped: 0, failed: [] })

          const all = yield* ldap.searchAll(ou, { scope: "one", filter: "(objectClass=person)", pageSize: 200, attributes: ["cn"] })
          expect(all.length).toBe(10_000)
          expect(new Set(all.map((e) => e.dn)).size).toBe(10_000)
          const some = yield* ldap.searchAll(ou, { scope: "one", filter: Filter.filter`(sn=${"n3"})`, pageSize: 50 })
          expect(some.length).toBe(Array.from({ length: 10_000 }, (_, i) => i + 1).filter((i) => i % 7 === 3).length)
          // Taking the first entry does not wait for the other 9,999 (one page of 100 is read).
          const first = yield* Stream.runHead(ldap.search(ou, { scope: "one", pageSize: 100 }))
          expect(Option.isSome(first)).toBe(true)

          // Bulk modify: every entry's sn replaced; one modification of a missing entry is reported, not lost.
          const modifications = Stream.range(1, 500).pipe(
            Stream.map((i) => ({ dn: `cn=item${i},${ou}`, changes: [{ operation: "replace" as const, attribute: "sn", values: ["modified"] }] })),
            Stream.concat(Stream.make({ dn: `cn=missing,${ou}`, changes: [{ operation: "replace" as const, attribute: "sn", values: ["x"] }] }))
          )
          const modified = yield* ldap.modifyMany(modifications, { concurrency: 8 })
          expect(modified.done).toBe(500)
          expect(modified.failed.map((f) => f.dn)).toEqual([`cn=missing,${ou}`])
          const changed = yield* ldap.searchAll(ou, { scope: "one", filter: "(sn=modified)", attributes: ["cn"] })
          expect(changed.length).toBe(500)

          // Again, with every policy for existing entries.
          const again = entries.pipe(Stream.take(10))
          const failed = yield* ldap.addMany(again, { onExists: "fail" })
          expect(failed.failed.length).toBe(10)
          expect(failed.failed[0]!.error._tag === "LdapOperationError" && failed.failed[0]!.error.kind).toBe("already-exists")
          expect(yield* ldap.addMany(again, { onExists: "skip" })).toEqual({ done: 0, skipped: 10, failed: [] })
          expect(yield* ldap.addMany(again, { onExists: "replace" })).toEqual({ done: 10, skipped: 0, failed: [] })
        }).pipe(Effect.scoped))
    })

    describe("LDIF", () => {
      it.effect("importLdif applies entries and change records; search results written as LDIF parse back", () =>
        Effect.gen(function*() {
          const directory = yield* Slapd.Slapd
          const ldap = yield* adminClient(directory)
          const ou = `ou=ldif,${directory.suffix}`
          const text = [
            `dn: ${ou}`,
            "objectClass: organizationalUnit",
            "ou: ldif",
            "",
            `dn: cn=grace,${ou}`,
            "objectClass: person",
            "cn: grace",
            "sn:: SG9wcGVyIMOp",
            "",
            `dn: cn=alan,${ou}`,
            "objectClass: person",
            "cn: alan",
            "sn: Turing",
            "",
            `dn: cn=grace,${ou}`,
            "changetype: modify",
            "add: description",
            "description: compiler",
            "-",
            "",
            `dn: cn=alan,${ou}`,
            "changetype: modrdn",
            "newrdn: cn=turing",
            "deleteoldrdn: 1",
            ""
          ].join("\n")
          const report = yield* ldap.importLdif(Ldif.parse(Stream.make(text)), { concurrency: 1 })
          expect(report).toEqual({ done: 5, skipped: 0, failed: [] })
          const grace = yield* ldap.get(`cn=grace,${ou}`)
          expect(Option.isSome(grace) && grace.value.attributes).toMatchObject({ sn: ["Hopper é"], description: ["compiler"] })
          expect(Option.isSome(yield* ldap.get(`cn=turing,${ou}`))).toBe(true)

          const exported = yield* Stream.mkString(Ldif.write(
            ldap.search(ou, { scope: "one", attributes: ["cn", "sn", "objectClass"] }).pipe(
              Stream.map((e) => Ldif.entry(e.dn, e.attributes))
            )
          ))
          const back = yield* Ldif.parseString(exported)
          expect(back.map((r) => r.dn).sort()).toEqual([`cn=grace,${ou}`, `cn=turing,${ou}`])
          const again = yield* ldap.importLdif(Ldif.parse(Stream.make(text)), { concurrency: 1 })
          expect(again.failed.map((f) => f.error._tag === "LdapOperationError" && f.error.kind)).toContain("already-exists")
        }).pipe(Effect.scoped))
    })

    describe("TLS", () => {
      it.effect("ldaps and StartTLS with the test CA; no CA, or a wrong host name, is refused", () =>
        Effect.gen(function*() {
          const directory = yield* Slapd.Slapd
          const ca = [directory.caCertPem!]
          const ldaps = yield* adminClient(directory, { endpoints: [directory.server.ldapsUrl!], tls: { ca }, retry: false })
          expect(yield* ldaps.whoami).toBe(`dn:${directory.adminDn}`)
          const startTls = yield* adminClient(directory, {
            endpoints: [directory.servers[1]!.url],
            startTls: true,
            tls: { ca, servername: "localhost" },
            retry: false
          })
          expect(yield* startTls.whoami).toBe(`dn:${directory.adminDn}`)

          const untrusted = yield* adminClient(directory, { endpoints: [directory.server.ldapsUrl!], retry: false })
          const noCa = yield* Effect.flip(untrusted.whoami)
          expect(noCa._tag).toBe("LdapConnectionError")
          const wrongHost = yield* adminClient(directory, {
            endpoints: [directory.server.ldapsUrl!],
            tls: { ca, servername: "not-this-server.example" },
            retry: false
          })
          const hostError = yield* Effect.flip(wrongHost.whoami)
          expect(hostError._tag).toBe("LdapConnectionError")
        }).pipe(Effect.scoped))
    })

    describe("bad input", () => {
      it.effect("malformed DN, malformed filter, wrong password, unknown host: typed errors", () =>
        Effect.gen(function*() {
          const directory = yield* Slapd.Slapd
          const ldap = yield* adminClient(directory)
          const badDn = yield* Effect.flip(ldap.add("this is not a dn", { objectClass: ["person"], cn: "x", sn: "y" }))
          expect(badDn._tag === "LdapOperationError" && badDn.kind).toBe("invalid-dn")
          const badFilter = yield* Effect.flip(ldap.searchAll(directory.suffix, { filter: "(uid=x" }))
          expect(badFilter._tag === "LdapOperationError" && badFilter.kind).toBe("invalid-filter")
          const missing = yield* Effect.flip(ldap.delete(`cn=nobody,${directory.suffix}`))
          expect(missing._tag === "LdapOperationError" && missing.kind).toBe("no-such-object")

          const secret = "wrong-Passw0rd-4d2"
          const wrong = Identity.make(directory.users[1]!.dn, Redacted.make(secret))
          const denied = yield* Effect.flip(ldap.as(EndUser).whoami.pipe(Effect.provideService(EndUser, wrong)))
          expect(denied._tag).toBe("LdapInvalidCredentials")
          expect(denied.message).not.toContain(secret)

          const nowhere = yield* adminClient(directory, { endpoints: ["ldap://no-such-host.invalid:389"], retry: false })
          const unknownHost = yield* Effect.flip(nowhere.whoami)
          expect(unknownHost._tag).toBe("LdapConnectionError")
        }).pipe(Effect.scoped))
    })

    describe("failover", () => {
      it.effect("one of two replicating servers killed: every search still succeeds", () =>
        Effect.gen(function*() {
          const directory = yield* Slapd.Slapd
          const ldap = yield* adminClient(directory, {
            endpoints: directory.servers.map((s) => s.url),
            strategy: "round-robin",
            health: { interval: "250 millis", timeout: "250 millis" }
          })
          const search = ldap.searchAll(directory.peopleDn, { filter: "(objectClass=inetOrgPerson)", attributes: ["uid"] })
          for (let i = 0; i < 10; i++) expect((yield* search).length).toBe(5)
          yield* directory.kill(directory.servers[0]!)
          for (let i = 0; i < 30; i++) expect((yield* search).length).toBe(5)
          // The monitor marks it unhealthy after `unhealthyAfter` failed probes (pipelined searches may all have run
          // on a connection to the live server): keep searching (every one must succeed) until it does, up to 400
          // rounds — a count, generous on a loaded machine.
          const health = Effect.map(ldap.status, (s) => s.endpoints.find((e) => e.url === directory.servers[0]!.url)!.health)
          let rounds = 0
          while ((yield* health) !== "unhealthy" && rounds < 400) {
            expect((yield* search).length).toBe(5)
            yield* Effect.sleep("50 millis")
            rounds++
          }
          expect(yield* health).toBe("unhealthy")
        }).pipe(Effect.scoped))
    })
  }
)
