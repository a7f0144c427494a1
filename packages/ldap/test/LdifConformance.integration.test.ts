/**
 * LDIF conformance: RFC 2849's examples (fixtures/ldif) and realistic files
 * written here (a few hundred entries with UTF-8, folding inside characters,
 * binary values, certificates; change records with increment and modrdn with
 * deleteoldrdn 0 and 1) are each parsed, written back and parsed again (same
 * records), then imported into one slapd through Tether and into a second,
 * fresh slapd with `ldapmodify -a -c`; the two directories' `ldapsearch -LLL`
 * dumps must be equal value by value, and both must refuse the same number
 * of records. The second describe does the same with real-world files
 * (fixtures/ldif-real: OpenLDAP's and ApacheDS's test data, sources and
 * licences in its README.md), and there also requires the same refused
 * records (result code and DN of each, from `ldapmodify -S`).
 */
import { expect, layer } from "@effect/vitest"
import { Slapd } from "@tether/testkit"
import { Effect, Stream } from "effect"
import { execFile, execFileSync } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { Ldif } from "../src/index.ts"
import { adminClient } from "./support.ts"

const FIXTURES = path.join(import.meta.dirname, "fixtures", "ldif")
const SUFFIX = "dc=airius,dc=com"

const run = (command: string, args: ReadonlyArray<string>) =>
  Effect.promise(() =>
    new Promise<{ code: number; stdout: string; stderr: string }>((resolve) =>
      execFile(command, [...args], { maxBuffer: 256 * 1024 * 1024, timeout: 300_000 }, (error, stdout, stderr) =>
        resolve({ code: error === null ? 0 : typeof error.code === "number" ? error.code : 1, stdout, stderr })
      )
    )
  )

/**
 * A directory dump as sorted records of sorted lines (seeded users' password hashes left out: they are salted;
 * `seededUsers: false` keeps every password, for a directory seeded with no users).
 */
const dump = (directory: Slapd.Directory, server: Slapd.Server, seededUsers = true) =>
  Effect.map(
    run("ldapsearch", [
      "-LLL", "-x", "-o", "ldif-wrap=no", "-H", server.url, "-D", directory.adminDn, "-w", directory.adminPassword,
      "-b", directory.suffix, "(objectClass=*)", "*"
    ]),
    ({ stdout }) =>
      stdout.split(/\n\n+/).filter((r) => r.trim() !== "").map((record) => {
        const [dn, ...rest] = record.trim().split("\n")
        const seeded = seededUsers && dn!.toLowerCase().endsWith(`,${directory.peopleDn.toLowerCase()}`)
        return [dn!, ...rest.filter((l) => !(seeded && /^userPassword:/i.test(l))).sort()].join("\n")
      }).sort()
  )

/** Errors ldapmodify -c reported. */
const ldapmodifyErrors = (stderr: string) => stderr.split("\n").filter((l) => /^ldap_\w+: /.test(l)).length

const PHOTO = Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf, 0xff, 0xd8, 0xff, 0xe0]), Buffer.from(Array.from({ length: 400 }, (_, i) => (i * 7) % 256))])
const CERT = execFileSync("openssl", [
  "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", "/dev/null",
  "-subj", "/CN=conformance", "-days", "1", "-outform", "DER"
], { stdio: ["ignore", "pipe", "ignore"] })

/** A line folded every `width` bytes (inside UTF-8 characters too: folding is on bytes). */
const folded = (line: string, width: number): Buffer => {
  const bytes = Buffer.from(line, "utf8")
  const parts: Array<Buffer> = [bytes.subarray(0, width)]
  for (let i = width; i < bytes.length; i += width - 1) parts.push(Buffer.concat([Buffer.from(" "), bytes.subarray(i, i + width - 1)]))
  return Buffer.concat(parts.flatMap((p) => [p, Buffer.from("\n")]))
}

const NAMES = ["José Ñúñez", "Zoë Brontë", "山田 太郎", "Ærøskøbing Ål", "Łukasz Żółć", "Ada Lovelace", "Ελένη Παπαδοπούλου", "Иван Петров"]

const directoryFile = (count: number): Buffer => {
  const out: Array<Buffer> = [Buffer.from("version: 1\n\n")]
  const text = (s: string) => out.push(Buffer.from(s))
  text(`dn: ou=staff,${SUFFIX}\nobjectClass: organizationalUnit\nou: staff\ndescription: Everyone\n\n`)
  for (let i = 1; i <= count; i++) {
    const name = `${NAMES[i % NAMES.length]} ${i}`
    text(`dn: uid=u${i},ou=staff,${SUFFIX}\n`)
    text("objectClass: inetOrgPerson\n")
    if (i % 20 === 0) text("objectClass: posixAccount\n")
    text(`uid: u${i}\n`)
    out.push(folded(`cn: ${name}`, 13))
    text(`sn: ${name.split(" ")[1] ?? "x"}\n`)
    text(`mail: u${i}@airius.com\n`)
    out.push(folded(`description: ${`${name} works on project ${i % 13}; `.repeat(4)}`, 61))
    if (i % 7 === 0) text(`title:: ${Buffer.from(` leading space ${i}`).toString("base64")}\n`)
    if (i % 9 === 0) text(`l:: ${Buffer.from(`:colon first ${i}`).toString("base64")}\n`)
    if (i % 10 === 0) text(`jpegPhoto:: ${Buffer.concat([PHOTO, Buffer.from([i % 256])]).toString("base64")}\n`)
    if (i % 25 === 0) out.push(folded(`userCertificate;binary:: ${CERT.toString("base64")}`, 76))
    if (i % 20 === 0) text(`uidNumber: ${1000 + i}\ngidNumber: 100\nhomeDirectory: /home/u${i}\n`)
    text("\n")
  }
  for (let g = 1; g <= 5; g++) {
    text(`dn: cn=group${g},ou=staff,${SUFFIX}\nobjectClass: groupOfNames\ncn: group${g}\n`)
    for (let i = g; i <= count; i += 5) text(`member: uid=u${i},ou=staff,${SUFFIX}\n`)
    text("\n")
  }
  return Buffer.concat(out)
}

const changesFile = (count: number): string => {
  const lines: Array<string> = ["version: 1", ""]
  lines.push(`dn: ou=alumni,${SUFFIX}`, "changetype: add", "objectClass: organizationalUnit", "ou: alumni", "")
  for (let i = 20; i <= count; i += 20) {
    lines.push(`dn: uid=u${i},ou=staff,${SUFFIX}`, "changetype: modify", "increment: uidNumber", `uidNumber: ${i % 3 === 0 ? -7 : 5}`, "-", "")
  }
  for (let i = 3; i <= count; i += 30) {
    lines.push(`dn: uid=u${i},ou=staff,${SUFFIX}`, "changetype: modrdn", `newrdn: uid=renamed${i}`, "deleteoldrdn: 0", "")
    lines.push(`dn: uid=renamed${i},ou=staff,${SUFFIX}`, "changetype: modify", "replace: description", `description: renamed from u${i}`, "-",
      "add: jpegPhoto", `jpegPhoto:: ${PHOTO.toString("base64")}`, "-", "")
  }
  for (let i = 5; i <= count; i += 40) {
    lines.push(`dn: uid=u${i},ou=staff,${SUFFIX}`, "changetype: modrdn", `newrdn: uid=gone${i}`, "deleteoldrdn: 1", `newsuperior: ou=alumni,${SUFFIX}`, "")
  }
  for (let i = 11; i <= count; i += 50) lines.push(`dn: uid=u${i},ou=staff,${SUFFIX}`, "changetype: delete", "")
  // Refused by the server in both imports: a missing entry, an existing one, a schema violation.
  lines.push(`dn: uid=nobody,ou=staff,${SUFFIX}`, "changetype: modify", "replace: sn", "sn: x", "-", "")
  lines.push(`dn: uid=u2,ou=staff,${SUFFIX}`, "changetype: add", "objectClass: inetOrgPerson", "uid: u2", "cn: again", "sn: again", "")
  lines.push(`dn: uid=u4,ou=staff,${SUFFIX}`, "changetype: modify", "add: noSuchAttribute", "noSuchAttribute: x", "-", "")
  lines.push(`dn: uid=u6,ou=staff,${SUFFIX}`, "changetype: modify", "delete: mail", "mail: not-there@airius.com", "-", "")
  return lines.join("\n")
}

/** The directory's two servers (one written by Tether, one by ldapmodify) and Tether's client on the first. */
const tetherAndTools = Effect.gen(function*() {
  const directory = yield* Slapd.Slapd
  const [viaTether, viaTools] = directory.servers
  const ldap = yield* adminClient(directory, { endpoints: [viaTether!.url], pool: { max: 8 } })
  return { directory, ldap, viaTether, viaTools }
})

layer(Slapd.layer({ servers: 2, replication: false, users: 3, suffix: SUFFIX }), { excludeTestServices: true })(
  "LDIF conformance against ldapmodify",
  (it) => {
    const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "ldif-conformance-"))
    const photoPath = path.join(tmp, "fiona.jpg")
    fs.writeFileSync(photoPath, PHOTO)

    /** The files, in order: fixtures (with the photo's URL filled in), then the generated ones. */
    const files = (): ReadonlyArray<string> => {
      const out: Array<string> = []
      for (const name of fs.readdirSync(FIXTURES).filter((f) => f.endsWith(".ldif")).sort()) {
        const target = path.join(tmp, name)
        fs.writeFileSync(target, fs.readFileSync(path.join(FIXTURES, name), "latin1").replaceAll("@PHOTO@", `file://${photoPath}`), "latin1")
        out.push(target)
      }
      const directory = path.join(tmp, "10-directory.ldif")
      fs.writeFileSync(directory, directoryFile(300))
      const changes = path.join(tmp, "11-changes.ldif")
      fs.writeFileSync(changes, changesFile(300))
      out.push(directory, changes)
      return out
    }

    it.effect("every file: parse = parse(write(parse)); Tether's import = ldapmodify -a -c's, value by value", () =>
      Effect.gen(function*() {
        const { directory, ldap, viaTether, viaTools } = yield* tetherAndTools
        const urls = { baseDirectory: tmp }
        const summary: Array<string> = []
        for (const file of files()) {
          const name = path.basename(file)
          // Round trip: written back and parsed again, the records are the same (every byte of every value).
          const records = yield* Stream.runCollect(Ldif.parseFile(file, { urls }))
          const again = yield* Ldif.parseString(Ldif.writeString(records))
          expect(again, name).toEqual(records)

          const report = yield* ldap.importLdif(Ldif.parseFile(file, { urls, keepGoing: true }), { concurrency: 8 })
          const tools = yield* run("ldapmodify", [
            "-x", "-a", "-c", "-H", viaTools!.url, "-D", directory.adminDn, "-w", directory.adminPassword, "-f", file
          ])
          const refusedByTools = ldapmodifyErrors(tools.stderr)
          summary.push(`${name}: ${records.length} records, Tether done ${report.done} failed ${report.failed.length}, ldapmodify failed ${refusedByTools}`)
          expect({ name, failed: report.failed.length }).toEqual({ name, failed: refusedByTools })
          expect(report.failed.every((f) => f.line !== undefined && f.error._tag === "LdapOperationError"), name).toBe(true)

          const [a, b] = [yield* dump(directory, viaTether!), yield* dump(directory, viaTools!)]
          expect(a.length, name).toBe(b.length)
          expect(a, name).toEqual(b)
        }
        yield* Effect.logInfo(summary.join("\n"))
        const finalDump = yield* dump(directory, viaTether!)
        // The import did something: a few hundred entries, binary values included.
        expect(finalDump.length).toBeGreaterThan(300)
        expect(finalDump.filter((r) => r.includes("jpegPhoto::")).length).toBeGreaterThan(30)
        expect(finalDump.some((r) => r.includes("userCertificate;binary::"))).toBe(true)
        fs.rmSync(tmp, { recursive: true, force: true })
      }).pipe(Effect.scoped), 300_000)
  }
)

/**
 * Real-world files (fixtures/ldif-real, sources and licences in its README.md): OpenLDAP's own test
 * data and Apache Directory Server's example directory, byte for byte as published, with their own
 * suffix dc=example,dc=com (nothing adapted). Folded lines, folded comments, base64 values (UTF-8
 * bytes, a leading space, JPEG photos), referral objects, change records (modify with add/delete/
 * replace/increment, add, delete, modrdn) and a 1,011-entry directory. slapd here loads only core,
 * cosine, inetorgperson and nis: records needing OpenLDAP's test schema (OpenLDAPperson, testPerson,
 * OpenLDAPdisplayableObject, …) are refused, and both imports must refuse the same ones.
 */
const REAL = path.join(import.meta.dirname, "fixtures", "ldif-real")

/** `dn: …` or `dn:: base64` (unfolded) as text, lowercased. */
const dnText = (line: string): string | undefined => {
  const dn = /^dn:(:?) ?(.*)$/.exec(line)
  return dn === null ? undefined : (dn[1] === ":" ? Buffer.from(dn[2]!, "base64").toString("utf8") : dn[2]!).toLowerCase()
}

/**
 * The records ldapmodify -S rejected ("# Error: <text> (<result code>)…" then the record), as sorted
 * "<result code> <dn>" keys.
 */
const rejected = (file: string): ReadonlyArray<string> =>
  fs.readFileSync(file, "utf8").split(/^(?=# Error: )/m).filter((r) => r.startsWith("# Error: ")).map((r) => {
    const code = /^# Error: .*? \((-?\d+)\)/.exec(r)?.[1]
    const dn = r.replace(/\r?\n /g, "").split(/\r?\n/).map(dnText).find((d) => d !== undefined)
    return `${code} ${dn}`
  }).sort()

/** The DN on line `line` (1-based) of a file, unfolded: where a failure's line must point. */
const dnAtLine = (lines: ReadonlyArray<string>, line: number): string | undefined => {
  let text = lines[line - 1] ?? ""
  for (let i = line; i < lines.length && lines[i]!.startsWith(" "); i++) text += lines[i]!.slice(1)
  return dnText(text)
}

layer(Slapd.layer({ servers: 2, replication: false, users: 0, suffix: "dc=example,dc=com" }), { excludeTestServices: true })(
  "LDIF conformance against ldapmodify: real-world files",
  (it) => {
    const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "ldif-real-"))
    it.effect("every collected file: parse = parse(write(parse)); Tether's import = ldapmodify -a -c's, value by value", () =>
      Effect.gen(function*() {
        const { directory, ldap, viaTether, viaTools } = yield* tetherAndTools
        const summary: Array<string> = []
        const counts: Record<string, { records: number; done: number; failed: number }> = {}
        for (const name of fs.readdirSync(REAL).filter((f) => f.endsWith(".ldif")).sort()) {
          const file = path.join(REAL, name)
          const records = yield* Stream.runCollect(Ldif.parseFile(file))
          const again = yield* Ldif.parseString(Ldif.writeString(records))
          expect(again, name).toEqual(records)

          const report = yield* ldap.importLdif(Ldif.parseFile(file, { keepGoing: true }), { concurrency: 8 })
          const rejects = path.join(tmp, `${name}.rejects`)
          const tools = yield* run("ldapmodify", [
            "-x", "-a", "-c", "-H", viaTools!.url, "-D", directory.adminDn, "-w", directory.adminPassword, "-f", file, "-S", rejects
          ])
          const refusedByTools = ldapmodifyErrors(tools.stderr)
          // The same records refused, for the same reason (result code and DN of each), and each failure's
          // line is the line of its record's dn.
          expect({
            name,
            refused: report.failed.map((f) =>
              `${f.error._tag === "LdapOperationError" ? f.error.resultCode : f.error._tag} ${f.dn.toLowerCase()}`
            ).sort()
          }).toEqual({ name, refused: rejected(rejects) })
          const lines = fs.readFileSync(file, "utf8").split(/\r?\n/)
          expect(report.failed.map((f) => [f.line, dnAtLine(lines, f.line ?? 0)]), name)
            .toEqual(report.failed.map((f) => [f.line, f.dn.toLowerCase()]))
          counts[name] = { records: records.length, done: report.done, failed: report.failed.length }
          summary.push(`${name}: ${records.length} records, Tether done ${report.done} failed ${report.failed.length}, ldapmodify failed ${refusedByTools}`)
          expect({ name, failed: report.failed.length }).toEqual({ name, failed: refusedByTools })
          expect(report.failed.every((f) => f.line !== undefined && f.error._tag === "LdapOperationError"), name).toBe(true)

          const [a, b] = [yield* dump(directory, viaTether!, false), yield* dump(directory, viaTools!, false)]
          expect(a.length, name).toBe(b.length)
          expect(a, name).toEqual(b)
        }
        yield* Effect.logInfo(summary.join("\n"))
        const finalDump = yield* dump(directory, viaTether!, false)
        // The files reached the directory: the 1,011-entry directory, the photos, the change records' effects.
        expect(finalDump.length).toBeGreaterThan(1000)
        expect(finalDump.filter((r) => /^jpegPhoto::/im.test(r)).length).toBe(2)
        // test-ordered's multi-byte UTF-8 description (base64) on an organizationalUnit, and its4184's modified group.
        expect(finalDump.some((r) => /^dn: ou=Information Technology Division,/i.test(r) && /^description:: /m.test(r))).toBe(true)
        expect(finalDump.some((r) => /^dn: cn=Another Group,/i.test(r))).toBe(true)
        expect(counts["25-openldap-its9282-exampledb.ldif"]).toEqual({ records: 1011, done: 1010, failed: 1 })
        fs.rmSync(tmp, { recursive: true, force: true })
      }).pipe(Effect.scoped), 300_000)
  }
)
