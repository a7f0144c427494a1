import { assert, describe, it } from "@effect/vitest"
import { Effect, Redacted } from "effect"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { LdapConfig } from "../src/index.ts"

describe("LdapConfig", () => {
  it.effect("loads a configuration, reading the CA file; the password stays Redacted", () =>
    Effect.gen(function*() {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), "tether-ldap-config-"))
      const caFile = path.join(dir, "ca.pem")
      fs.writeFileSync(caFile, "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n")
      const options = yield* LdapConfig.decode({
        endpoints: ["ldaps://ldap1:636"],
        bindDn: "cn=app,dc=example,dc=com",
        password: "s3cret-ldap-password",
        tls: { caFile }
      }).pipe(Effect.ensuring(Effect.sync(() => fs.rmSync(dir, { recursive: true }))))
      assert.deepStrictEqual(options.tls?.ca, ["-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"])
      assert.strictEqual(Redacted.value(options.password!), "s3cret-ldap-password")
      assert.notInclude(String(options.password), "s3cret")
    }))

  it.effect("a missing CA file, an unreadable key, a bad URL: typed errors naming the setting, never the password", () =>
    Effect.gen(function*() {
      const base = { endpoints: ["ldaps://ldap1:636"], password: "s3cret-ldap-password" }
      const ca = yield* Effect.flip(LdapConfig.decode({ ...base, tls: { caFile: "/nonexistent/ca.pem" } }))
      assert.strictEqual(ca.setting, "tls.caFile")
      assert.include(ca.message, "ENOENT")
      const key = yield* Effect.flip(LdapConfig.decode({ ...base, tls: { keyFile: os.tmpdir() } }))
      assert.strictEqual(key.setting, "tls.keyFile")
      const url = yield* Effect.flip(LdapConfig.decode({ ...base, endpoints: ["http://ldap1"] }))
      assert.strictEqual(url.setting, "endpoints")
      const shape = yield* Effect.flip(LdapConfig.decode({ ...base, endpoints: [], startTls: "yes" }))
      assert.include(shape.message, "endpoints")
      assert.include(shape.message, "startTls")
      for (const error of [ca, key, url, shape]) assert.notInclude(error.message, "s3cret")
    }))
})
