import { assert, describe, it } from "@effect/vitest"
import { ConfigProvider, Effect, Redacted } from "effect"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import * as util from "node:util"
import { LdapClient, LdapConfig } from "../src/index.ts"

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

  it.effect("sasl: SCRAM/PLAIN credentials for the service identity from a file or the environment; bad combinations named", () =>
    Effect.gen(function*() {
      const options = yield* LdapConfig.decode({
        endpoints: ["ldaps://ldap1:636"],
        password: "s3cret-sasl-password",
        sasl: { mechanism: "SCRAM-SHA-256", user: "app" }
      })
      assert.isUndefined(options.password)
      assert.deepStrictEqual(options.sasl?.sasl, { mechanism: "SCRAM-SHA-256", user: "app", authzId: undefined })
      assert.strictEqual(Redacted.value(options.sasl!.secret!), "s3cret-sasl-password")
      assert.notInclude(util.inspect(options, { depth: 10 }), "s3cret")
      const external = yield* LdapConfig.decode({ endpoints: ["ldaps://ldap1:636"], sasl: { mechanism: "EXTERNAL" } })
      assert.strictEqual(external.sasl?.sasl.mechanism, "EXTERNAL")
      const refusals = [
        { endpoints: ["ldaps://l:636"], bindDn: "cn=app", password: "s3cret-x", sasl: { mechanism: "PLAIN", user: "app" } },
        { endpoints: ["ldaps://l:636"], password: "s3cret-x", sasl: { mechanism: "PLAIN" } },
        { endpoints: ["ldaps://l:636"], sasl: { mechanism: "SCRAM-SHA-1", user: "app" } },
        { endpoints: ["ldaps://l:636"], password: "s3cret-x", sasl: { mechanism: "EXTERNAL" } }
      ]
      for (const input of refusals) {
        const error = yield* Effect.flip(LdapConfig.decode(input))
        assert.strictEqual(error.setting, "sasl")
        assert.notInclude(error.message, "s3cret")
      }
      const unknown = yield* Effect.flip(LdapConfig.decode({ endpoints: ["ldaps://l:636"], password: "s3cret-x", sasl: { mechanism: "DIGEST-MD5", user: "a" } }))
      assert.include(unknown.setting, "sasl")
      const env = yield* LdapConfig.fromEnv.parse(ConfigProvider.fromEnv({
        env: { TETHER_LDAP_URLS: "ldaps://ldap1:636", TETHER_LDAP_PASSWORD: "env-s3cret", TETHER_LDAP_SASL_MECHANISM: "PLAIN", TETHER_LDAP_SASL_USER: "app" }
      }))
      const fromEnv = yield* LdapConfig.load(env)
      assert.deepStrictEqual(fromEnv.sasl?.sasl, { mechanism: "PLAIN", user: "app", authzId: undefined })
      assert.strictEqual(Redacted.value(fromEnv.sasl!.secret!), "env-s3cret")
    }))

  it.effect("fromEnv holds the password as Redacted from the moment it is read", () =>
    Effect.gen(function*() {
      const secret = "env-secret-4f1c9"
      const provider = ConfigProvider.fromEnv({
        env: { TETHER_LDAP_URLS: "ldaps://ldap1:636", TETHER_LDAP_BIND_DN: "cn=app", TETHER_LDAP_PASSWORD: secret }
      })
      const config = yield* LdapConfig.fromEnv.parse(provider)
      assert.isTrue(Redacted.isRedacted(config.password))
      assert.strictEqual(Redacted.value(config.password!), secret)
      for (const text of [String(config), JSON.stringify(config), util.inspect(config, { depth: 10 }), String(config.password)]) {
        assert.notInclude(text, secret)
      }
      const options = yield* LdapConfig.load(config)
      assert.strictEqual(Redacted.value(options.password!), secret)
      assert.notInclude(util.inspect(options, { depth: 10 }), secret)
    }))

  it.effect("an endpoint URL holding credentials is rejected, and the error does not print them", () =>
    Effect.gen(function*() {
      const secret = "url-secret-77ab"
      for (
        const url of [
          `ldap://cn=admin:${secret}@ldap1:389`,
          `ldaps://admin:${secret}@ldap1`,
          `ldap://ldap1:389/dc=example,dc=com???bindname=cn%3Dadmin,X-BINDPW=${secret}`,
          `ldap://ldap1/??sub?(objectClass=*)?!x-bindpw=${secret}`
        ]
      ) {
        const error = yield* Effect.flip(LdapConfig.decode({ endpoints: [url] }))
        assert.strictEqual(error.setting, "endpoints")
        assert.include(error.message, "credentials")
        assert.notInclude(error.message, secret)
        assert.notInclude(JSON.stringify(error), secret)
      }
      // Plain URLs (with a DN and search parts) are fine.
      yield* LdapConfig.decode({ endpoints: ["ldap://ldap1:389/dc=example,dc=com??sub"] })
    }))

  it.effect("LdapClient.make rejects an endpoint URL with credentials in an extension, without printing them", () =>
    Effect.gen(function*() {
      const secret = "ext-secret-90d2"
      for (const url of [`ldap://ldap1:389/dc=x???bindname=cn%3Dadmin,X-BINDPW=${secret}`, `ldaps://admin:${secret}@ldap1`]) {
        const error = yield* Effect.flip(LdapClient.make({ endpoints: [url], health: false }))
        assert.strictEqual(error._tag, "InvalidEndpoint")
        assert.include(error.message, "credentials")
        for (const text of [error.message, JSON.stringify(error), String(error)]) assert.notInclude(text, secret)
      }
    }).pipe(Effect.scoped))
})
