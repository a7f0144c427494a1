import { assert, describe, it } from "@effect/vitest"
import { binaryTypesOf, parseDefinition } from "../src/internal/ldapSchema.ts"

const defs = [
  "( 0.9.2342.19200300.100.1.60 NAME 'jpegPhoto' DESC 'RFC2798: a JPEG image' SYNTAX 1.3.6.1.4.1.1466.115.121.1.28 )",
  "( 2.5.4.36 NAME 'userCertificate' DESC 'RFC2256: X.509 user certificate, use ;binary' EQUALITY certificateExactMatch SYNTAX 1.3.6.1.4.1.1466.115.121.1.8 )",
  "( 2.5.4.35 NAME 'userPassword' DESC 'RFC4519/2307: password of user' EQUALITY octetStringMatch SYNTAX 1.3.6.1.4.1.1466.115.121.1.40{128} )",
  "( 2.5.4.41 NAME 'name' EQUALITY caseIgnoreMatch SYNTAX 1.3.6.1.4.1.1466.115.121.1.15{32768} )",
  "( 2.5.4.3 NAME ( 'cn' 'commonName' ) DESC 'common name' SUP name )",
  "( 1.2.3.4 NAME 'myBlob' SYNTAX '1.3.6.1.4.1.1466.115.121.1.5' )",
  "( 1.2.3.5 NAME ( 'childBlob' 'blobAlias' ) SUP myBlob )",
  "( 1.2.3.6 NAME 'loop1' SUP loop2 )",
  "( 1.2.3.7 NAME 'loop2' SUP loop1 )",
  "not a definition"
]

describe("schema: binary attribute types", () => {
  it("reads names, SUP and SYNTAX (with a length, quoted or not)", () => {
    assert.deepStrictEqual(parseDefinition(defs[4]!), { names: ["2.5.4.3", "cn", "commonName"], sup: "name", syntax: undefined })
    assert.deepStrictEqual(parseDefinition(defs[2]!)?.syntax, "1.3.6.1.4.1.1466.115.121.1.40")
    assert.isUndefined(parseDefinition("garbage"))
  })

  it("binary syntaxes, inherited through SUP; text ones and SUP loops are not", () => {
    const binary = binaryTypesOf(defs)
    for (const name of ["jpegphoto", "usercertificate", "userpassword", "myblob", "childblob", "blobalias", "0.9.2342.19200300.100.1.60"]) {
      assert.isTrue(binary.has(name), name)
    }
    for (const name of ["cn", "commonname", "name", "loop1", "loop2"]) assert.isFalse(binary.has(name), name)
  })
})
