import { assert, describe, it } from "@effect/vitest"
import * as fc from "fast-check"
import { execFileSync } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { Changes, Entries, Ldif } from "../src/index.ts"
import type { LdapClient } from "../src/index.ts"
import * as ber from "../src/internal/ber.ts"
import * as pm from "../src/internal/passwordModify.ts"
import { parseAttributeTypes, parseObjectClass } from "../src/internal/rootDse.ts"

const hex = (b: Uint8Array) => Buffer.from(b).toString("hex")

/** openssl's reading of DER bytes, as an independent decoder. */
const asn1parse = (bytes: Uint8Array): string => {
  const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), "tether-ber-")), "v.der")
  fs.writeFileSync(file, bytes)
  try {
    return execFileSync("openssl", ["asn1parse", "-inform", "DER", "-in", file], { encoding: "utf8" })
  } finally {
    fs.rmSync(path.dirname(file), { recursive: true })
  }
}

describe("BER", () => {
  it("round-trips nested elements of any size (short and long lengths)", () => {
    fc.assert(
      fc.property(fc.array(fc.uint8Array({ maxLength: 70_000 }), { maxLength: 4 }), (values) => {
        const encoded = ber.constructed(0x30, values.map((v, i) => ber.primitive(0x80 + i, v)))
        const seq = ber.readOne(encoded)
        assert.strictEqual(seq?.tag, 0x30)
        const items = ber.readAll(seq!.value)!
        assert.deepStrictEqual(items.map((i) => i.tag), values.map((_, i) => 0x80 + i))
        assert.deepStrictEqual(items.map((i) => hex(i.value)), values.map(hex))
      }),
      { numRuns: 50 }
    )
  })

  it("never throws on hostile input, and refuses truncated, indefinite and oversized lengths", () => {
    fc.assert(fc.property(fc.uint8Array({ maxLength: 64 }), (bytes) => {
      ber.readOne(bytes)
      ber.readAll(bytes)
    }))
    assert.isUndefined(ber.readOne(Uint8Array.of(0x30, 0x05, 0x04, 0x01)))
    assert.isUndefined(ber.readOne(Uint8Array.of(0x30, 0x80, 0x00, 0x00)))
    assert.isUndefined(ber.readOne(Uint8Array.of(0x04, 0x85, 1, 0, 0, 0, 0)))
    assert.isUndefined(ber.readOne(Uint8Array.of(0x04, 0x84, 0xff, 0xff, 0xff, 0xff)))
    assert.isUndefined(ber.readOne(Uint8Array.of(0x1f, 0x01, 0x00)))
    // Trailing bytes are not one element.
    assert.isUndefined(ber.readOne(Uint8Array.of(0x04, 0x00, 0x00)))
  })

  it("integers round-trip in minimal two's complement", () => {
    fc.assert(fc.property(fc.integer({ min: -(2 ** 40), max: 2 ** 40 }), (n) => {
      const bytes = ber.encodeInteger(n)
      assert.strictEqual(ber.decodeInteger(bytes), n)
      if (bytes.length > 1) assert.isFalse((bytes[0] === 0 && !(bytes[1]! & 0x80)) || (bytes[0] === 0xff && !!(bytes[1]! & 0x80)))
    }))
    assert.strictEqual(hex(ber.encodeInteger(128)), "0080")
    assert.strictEqual(hex(ber.encodeInteger(-1)), "ff")
  })
})

describe("Password Modify values (RFC 3062)", () => {
  it("encodes the request as openssl reads it", () => {
    const value = pm.encodeRequest({ userIdentity: "uid=ann,dc=x", oldPassword: "old", newPassword: "nëw" })
    assert.strictEqual(hex(value), "3019" + "800c" + hex(Buffer.from("uid=ann,dc=x")) + "8103" + hex(Buffer.from("old")) + "8204" + hex(Buffer.from("nëw")))
    const parsed = asn1parse(value)
    assert.match(parsed, /cons: SEQUENCE/)
    assert.strictEqual(parsed.match(/prim: cont \[ [012] \]/g)?.length, 3)
    // Every field is optional: an empty request is an empty SEQUENCE.
    assert.strictEqual(hex(pm.encodeRequest({})), "3000")
    // A 300-byte password needs a long-form length.
    const long = "x".repeat(300)
    const read = ber.readAll(ber.readOne(pm.encodeRequest({ newPassword: long }))!.value)!
    assert.strictEqual(Buffer.from(read[0]!.value).toString(), long)
  })

  it("decodes the generated password, and reports malformed values", () => {
    const response = ber.constructed(0x30, [ber.primitive(0x80, "Gen3rated")])
    assert.deepStrictEqual(pm.decodeResponse(response), { generated: "Gen3rated" })
    assert.deepStrictEqual(pm.decodeResponse(new Uint8Array(0)), { generated: undefined })
    assert.deepStrictEqual(pm.decodeResponse(Uint8Array.of(0x30, 0x00)), { generated: undefined })
    assert.property(pm.decodeResponse(Uint8Array.of(0x04, 0x00)), "malformed")
    assert.property(pm.decodeResponse(Uint8Array.of(0x30, 0x03, 0x80, 0x05, 0x41)), "malformed")
    assert.property(pm.decodeResponse(ber.constructed(0x30, [ber.primitive(0x80, Uint8Array.of(0xff))])), "malformed")
  })

  it("rebuilds ldapts's text value only when nothing but the [0] tag was lost", () => {
    const asLdaptsText = (bytes: Uint8Array) => Buffer.from(bytes).toString("utf8")
    const ok = ber.constructed(0x30, [ber.primitive(0x80, "abc.DEF/123")])
    assert.strictEqual(hex(pm.responseBytesFromText(asLdaptsText(ok))!), hex(ok))
    assert.strictEqual(pm.responseBytesFromText(undefined)!.length, 0)
    // A long-form length (a 200-character password) is lost too: refused, not guessed.
    const long = ber.constructed(0x30, [ber.primitive(0x80, "y".repeat(200))])
    assert.isUndefined(pm.responseBytesFromText(asLdaptsText(long)))
    // Non-UTF-8 bytes in the password: refused.
    const binary = ber.constructed(0x30, [ber.primitive(0x80, Uint8Array.of(0x41, 0xc3))])
    assert.isUndefined(pm.responseBytesFromText(asLdaptsText(binary)))
  })
})

describe("subschema parsing", () => {
  it("object classes: names, SUP, kind, MUST/MAY lists", () => {
    const oc = parseObjectClass(
      "( 2.16.840.1.113730.3.2.2 NAME 'inetOrgPerson' DESC 'RFC2798: Internet Organizational Person' " +
        "SUP organizationalPerson STRUCTURAL MAY ( audio $ businessCategory $ carLicense ) )"
    )!
    assert.deepStrictEqual(oc, {
      oid: "2.16.840.1.113730.3.2.2",
      names: ["inetOrgPerson"],
      sup: ["organizationalPerson"],
      kind: "structural",
      must: [],
      may: ["audio", "businessCategory", "carLicense"]
    })
    const top = parseObjectClass("( 2.5.6.0 NAME 'top' DESC 'top of the superclass chain' ABSTRACT MUST objectClass )")!
    assert.strictEqual(top.kind, "abstract")
    assert.deepStrictEqual(top.must, ["objectClass"])
    assert.strictEqual(parseObjectClass("( 1.2 NAME ( 'a' 'b' ) AUXILIARY )")!.kind, "auxiliary")
    assert.isUndefined(parseObjectClass("not a definition"))
  })

  it("attribute types: syntax through SUP, SINGLE-VALUE, every name and the OID as keys", () => {
    const types = parseAttributeTypes([
      "( 2.5.4.41 NAME 'name' EQUALITY caseIgnoreMatch SYNTAX 1.3.6.1.4.1.1466.115.121.1.15{32768} )",
      "( 2.5.4.3 NAME ( 'cn' 'commonName' ) SUP name )",
      "( 1.1 NAME 'one' SYNTAX 1.3.6.1.4.1.1466.115.121.1.27 SINGLE-VALUE )"
    ])
    assert.strictEqual(types.get("commonname")?.syntax, "1.3.6.1.4.1.1466.115.121.1.15")
    assert.strictEqual(types.get("2.5.4.3")?.oid, "2.5.4.3")
    assert.isTrue(types.get("one")!.singleValue)
    assert.isFalse(types.get("cn")!.singleValue)
  })
})

describe("Entries.depth", () => {
  it("counts RDNs, not escaped commas", () => {
    assert.strictEqual(Entries.depth("dc=example,dc=com"), 2)
    assert.strictEqual(Entries.depth("cn=Smith\\, John,ou=people,dc=example,dc=com"), 4)
    assert.strictEqual(Entries.depth("cn=back\\\\,dc=com"), 2)
    assert.strictEqual(Entries.depth(""), 0)
  })
})

describe("Changes", () => {
  it("builds changes in order, immutably", () => {
    const base = Changes.make().replace("mail", "a@b.c")
    const built = base.add("description", "x", new Uint8Array([1])).delete("phone").increment("n", -2).build()
    assert.deepStrictEqual(built, [
      { operation: "replace", attribute: "mail", values: ["a@b.c"] },
      { operation: "add", attribute: "description", values: ["x", new Uint8Array([1])] },
      { operation: "delete", attribute: "phone", values: [] },
      { operation: "increment", attribute: "n", values: ["-2"] }
    ])
    assert.strictEqual(base.build().length, 1)
  })
})

describe("entries feed Ldif.write without a cast", () => {
  it("type-checks and writes", () => {
    const entry: LdapClient.Entry = { dn: "cn=a,dc=x", attributes: { cn: ["a"], photo: [new Uint8Array([0xff])] } }
    const text = Ldif.writeString([Ldif.entry(entry.dn, entry.attributes)])
    assert.match(text, /photo:: \/w==/)
  })
})
