import { assert, layer } from "@effect/vitest"
import { Slapd } from "@tether/testkit"
import { Effect } from "effect"
import { execFileSync } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { LdapClient, LdapSession, Sasl } from "../src/index.ts"

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

  it.effect("pooled: the service identity binds with EXTERNAL (option sasl), every connection as the certificate's entry", () =>
    Effect.gen(function*() {
      const d = yield* Slapd.Slapd
      const cert = d.clientCertificate!
      const ldap = yield* LdapClient.make({
        endpoints: [d.server.ldapsUrl!],
        tls: { ca: [d.caCertPem!], cert: cert.certPem, key: cert.keyPem },
        sasl: Sasl.external(),
        health: false
      })
      const seen = yield* Effect.all([ldap.whoami, ldap.whoami, ldap.whoami], { concurrency: 3 })
      assert.deepStrictEqual(seen, [1, 2, 3].map(() => `dn:${d.users[0]!.dn}`))
      // Without a certificate the pooled bind is refused, typed.
      const bare = yield* LdapClient.make({ endpoints: [d.server.ldapsUrl!], tls: { ca: [d.caCertPem!] }, sasl: Sasl.external(), health: false, retry: false })
      const refused = yield* Effect.flip(bare.whoami)
      assert.strictEqual(refused._tag, "LdapInvalidCredentials")
    }).pipe(Effect.scoped))
})
