import { assert, layer } from "@effect/vitest"
import { Slapd } from "@tether/testkit"
import { Effect } from "effect"
import { execFileSync } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { LdapSession } from "../src/index.ts"

/** A certificate for CN=user1 from a CA the server does not trust. */
const foreign = (() => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "tether-foreign-"))
  try {
    execFileSync("openssl", [
      "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
      "-keyout", path.join(dir, "k.pem"), "-out", path.join(dir, "c.pem"), "-subj", "/CN=user1", "-days", "1"
    ], { stdio: "ignore" })
    return { key: fs.readFileSync(path.join(dir, "k.pem"), "utf8"), cert: fs.readFileSync(path.join(dir, "c.pem"), "utf8") }
  } finally {
    fs.rmSync(dir, { recursive: true })
  }
})()

layer(Slapd.layer({ servers: 1, users: 2, tls: true, clientCertificates: true }), { excludeTestServices: true })("SASL EXTERNAL", (it) => {
  const options = (d: Slapd.Directory, tls: object): LdapSession.Options => ({
    endpoints: [d.server.ldapsUrl!],
    tls: { ca: [d.caCertPem!], ...tls }
  })

  it.effect("a TLS client certificate authenticates as the entry its subject maps to", () =>
    Effect.gen(function*() {
      const d = yield* Slapd.Slapd
      const cert = d.clientCertificate!
      const session = yield* LdapSession.openExternal(options(d, { cert: cert.certPem, key: cert.keyPem }))
      assert.strictEqual(session.authorizedAs, `dn:${d.users[0]!.dn}`)
      assert.strictEqual(session.connection.boundAs, d.users[0]!.dn)
    }).pipe(Effect.scoped))

  it.effect("without a certificate, or with one from another CA, EXTERNAL is refused", () =>
    Effect.gen(function*() {
      const d = yield* Slapd.Slapd
      const none = yield* Effect.flip(Effect.scoped(LdapSession.openExternal(options(d, {}))))
      assert.strictEqual(none._tag, "LdapInvalidCredentials")
      assert.strictEqual((none as { resultCode?: number }).resultCode, 7)
      const other = yield* Effect.flip(Effect.scoped(LdapSession.openExternal(options(d, { cert: foreign.cert, key: foreign.key }))))
      // slapd with TLSVerifyClient try ends the handshake on a certificate it cannot verify.
      assert.include(["LdapConnectionError", "LdapInvalidCredentials"], other._tag)
    }))
})
