import { describe, expect, layer } from "@effect/vitest"
import { Slapd } from "@tether/testkit"
import { Effect, Option, Stream } from "effect"
import { execFileSync } from "node:child_process"
import type { LdapClient } from "../src/index.ts"
import { Ldif } from "../src/index.ts"
import { adminClient } from "./support.ts"

const JPEG = new Uint8Array([0xef, 0xbb, 0xbf, 0xff, 0xd8, 0xff, 0xe0, 0x00, 0x10, 0x4a, 0x46, 0x49, 0x46])
/** Octets that happen to be valid UTF-8: still bytes, because the schema says the attribute is binary. */
const UTF8_LOOKING = new Uint8Array(Buffer.from("just text"))
/** A real DER certificate (the server checks the Certificate syntax). */
const CERT = new Uint8Array(execFileSync("openssl", [
  "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", "/dev/null",
  "-subj", "/CN=fiona", "-days", "1", "-outform", "DER"
], { stdio: ["ignore", "pipe", "ignore"] }))

const b64 = (bytes: Uint8Array) => Buffer.from(bytes).toString("base64")

layer(Slapd.layer({ servers: 1, users: 3 }), { excludeTestServices: true })("LDAP values and results", (it) => {

  const importText = (ldap: LdapClient.LdapClient, text: string, options?: LdapClient.BulkOptions) =>
    ldap.importLdif(Ldif.parse(Stream.make(text), { keepGoing: true }), options)

  describe("binary attributes", () => {
    it.effect("come back as the exact bytes, decided from the server's schema, ;binary and the user's list", () =>
      Effect.gen(function*() {
        const directory = yield* Slapd.Slapd
        const ldap = yield* adminClient(directory)
        const ou = `ou=binary,${directory.suffix}`
        const dn = `uid=fiona,${ou}`
        const report = yield* importText(ldap, [
          `dn: ${ou}`,
          "objectClass: organizationalUnit",
          "ou: binary",
          "",
          `dn: ${dn}`,
          "objectClass: inetOrgPerson",
          "uid: fiona",
          "cn: Fiona",
          "sn: Jensen",
          "description: plain text",
          `jpegPhoto:: ${b64(JPEG)}`,
          `jpegPhoto:: ${b64(UTF8_LOOKING)}`,
          `userCertificate;binary:: ${b64(CERT)}`,
          "userPassword: {CLEARTEXT}secret",
          ""
        ].join("\n"))
        expect(report).toEqual({ done: 2, skipped: 0, failed: [] })

        const entry = Option.getOrThrow(yield* ldap.get(dn))
        const photos = entry.attributes["jpegPhoto"]!
        expect(photos.map((p) => p instanceof Uint8Array)).toEqual([true, true])
        expect(photos.map((p) => Buffer.from(p as Uint8Array).toString("hex")).sort()).toEqual(
          [JPEG, UTF8_LOOKING].map((p) => Buffer.from(p).toString("hex")).sort()
        )
        const cert = entry.attributes["userCertificate;binary"]![0]
        expect(cert).toBeInstanceOf(Uint8Array)
        expect(Buffer.from(cert as Uint8Array).equals(Buffer.from(CERT))).toBe(true)
        // Octet String (the schema's userPassword syntax) is bytes too; text attributes are strings.
        expect(entry.attributes["userPassword"]![0]).toBeInstanceOf(Uint8Array)
        expect(entry.attributes["cn"]).toEqual(["Fiona"])
        expect(entry.attributes["description"]).toEqual(["plain text"])

        // The user's list adds attributes; without the schema a built-in list still covers jpegPhoto.
        const listed = yield* adminClient(directory, { binaryAttributes: ["description"], readSchema: false })
        const seen = Option.getOrThrow(yield* listed.get(dn))
        expect(seen.attributes["description"]![0]).toBeInstanceOf(Uint8Array)
        expect(seen.attributes["jpegPhoto"]!.every((p) => p instanceof Uint8Array)).toBe(true)
        expect(typeof seen.attributes["userPassword"]![0]).toBe("string")

        // Written back as LDIF and parsed, the bytes are the same.
        const text = Ldif.writeString([Ldif.entry(entry.dn, entry.attributes)])
        const [again] = yield* Ldif.parseString(text)
        const parsedPhotos = again!._tag === "Entry" ? again!.attributes.get("jpegPhoto")! : []
        expect(parsedPhotos.some((p) => p instanceof Uint8Array && Buffer.from(p).equals(Buffer.from(JPEG)))).toBe(true)
      }).pipe(Effect.scoped))
  })

  describe("search results", () => {
    it.effect("truncation by sizeLimit and search references come through searchItems / searchWithInfo", () =>
      Effect.gen(function*() {
        const directory = yield* Slapd.Slapd
        const ldap = yield* adminClient(directory)
        const ou = `ou=results,${directory.suffix}`
        const lines = [`dn: ${ou}`, "objectClass: organizationalUnit", "ou: results", ""]
        for (let i = 0; i < 6; i++) lines.push(`dn: cn=d${i},${ou}`, "objectClass: device", `cn: d${i}`, "")
        // A referral object, added with the ManageDsaIT control (a control: line carried to the add).
        lines.push(
          `dn: ou=elsewhere,${ou}`,
          "control: 2.16.840.1.113730.3.4.2 true",
          "changetype: add",
          "objectClass: referral",
          "objectClass: extensibleObject",
          "ou: elsewhere",
          "ref: ldap://other.example.com/ou=elsewhere,dc=example,dc=com",
          ""
        )
        expect(yield* importText(ldap, lines.join("\n"), { concurrency: 1 })).toEqual({ done: 8, skipped: 0, failed: [] })

        const complete = yield* ldap.searchWithInfo(ou, { scope: "one", filter: "(objectClass=device)" })
        expect({ n: complete.entries.length, truncated: complete.truncated }).toEqual({ n: 6, truncated: undefined })
        expect(complete.references.length).toBe(1)
        expect(complete.references[0]).toMatch(/^ldap:\/\/other\.example\.com\/ou=elsewhere,dc=example,dc=com/)

        const cut = yield* ldap.searchWithInfo(ou, { scope: "one", filter: "(objectClass=device)", sizeLimit: 2 })
        expect({ n: cut.entries.length, truncated: cut.truncated }).toEqual({ n: 2, truncated: "sizeLimit" })
        const items = yield* Stream.runCollect(ldap.searchItems(ou, { scope: "one", filter: "(objectClass=device)", sizeLimit: 3 }))
        expect(items.map((i) => i._tag)).toEqual(["Entry", "Entry", "Entry", "Truncated"])
        expect(items[3]).toEqual({ _tag: "Truncated", reason: "sizeLimit" })
        // Existing users of search / searchAll still get the entries, without an error.
        expect((yield* ldap.searchAll(ou, { scope: "one", filter: "(objectClass=device)", sizeLimit: 2 })).length).toBe(2)
        // Paged: the references come with the page that holds them.
        const paged = yield* ldap.searchWithInfo(ou, { scope: "one", pageSize: 2 })
        expect({ n: paged.entries.length, refs: paged.references.length }).toEqual({ n: 6, refs: 1 })
      }).pipe(Effect.scoped))
  })

  describe("change records", () => {
    it.effect("increment, modrdn with deleteoldrdn 0 and 1, controls, as ldapmodify applies them", () =>
      Effect.gen(function*() {
        const directory = yield* Slapd.Slapd
        const ldap = yield* adminClient(directory)
        const ou = `ou=changes,${directory.suffix}`
        const text = [
          `dn: ${ou}`,
          "objectClass: organizationalUnit",
          "ou: changes",
          "",
          `dn: uid=ann,${ou}`,
          "objectClass: inetOrgPerson",
          "objectClass: posixAccount",
          "uid: ann",
          "cn: Ann",
          "sn: A",
          "uidNumber: 1000",
          "gidNumber: 100",
          "homeDirectory: /home/ann",
          "",
          `dn: uid=ann,${ou}`,
          "changetype: modify",
          "increment: uidNumber",
          "uidNumber: 5",
          "-",
          "",
          `dn: cn=keep,${ou}`,
          "objectClass: device",
          "cn: keep",
          "",
          `dn: cn=keep,${ou}`,
          "changetype: modrdn",
          "newrdn: cn=kept",
          "deleteoldrdn: 0",
          "",
          `dn: cn=drop,${ou}`,
          "objectClass: device",
          "cn: drop",
          "",
          `dn: cn=drop,${ou}`,
          "changetype: modrdn",
          "newrdn: cn=dropped",
          "deleteoldrdn: 1",
          "",
          // An unknown critical control: refused by the server, reported, nothing else stops.
          `dn: cn=kept,${ou}`,
          "control: 1.2.3.4.5.6 true",
          "changetype: delete",
          ""
        ]
        const report = yield* importText(ldap, text.join("\n"), { concurrency: 4 })
        expect(report.done).toBe(7)
        const line = text.indexOf("control: 1.2.3.4.5.6 true") // the record's dn: line, 1-based
        expect(report.failed.map((f) => [f.dn, f.line, f.error._tag])).toEqual([[`cn=kept,${ou}`, line, "LdapOperationError"]])
        const ann = Option.getOrThrow(yield* ldap.get(`uid=ann,${ou}`))
        expect(ann.attributes["uidNumber"]).toEqual(["1005"])
        const kept = Option.getOrThrow(yield* ldap.get(`cn=kept,${ou}`))
        expect([...kept.attributes["cn"]!].sort()).toEqual(["keep", "kept"])
        const dropped = Option.getOrThrow(yield* ldap.get(`cn=dropped,${ou}`))
        expect(dropped.attributes["cn"]).toEqual(["dropped"])
        // modify with increment through the API too.
        yield* ldap.modify(`uid=ann,${ou}`, [{ operation: "increment", attribute: "uidNumber", values: ["-1"] }])
        expect(Option.getOrThrow(yield* ldap.get(`uid=ann,${ou}`, ["uidNumber"])).attributes["uidNumber"]).toEqual(["1004"])
      }).pipe(Effect.scoped))
  })

  describe("importLdif", () => {
    it.effect("never aborts: 18 good entries kept around bad records, each reported with line, DN and typed reason", () =>
      Effect.gen(function*() {
        const directory = yield* Slapd.Slapd
        const ldap = yield* adminClient(directory)
        const ou = `ou=mixed,${directory.suffix}`
        const lines: Array<string> = [`dn: ${ou}`, "objectClass: organizationalUnit", "ou: mixed", ""]
        const expectedBad: Array<[string, string]> = []
        for (let i = 1; i <= 17; i++) {
          lines.push(`dn: cn=good${i},${ou}`, "objectClass: device", `cn: good${i}`, "")
          if (i === 3) {
            expectedBad.push([`cn=bad-parse,${ou}`, "LdifParseError"])
            lines.push(`dn: cn=bad-parse,${ou}`, "objectClass device", "")
          }
          if (i === 7) {
            expectedBad.push([`cn=bad-schema,${ou}`, "LdapOperationError"])
            lines.push(`dn: cn=bad-schema,${ou}`, "objectClass: device", "cn: bad-schema", "noSuchAttribute: x", "")
          }
          if (i === 11) {
            expectedBad.push([`cn=orphan,ou=missing,${ou}`, "LdapOperationError"])
            lines.push(`dn: cn=orphan,ou=missing,${ou}`, "objectClass: device", "cn: orphan", "")
          }
          if (i === 13) {
            expectedBad.push([`cn=bad-utf8,${ou}`, "LdifParseError"])
            lines.push(`dn: cn=bad-utf8,${ou}`, "objectClass: device", "cn: bad-utf8", "description: caf\u0000", "")
          }
        }
        const text = Buffer.from(lines.join("\n").replace("caf\u0000", "caf\u00e9"), "latin1")
        const progress: Array<LdapClient.Progress> = []
        const report = yield* ldap.importLdif(Ldif.parse(Stream.make(text), { keepGoing: true }), {
          concurrency: 8,
          onProgress: (p) => Effect.sync(() => progress.push(p))
        })
        expect(report.done).toBe(18)
        expect(report.failed.map((f) => [f.dn, f.error._tag]).sort()).toEqual(expectedBad.sort())
        for (const f of report.failed) {
          expect(lines[f.line! - 1]!.startsWith("dn: ") || lines[f.line! - 1]!.startsWith("objectClass device") || lines[f.line! - 1]!.startsWith("description")).toBe(true)
        }
        const last = progress[progress.length - 1]!
        expect(last).toMatchObject({ done: 18, failed: 4, seen: 22, finished: true })
        const kept = yield* ldap.searchAll(ou, { scope: "one", filter: "(cn=good*)" })
        expect(kept.length).toBe(17)
      }).pipe(Effect.scoped))

    it.effect("parent-safe at any concurrency: a 4-level tree in parent-before-child order imports completely", () =>
      Effect.gen(function*() {
        const directory = yield* Slapd.Slapd
        const ldap = yield* adminClient(directory, { pool: { max: 16 } })
        for (const concurrency of [8, 32]) {
          const root = `ou=tree${concurrency},${directory.suffix}`
          const lines = [`dn: ${root}`, "objectClass: organizationalUnit", `ou: tree${concurrency}`, ""]
          let n = 1
          for (let a = 0; a < 5; a++) {
            const ouA = `ou=a${a},${root}`
            lines.push(`dn: ${ouA}`, "objectClass: organizationalUnit", `ou: a${a}`, "")
            n++
            for (let b = 0; b < 5; b++) {
              const ouB = `ou=b${b},${ouA}`
              lines.push(`dn: ${ouB}`, "objectClass: organizationalUnit", `ou: b${b}`, "")
              n++
              for (let c = 0; c < 8; c++) {
                lines.push(`dn: cn=c${c},${ouB}`, "objectClass: device", `cn: c${c}`, "")
                n++
              }
            }
          }
          const report = yield* importText(ldap, lines.join("\n"), { concurrency })
          expect({ concurrency, done: report.done, failed: report.failed.length }).toEqual({ concurrency, done: n, failed: 0 })
          expect((yield* ldap.searchAll(root)).length).toBe(n)
        }
      }).pipe(Effect.scoped))
  })
})
