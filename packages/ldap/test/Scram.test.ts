import { assert, describe, it } from "@effect/vitest"
import * as scram from "../src/internal/scram.ts"

describe("SCRAM client messages", () => {
  it("RFC 5802 example (SCRAM-SHA-1): client-final and the expected server signature", () => {
    const first = scram.start("user", undefined, "fyko+d2lbbFgONRv9qkxdawL")
    assert.strictEqual(first.clientFirst, "n,,n=user,r=fyko+d2lbbFgONRv9qkxdawL")
    const final = scram.finish("sha1", first, "r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,s=QSXCR+Q6sek8bf92,i=4096", "pencil")
    assert.deepStrictEqual(final, {
      clientFinal: "c=biws,r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,p=v0X8v3Bz2T0CJGbJQyF0X+HI4Ts=",
      expectedServerFinal: "v=rmF9pqV8S7suAoZWja4dJRkFsKQ="
    })
  })

  it("RFC 7677 example (SCRAM-SHA-256)", () => {
    const first = scram.start("user", undefined, "rOprNGfwEbeRWgbNEkqO")
    const final = scram.finish(
      "sha256",
      first,
      "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096",
      "pencil"
    )
    assert.deepStrictEqual(final, {
      clientFinal: "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",
      expectedServerFinal: "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="
    })
  })

  it("escapes the user name and carries an authzid; refuses a server nonce that does not extend the client's", () => {
    const first = scram.start("a=b,c", "dn:uid=x", "abc")
    assert.strictEqual(first.clientFirst, "n,a=dn:uid=3Dx,n=a=3Db=2Cc,r=abc")
    assert.deepStrictEqual(scram.finish("sha256", first, "r=zzz,s=QSXCR+Q6sek8bf92,i=4096", "p"), { refused: "the server's nonce does not extend the client's" })
    assert.deepStrictEqual(scram.finish("sha256", first, "r=abc,s=QSXCR+Q6sek8bf92,i=4096", "p"), { refused: "the server's nonce does not extend the client's" })
    assert.property(scram.finish("sha256", first, "r=abcd,i=0", "p"), "refused")
    assert.deepStrictEqual(scram.finish("sha256", first, "e=unknown-user", "p"), { refused: "the server refused: unknown-user" })
  })
})
