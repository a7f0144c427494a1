import { assert, describe, it } from "@effect/vitest"
import { Effect, Stream } from "effect"
import * as fc from "fast-check"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { Ldif } from "../src/index.ts"

const bytes = (...parts: ReadonlyArray<string | ReadonlyArray<number>>): Uint8Array =>
  Buffer.concat(parts.map((p) => (typeof p === "string" ? Buffer.from(p, "utf8") : Buffer.from(p))))

const parseBytes = (input: Uint8Array, options?: Omit<Ldif.ParseOptions, "keepGoing">) =>
  Stream.runCollect(Ldif.parse(Stream.make(input), { ...options, keepGoing: false }))

const items = (text: string | Uint8Array, options?: Omit<Ldif.ParseOptions, "keepGoing">) =>
  Stream.runCollect(Ldif.parse(Stream.make(text), { ...options, keepGoing: true }))

const attrs = (record: Ldif.LdifRecord | undefined): Ldif.Attributes => {
  if (record === undefined || (record._tag !== "Entry" && record._tag !== "Add")) throw new Error(`not an entry: ${record?._tag}`)
  return record.attributes
}

const JPEG_WITH_BOM = [0xef, 0xbb, 0xbf, 0xff, 0xd8, 0xff, 0xe0, 0x00, 0x10]

describe("Ldif: hostile input", () => {
  it.effect("attribute types that are Object.prototype names are ordinary keys", () =>
    Effect.gen(function*() {
      const [record] = yield* Ldif.parseString("dn: cn=a\nconstructor: 1\n__proto__: 2\ntoString: 3\nhasOwnProperty: 4\nconstructor: 5\n")
      const a = attrs(record)
      assert.deepStrictEqual([...a.keys()], ["constructor", "__proto__", "toString", "hasOwnProperty"])
      assert.deepStrictEqual(a.get("constructor"), ["1", "5"])
      assert.deepStrictEqual(a.get("__proto__"), ["2"])
      // and back
      const again = yield* Ldif.parseString(Ldif.writeString([record!]))
      assert.deepStrictEqual(again, [record])
    }))

  it.effect("types differing only in case are one attribute under the first spelling", () =>
    Effect.gen(function*() {
      const [record] = yield* Ldif.parseString("dn: cn=a\ncn: a\nCN: b\nCn: c\n")
      assert.deepStrictEqual([...attrs(record)], [["cn", ["a", "b", "c"]]])
    }))

  it.effect("a BOM is dropped at the start of the input only, never from a value", () =>
    Effect.gen(function*() {
      const photo = Buffer.from(JPEG_WITH_BOM).toString("base64")
      const text = bytes([0xef, 0xbb, 0xbf], `version: 1\n\ndn: cn=a\njpegPhoto:: ${photo}\ndescription:: 77u/QQ==\n`)
      const [record] = yield* parseBytes(text)
      assert.deepStrictEqual(attrs(record).get("jpegPhoto"), [new Uint8Array(JPEG_WITH_BOM)])
      // A valid UTF-8 value starting with U+FEFF keeps it.
      assert.deepStrictEqual(attrs(record).get("description"), ["\uFEFFA"])
      const written = Ldif.writeString([record!])
      assert.include(written, `jpegPhoto:: ${photo}`)
      assert.include(written, "description:: 77u/QQ==")
      // A BOM later in the input is not a BOM: a plain value keeps U+FEFF.
      const [other] = yield* parseBytes(bytes("dn: cn=a\ncn: ", [0xef, 0xbb, 0xbf], "x\n"))
      assert.deepStrictEqual(attrs(other).get("cn"), ["\uFEFFx"])
    }))

  it.effect("property: the BOM and multi-byte characters survive any chunking", () =>
    Effect.promise(() =>
      fc.assert(
        fc.asyncProperty(fc.array(fc.nat({ max: 60 }), { maxLength: 12 }), async (cuts) => {
          const input = bytes([0xef, 0xbb, 0xbf], "dn: cn=é\ncn: 日本語\njpegPhoto:: 77u//9j/4AAQ\n")
          const points = [...new Set(cuts.map((c) => c % input.length))].sort((a, b) => a - b)
          const chunks: Array<Uint8Array> = []
          let last = 0
          for (const p of [...points, input.length]) {
            chunks.push(input.slice(last, p))
            last = p
          }
          const records = await Effect.runPromise(Stream.runCollect(Ldif.parse(Stream.fromIterable(chunks))))
          assert.strictEqual(records[0]!.dn, "cn=é")
          assert.deepStrictEqual(attrs(records[0]).get("jpegPhoto"), [new Uint8Array([0xef, 0xbb, 0xbf, 0xff, 0xd8, 0xff, 0xe0, 0x00, 0x10])])
        }),
        { numRuns: 200 }
      )
    ))

  it.effect("invalid UTF-8 in a plain value is an error naming the line", () =>
    Effect.gen(function*() {
      const latin1 = yield* Effect.flip(parseBytes(bytes("dn: cn=a\ncn: a\ndescription: caf", [0xe9], "\n")))
      assert.strictEqual(latin1._tag, "LdifParseError")
      assert.strictEqual(latin1.line, 3)
      assert.match(latin1.message, /not valid UTF-8/)
      // A file cut inside a character.
      const cut = yield* Effect.flip(parseBytes(bytes("dn: cn=a\ncn: a\n\ndn: cn=b\ncn: ", [0xe6, 0x97])))
      assert.strictEqual(cut.line, 5)
      // In a DN given in base64.
      const dn = yield* Effect.flip(parseBytes(bytes("dn:: 6Q==\ncn: a\n")))
      assert.strictEqual(dn.line, 1)
    }))

  it.effect("a lone CR is an error, never a silent one-record file", () =>
    Effect.gen(function*() {
      const error = yield* Effect.flip(Ldif.parseString("dn: cn=a\rcn: a\r\rdn: cn=b\rcn: b\r"))
      assert.strictEqual(error.line, 1)
      assert.match(error.message, /carriage return/)
      const later = yield* Effect.flip(Ldif.parseString("dn: cn=a\r\ncn: a\rb\r\n"))
      assert.strictEqual(later.line, 2)
      // CR LF line endings are fine, also split across chunks.
      const records = yield* Stream.runCollect(Ldif.parse(Stream.make("dn: cn=a\r", "\ncn: a\r", "\n\r", "\ndn: cn=b\r\ncn: b")))
      assert.deepStrictEqual(records.map((r) => r.dn), ["cn=a", "cn=b"])
    }))

  it.effect("a line holding only spaces separates records, never merges them", () =>
    Effect.gen(function*() {
      const records = yield* Ldif.parseString("dn: cn=a\ncn: a\n \ndn: cn=b\ncn: b\n  \t\ndn: cn=c\ncn: c\n")
      assert.deepStrictEqual(records.map((r) => r.dn), ["cn=a", "cn=b", "cn=c"])
      assert.deepStrictEqual([...attrs(records[0])], [["cn", ["a"]]])
      // A second dn: inside one record is an error, not a merge.
      const error = yield* Effect.flip(Ldif.parseString("dn: cn=a\ncn: a\ndn: cn=b\ncn: b\n"))
      assert.strictEqual(error.line, 3)
      assert.match(error.message, /second "dn:"/)
    }))

  it.effect("a record past maxRecordBytes is a typed error; the next records still parse with keepGoing", () =>
    Effect.gen(function*() {
      const big = `dn: cn=big\ndescription: ${"x".repeat(5000)}\n more\n\ndn: cn=ok\ncn: ok\n`
      const error = yield* Effect.flip(Ldif.parseString(big, { maxRecordBytes: 1000 }))
      assert.strictEqual(error._tag, "LdifRecordTooLarge")
      assert.strictEqual(error.line, 2)
      const out = yield* items(big, { maxRecordBytes: 1000 })
      assert.strictEqual(out.length, 2)
      assert.strictEqual(out[0]!._tag, "LdifRecordTooLarge")
      assert.strictEqual((out[1] as Ldif.LdifRecord).dn, "cn=ok")
    }))

  it.effect("keepGoing: every bad record is an item with its line, every good record is kept", () =>
    Effect.gen(function*() {
      const text = [
        "version: 1",
        "",
        "dn: cn=a,dc=x",
        "cn: a",
        "",
        "dn: cn=b,dc=x",
        "cn b",
        "",
        "dn: cn=c,dc=x",
        "cn: c",
        "",
        " stray continuation",
        "cn: still stray",
        "",
        "dn: cn=d,dc=x",
        "changetype: frobnicate",
        "",
        "dn: cn=e,dc=x",
        "cn: e",
        ""
      ].join("\n")
      const out = yield* items(text)
      const summary = out.map((item) => (Ldif.isRecordError(item) ? `${item._tag}@${item.line}` : item.dn))
      assert.deepStrictEqual(summary, ["cn=a,dc=x", "LdifParseError@7", "cn=c,dc=x", "LdifParseError@12", "LdifParseError@16", "cn=e,dc=x"])
      const bad = out[1] as Ldif.LdifParseError
      assert.strictEqual(bad.dn, "cn=b,dc=x")
      assert.strictEqual(Ldif.lineOf(out[2] as Ldif.LdifRecord), 9)
    }))

  it.effect("controls, increment and deleteoldrdn 0 are read and written back", () =>
    Effect.gen(function*() {
      const text = [
        "dn: cn=a,dc=x",
        "control: 1.2.840.113556.1.4.805 true",
        "control: 1.3.6.1.1.13.1 false:: MAA=",
        "control: 1.2.3.4: plain",
        "changetype: delete",
        "",
        "dn: cn=a,dc=x",
        "changetype: modify",
        "increment: uidNumber",
        "uidNumber: 5",
        "-",
        "add: cn",
        "cn: b",
        "-",
        "",
        "dn: cn=a,dc=x",
        "changetype: modrdn",
        "newrdn: cn=b",
        "deleteoldrdn: 0",
        "newsuperior: ou=y,dc=x",
        ""
      ].join("\n")
      const records = yield* Ldif.parseString(text)
      assert.deepStrictEqual(records, [
        {
          _tag: "Delete",
          dn: "cn=a,dc=x",
          controls: [
            { oid: "1.2.840.113556.1.4.805", critical: true },
            { oid: "1.3.6.1.1.13.1", critical: false, value: new Uint8Array([0x30, 0x00]) },
            { oid: "1.2.3.4", critical: false, value: new Uint8Array(Buffer.from("plain")) }
          ]
        },
        {
          _tag: "Modify",
          dn: "cn=a,dc=x",
          changes: [
            { operation: "increment", attribute: "uidNumber", values: ["5"] },
            { operation: "add", attribute: "cn", values: ["b"] }
          ]
        },
        { _tag: "ModRdn", dn: "cn=a,dc=x", newRdn: "cn=b", deleteOldRdn: false, newSuperior: "ou=y,dc=x" }
      ])
      assert.deepStrictEqual(yield* Ldif.parseString(Ldif.writeString(records)), records)
      const twoValues = yield* Effect.flip(Ldif.parseString("dn: cn=a\nchangetype: modify\nincrement: n\nn: 1\nn: 2\n-\n"))
      assert.strictEqual(twoValues.line, 5)
      const notInteger = yield* Effect.flip(Ldif.parseString("dn: cn=a\nchangetype: modify\nincrement: n\nn: x\n-\n"))
      assert.strictEqual(notInteger.line, 3)
      const badControl = yield* Effect.flip(Ldif.parseString("dn: cn=a\ncontrol: not-an-oid\nchangetype: delete\n"))
      assert.strictEqual(badControl.line, 2)
    }))

  it.effect(":< URL values: off by default, file: only, inside the base directory only", () =>
    Effect.gen(function*() {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), "ldif-url-"))
      const outside = fs.mkdtempSync(path.join(os.tmpdir(), "ldif-outside-"))
      fs.writeFileSync(path.join(dir, "photo.jpg"), Buffer.from(JPEG_WITH_BOM))
      fs.writeFileSync(path.join(dir, "note.txt"), "hello")
      fs.writeFileSync(path.join(outside, "secret"), "secret")
      fs.symlinkSync(path.join(outside, "secret"), path.join(dir, "link"))
      const urls = { baseDirectory: dir }
      const record = (url: string) => `dn: cn=a\ncn: a\njpegPhoto:< ${url}\n`

      const off = yield* Effect.flip(Ldif.parseString(record(`file://${dir}/photo.jpg`)))
      assert.strictEqual(off._tag, "LdifUrlError")
      assert.strictEqual(off.line, 3)
      assert.match(off.message, /baseDirectory/)

      const [absolute] = yield* Ldif.parseString(record(`file://${dir}/photo.jpg`), { urls })
      assert.deepStrictEqual(attrs(absolute).get("jpegPhoto"), [new Uint8Array(JPEG_WITH_BOM)])
      assert.strictEqual(Ldif.lineOf(absolute!), 1)
      const [relative] = yield* Ldif.parseString(record("file:note.txt"), { urls })
      assert.deepStrictEqual(attrs(relative).get("jpegPhoto"), ["hello"])

      for (const [url, reason] of [
        ["http://example.com/x.jpg", /only file URLs/],
        ["ftp:x", /only file URLs/],
        [`file://${outside}/secret`, /outside the base directory/],
        ["file:../" + path.basename(outside) + "/secret", /outside the base directory/],
        ["file:link", /outside the base directory/],
        ["file:missing.jpg", /ENOENT/]
      ] as const) {
        const error = yield* Effect.flip(Ldif.parseString(record(url), { urls }))
        assert.strictEqual(error._tag, "LdifUrlError", url)
        assert.strictEqual(error.line, 3, url)
        assert.match(error.message, reason, url)
      }
      const tooBig = yield* Effect.flip(Ldif.parseString(record("file:photo.jpg"), { urls, maxRecordBytes: 4 }))
      assert.match(tooBig.message, /maxRecordBytes/)
      fs.rmSync(dir, { recursive: true })
      fs.rmSync(outside, { recursive: true })
    }))

  it.effect("a 4 MiB unfolded line in 1 KiB chunks parses to the same bytes", () =>
    Effect.gen(function*() {
      const value = Buffer.alloc(3 * 1024 * 1024, 0xab)
      const text = Buffer.from(`dn: cn=big\njpegPhoto:: ${value.toString("base64")}\n`)
      const chunks: Array<Uint8Array> = []
      for (let i = 0; i < text.length; i += 1024) chunks.push(text.subarray(i, i + 1024))
      const [record] = yield* Stream.runCollect(Ldif.parse(Stream.fromIterable(chunks)))
      const photo = attrs(record).get("jpegPhoto")![0] as Uint8Array
      assert.strictEqual(photo.length, value.length)
      assert.isTrue(Buffer.from(photo).equals(value))
    }))

  it.effect("every malformed case: its typed error and line, and keepGoing keeps the good record after it", () =>
    Effect.gen(function*() {
      const cases: ReadonlyArray<readonly [string, string | Uint8Array, "LdifParseError" | "LdifRecordTooLarge" | "LdifUrlError", number]> = [
        ["invalid UTF-8 (Latin-1)", bytes("dn: cn=a\ncn: caf", [0xe9], "\n"), "LdifParseError", 2],
        ["UTF-8 cut inside a character", bytes("dn: cn=a\ncn: ", [0xe6, 0x97], "\n"), "LdifParseError", 2],
        ["DN not UTF-8 (base64)", "dn:: 6Q==\ncn: a\n", "LdifParseError", 1],
        ["lone CR", "dn: cn=a\rcn: a\r", "LdifParseError", 1],
        ["lone CR inside a value", "dn: cn=a\ncn: a\rb\n", "LdifParseError", 2],
        ["second dn: (records merged)", "dn: cn=a\ncn: a\ndn: cn=b\ncn: b\n", "LdifParseError", 3],
        ["continuation with nothing to continue", " x\n", "LdifParseError", 1],
        ["no colon", "dn: cn=a\ncn a\n", "LdifParseError", 2],
        ["bad attribute type", "dn: cn=a\nc n: a\n", "LdifParseError", 2],
        ["bad base64", "dn: cn=a\ncn:: ***\n", "LdifParseError", 2],
        ["no dn", "cn: a\n", "LdifParseError", 1],
        ["no attributes", "dn: cn=a\n", "LdifParseError", 1],
        ["unknown changetype", "dn: cn=a\nchangetype: rename\n", "LdifParseError", 2],
        ["control without changetype", "dn: cn=a\ncontrol: 1.2.3\ncn: a\n", "LdifParseError", 2],
        ["bad control", "dn: cn=a\ncontrol: x.y\nchangetype: delete\n", "LdifParseError", 2],
        ["control after changetype", "dn: cn=a\nchangetype: delete\ncontrol: 1.2.3\n", "LdifParseError", 3],
        ["delete with lines", "dn: cn=a\nchangetype: delete\ncn: a\n", "LdifParseError", 3],
        ["modify: unknown operation", "dn: cn=a\nchangetype: modify\nfrob: cn\n", "LdifParseError", 3],
        ["modify: missing -", "dn: cn=a\nchangetype: modify\nadd: cn\nsn: x\n", "LdifParseError", 4],
        ["modify: - alone", "dn: cn=a\nchangetype: modify\n-\n", "LdifParseError", 3],
        ["increment: two values", "dn: cn=a\nchangetype: modify\nincrement: n\nn: 1\nn: 2\n-\n", "LdifParseError", 5],
        ["increment: not an integer", "dn: cn=a\nchangetype: modify\nincrement: n\nn: one\n-\n", "LdifParseError", 3],
        ["modrdn without newrdn", "dn: cn=a\nchangetype: modrdn\ndeleteoldrdn: 1\n", "LdifParseError", 2],
        ["modrdn: deleteoldrdn 2", "dn: cn=a\nchangetype: modrdn\nnewrdn: cn=b\ndeleteoldrdn: 2\n", "LdifParseError", 2],
        ["modrdn: unknown field", "dn: cn=a\nchangetype: modrdn\nnewrdn: cn=b\ndeleteoldrdn: 1\nfoo: x\n", "LdifParseError", 5],
        ["version 2", "version: 2\n\ndn: cn=a\ncn: a\n", "LdifParseError", 1],
        ["record too large", `dn: cn=a\ncn: a\ndescription: ${"x".repeat(300)}\n`, "LdifRecordTooLarge", 3],
        ["URL values off", "dn: cn=a\njpegPhoto:< file:///etc/hostname\n", "LdifUrlError", 2]
      ]
      for (const [name, input, tag, line] of cases) {
        const error = yield* Effect.flip(parseBytes(typeof input === "string" ? bytes(input) : input, { maxRecordBytes: 256 }))
        assert.strictEqual(`${name}: ${error._tag}@${error.line}`, `${name}: ${tag}@${line}`, error.message)
        // The same case followed by a good record: the error is an item, the good record is kept.
        const text = Buffer.concat([typeof input === "string" ? bytes(input) : input, bytes("\n\ndn: cn=good\ncn: good\n")])
        const out = yield* items(text.toString("latin1") === text.toString("utf8") ? text.toString("utf8") : text, { maxRecordBytes: 256 })
        assert.strictEqual((out[out.length - 1] as Ldif.LdifRecord).dn, "cn=good", name)
        assert.strictEqual(out.filter(Ldif.isRecordError).length, 1, name)
      }
    }))
})
