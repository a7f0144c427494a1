import { assert, describe, it } from "@effect/vitest"
import * as fc from "fast-check"
import { AndFilter, EqualityFilter, FilterParser } from "ldapts"
import { Dn, Filter, LdapError } from "../src/index.ts"
import { Fault } from "@tether/core"

describe("Filter", () => {
  it("escapes the five special characters", () => {
    assert.strictEqual(Filter.escape("a*b(c)d\\e\u0000"), "a\\2ab\\28c\\29d\\5ce\\00")
    assert.strictEqual(Filter.filter`(uid=${"*)(uid=*"})`, "(uid=\\2a\\29\\28uid=\\2a)")
  })

  it("property: an interpolated value never changes the filter's structure", () => {
    fc.assert(
      fc.property(fc.string({ unit: "grapheme", maxLength: 40 }), fc.string({ maxLength: 20 }), (value, other) => {
        const text = Filter.filter`(&(objectClass=person)(uid=${value})(cn=${other}))`
        const parsed = FilterParser.parseString(text)
        assert.instanceOf(parsed, AndFilter)
        const parts = (parsed as AndFilter).filters
        assert.strictEqual(parts.length, 3)
        assert.instanceOf(parts[1], EqualityFilter)
        assert.strictEqual((parts[1] as EqualityFilter).attribute, "uid")
        assert.strictEqual(String((parts[1] as EqualityFilter).value), value)
      }),
      { numRuns: 500 }
    )
  })
})

describe("Dn", () => {
  it("escapes RFC 4514 specials, leading # or space, trailing space", () => {
    assert.strictEqual(Dn.escape("smith, john+jr"), "smith\\, john\\+jr")
    assert.strictEqual(Dn.escape("#1 "), "\\#1\\ ")
    assert.strictEqual(Dn.escape(" "), "\\ ")
    assert.strictEqual(Dn.make([["uid", "a=b"], ["ou", "people"]], "dc=example,dc=com"), "uid=a\\=b,ou=people,dc=example,dc=com")
  })

  it("property: an escaped value stays one RDN value (no unescaped separator)", () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 40 }), (value) => {
        const escaped = Dn.escape(value)
        // Every , + ; = " < > is preceded by an odd run of backslashes.
        for (let i = 0; i < escaped.length; i++) {
          if (!",+;=\"<>".includes(escaped[i]!)) continue
          let slashes = 0
          for (let j = i - 1; j >= 0 && escaped[j] === "\\"; j--) slashes++
          assert.strictEqual(slashes % 2, 1, `unescaped ${escaped[i]} in ${escaped}`)
        }
      }),
      { numRuns: 500 }
    )
  })
})

describe("LdapError", () => {
  const context = { endpoint: "ldap://ldap1:389", operation: "add" }
  const resultError = (code: number, message: string) => Object.assign(new Error(message), { code })

  it("maps result codes to typed errors and classifies them", () => {
    const exists = LdapError.fromUnknown(resultError(68, "Entry Already Exists"), context)
    assert.strictEqual(exists._tag === "LdapOperationError" && exists.kind, "already-exists")
    assert.strictEqual(LdapError.classify(exists).kind, "semantic")
    const missing = LdapError.fromUnknown(resultError(32, "No Such Object"), context)
    assert.strictEqual(missing._tag === "LdapOperationError" && missing.kind, "no-such-object")
    const busy = LdapError.fromUnknown(resultError(51, "Busy"), context)
    assert.strictEqual(LdapError.classify(busy).kind, "overload")
    assert.isTrue(Fault.isRetryable(LdapError.classify(busy), false))
    const bad = LdapError.fromUnknown(resultError(49, "Invalid Credentials"), { ...context, operation: "bind", dn: "uid=x" })
    assert.strictEqual(bad._tag, "LdapInvalidCredentials")
    assert.isFalse(Fault.isServerFault(LdapError.classify(bad)))
    const refused = LdapError.fromUnknown(Object.assign(new Error("connect ECONNREFUSED"), { code: "ECONNREFUSED" }), context)
    assert.strictEqual(refused._tag, "LdapConnectionError")
    assert.isTrue(Fault.isRetryable(LdapError.classify(refused), false))
    assert.isTrue(LdapError.isBroken(refused))
  })
})
