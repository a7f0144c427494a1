import { assert, describe, it } from "@effect/vitest"
import { Effect, Stream } from "effect"
import * as fc from "fast-check"
import * as v8 from "node:v8"
import * as vm from "node:vm"
import { Ldif } from "../src/index.ts"

const sample = [
  "version: 1",
  "",
  "# a comment",
  "#  that continues",
  "dn: uid=ada,ou=people,dc=example,dc=com",
  "objectClass: inetOrgPerson",
  "cn: Ada",
  "  Lovelace",
  "description:: w6lsw6lnYW50ZQ==",
  "jpegPhoto:: /9j/4A==",
  "",
  "dn: uid=bob,ou=people,dc=example,dc=com",
  "changetype: modify",
  "replace: mail",
  "mail: bob@example.com",
  "-",
  "delete: description",
  "-",
  "",
  "dn: uid=eve,ou=people,dc=example,dc=com",
  "changetype: delete",
  "",
  "dn: uid=bob,ou=people,dc=example,dc=com",
  "changetype: modrdn",
  "newrdn: uid=robert",
  "deleteoldrdn: 1",
  ""
].join("\r\n")

const parseError = (text: string) => Effect.flip(Ldif.parseString(text))

/** A full garbage collection (without --expose-gc on the command line). */
const forceGc = (): (() => void) => {
  v8.setFlagsFromString("--expose-gc")
  return vm.runInNewContext("gc") as () => void
}

describe("Ldif.parse", () => {
  it.effect("reads content and change records: folding, comments, base64, CRLF", () =>
    Effect.gen(function*() {
      const records = yield* Ldif.parseString(sample)
      assert.strictEqual(records.length, 4)
      const [ada, bob, eve, rename] = records
      assert.deepStrictEqual(ada, {
        _tag: "Entry",
        dn: "uid=ada,ou=people,dc=example,dc=com",
        attributes: new Map<string, Array<Ldif.Value>>([
          ["objectClass", ["inetOrgPerson"]],
          ["cn", ["Ada Lovelace"]],
          ["description", ["élégante"]],
          ["jpegPhoto", [new Uint8Array([0xff, 0xd8, 0xff, 0xe0])]]
        ])
      })
      assert.deepStrictEqual(bob, {
        _tag: "Modify",
        dn: "uid=bob,ou=people,dc=example,dc=com",
        changes: [
          { operation: "replace", attribute: "mail", values: ["bob@example.com"] },
          { operation: "delete", attribute: "description", values: [] }
        ]
      })
      assert.deepStrictEqual(eve, { _tag: "Delete", dn: "uid=eve,ou=people,dc=example,dc=com" })
      assert.deepStrictEqual(rename, {
        _tag: "ModRdn",
        dn: "uid=bob,ou=people,dc=example,dc=com",
        newRdn: "uid=robert",
        deleteOldRdn: true
      })
    }))

  it.effect("every malformed input names its line", () =>
    Effect.gen(function*() {
      const cases: ReadonlyArray<readonly [string, number, RegExp]> = [
        [" continued\ndn: x", 1, /continuation/],
        ["dn: cn=a\ncn a", 2, /type: value/],
        ["cn: a\n", 1, /start with "dn:"/],
        ["dn: cn=a\ncn:: ***", 2, /base64/],
        ["dn: cn=a\ncn:< file:///etc/passwd", 2, /URL values are off/],
        ["dn: cn=a\ncn: a\n\ndn: cn=b\nchangetype: rename", 5, /unknown changetype/],
        ["dn: cn=a\n\ndn: cn=b\ncn: b", 1, /no attributes/],
        ["dn: cn=a\nchangetype: modify\nreplace: mail\ncn: x\n-", 4, /missing "-"/],
        ["dn: cn=a\nchangetype: modify\nfrobnicate: mail\n", 3, /add:/],
        ["version: 2\n\ndn: cn=a", 1, /version/],
        ["dn: cn=a\nchangetype: delete\ncn: a", 3, /delete record/],
        ["dn: cn=a\nchangetype: modrdn\nnewrdn: cn=b", 2, /deleteoldrdn/],
        ["dn: cn=a\ncontrol: 1.2.3 true", 2, /followed by "changetype:"/]
      ]
      for (const [text, line, reason] of cases) {
        const error = yield* parseError(text)
        assert.strictEqual(error.line, line, `line of ${JSON.stringify(text)}: ${error.message}`)
        assert.match("reason" in error ? error.reason : error.message, reason)
        assert.match(error.message, new RegExp(`^LDIF line ${line}: `))
      }
    }))

  it.effect("property: any split of the bytes into chunks parses to the same records", () =>
    Effect.promise(() =>
      fc.assert(
        fc.asyncProperty(fc.array(fc.nat({ max: 40 }), { maxLength: 30 }), async (cuts) => {
          const bytes = new TextEncoder().encode(sample)
          const points = [...new Set(cuts.map((c) => (c * 7) % bytes.length))].sort((a, b) => a - b)
          const chunks: Array<Uint8Array> = []
          let last = 0
          for (const p of [...points, bytes.length]) {
            chunks.push(bytes.slice(last, p))
            last = p
          }
          const whole = await Effect.runPromise(Ldif.parseString(sample))
          const split = await Effect.runPromise(Stream.runCollect(Ldif.parse(Stream.fromIterable(chunks))))
          assert.deepStrictEqual(split, whole)
        }),
        { numRuns: 200 }
      )
    ))

  it.effect("property: write then parse gives the same records", () => {
    const type = fc.stringMatching(/^[a-zA-Z][a-zA-Z0-9-]{0,10}$/)
    const value = fc.oneof(
      fc.string({ maxLength: 100 }),
      fc.string({ unit: "grapheme", maxLength: 30 }),
      fc.constantFrom(" leading", "trailing ", ":colon", "<angle", "a\nb", "a\r\nb", "")
    )
    const bytes = fc.uint8Array({ minLength: 1, maxLength: 40 }).filter((b) => {
      try {
        new TextDecoder("utf-8", { fatal: true }).decode(b)
        return false
      } catch {
        return true
      }
    })
    const entry = fc.record({
      dn: fc.string({ unit: "grapheme", minLength: 1, maxLength: 60 }),
      attributes: fc.uniqueArray(
        fc.tuple(
          type.filter((t) => !/^(dn|control|changetype)$/i.test(t)),
          fc.array(fc.oneof(value, bytes), { minLength: 1, maxLength: 3 })
        ),
        { selector: ([t]) => t.toLowerCase(), minLength: 1, maxLength: 5 }
      )
    }).map((e): Ldif.LdifRecord => Ldif.entry(e.dn, new Map(e.attributes)))
    return Effect.promise(() =>
      fc.assert(
        fc.asyncProperty(fc.array(entry, { maxLength: 10 }), async (records) => {
          const text = Ldif.writeString(records)
          for (const line of text.split("\n")) assert.isAtMost(line.length, 76)
          const parsed = await Effect.runPromise(Ldif.parseString(text))
          assert.deepStrictEqual(parsed, records)
        }),
        { numRuns: 300 }
      )
    )
  })

  it.effect("a generated 1,000,000-entry stream parses with flat memory", () =>
    Effect.gen(function*() {
      const gc = forceGc()
      const n = 1_000_000
      const input = Stream.range(1, n).pipe(
        Stream.map((i) => `dn: uid=user${i},ou=people,dc=example,dc=com\nobjectClass: inetOrgPerson\nuid: user${i}\ncn: User ${i}\nsn: ${i}\n\n`),
        Stream.rechunk(256)
      )
      gc()
      const before = process.memoryUsage().heapUsed
      let peak = before
      let count = 0
      let last = ""
      yield* Stream.runForEach(Ldif.parse(input), (record) =>
        Effect.sync(() => {
          // After a full collection, heapUsed is what the parse keeps alive.
          if (++count % 200_000 === 0) {
            gc()
            peak = Math.max(peak, process.memoryUsage().heapUsed)
          }
          last = record.dn
        }))
      assert.strictEqual(count, n)
      assert.strictEqual(last, `uid=user${n},ou=people,dc=example,dc=com`)
      // ~110 MiB of LDIF went through: the parser keeps one record and one line, not the input.
      assert.isBelow((peak - before) / 2 ** 20, 32)
    }), 120_000)

  it.live("a missing file fails the run with LdifReadError; building the stream opens nothing", () =>
    Effect.gen(function*() {
      const missing = `/nonexistent-${process.pid}/missing.ldif`
      const uncaught: Array<unknown> = []
      const onUncaught = (error: unknown) => uncaught.push(error)
      process.on("uncaughtException", onUncaught)
      try {
        const stream = Ldif.parseFile(missing)
        // A stream that is built and not yet run (or never run) must not have opened the file.
        yield* Effect.sleep("50 millis")
        assert.deepStrictEqual(uncaught, [])
        const error = yield* Effect.flip(Stream.runCollect(stream))
        assert.strictEqual(error._tag, "LdifReadError")
        assert.include(error.message + JSON.stringify(error), "ENOENT")
        // Each run opens the file anew.
        assert.strictEqual((yield* Effect.flip(Stream.runCollect(stream)))._tag, "LdifReadError")
      } finally {
        process.off("uncaughtException", onUncaught)
      }
    }))
})
