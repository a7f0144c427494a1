/**
 * The LDAP-specific options of `LdapClient.Options`, checked by
 * `internal/ldapOptions.ts` (`LdapClient.make` runs the connection settings'
 * check through `ServerSet.make`; see badConfig.test.ts in the testkit).
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Redacted } from "effect"
import { checkOptions } from "../src/internal/ldapOptions.ts"

const base = { endpoints: ["ldap://ldap1:389"] }

const rows: ReadonlyArray<readonly [string, Record<string, unknown>, string]> = [
  ["timeout banana", { timeout: "banana" }, "timeout"],
  ["timeout 0", { timeout: 0 }, "timeout"],
  ["connectTimeout banana", { connectTimeout: "banana" }, "connectTimeout"],
  ["connectTimeout negative", { connectTimeout: -1 }, "connectTimeout"],
  ["bindDn without password", { bindDn: "cn=app,dc=example" }, "password"],
  ["password as a plain string", { bindDn: "cn=app", password: "s3cret" }, "password"],
  ["startTls yes", { startTls: "yes" }, "startTls"],
  ["allowPlaintext 1", { allowPlaintext: 1 }, "allowPlaintext"],
  ["tls a string", { tls: "on" }, "tls"],
  ["strategy typo", { strategy: "round_robin" }, "strategy"],
  ["no endpoints", { endpoints: [] }, "endpoints"],
  ["empty bindDn", { bindDn: "", password: Redacted.make("s3cret") }, "bindDn"]
]

describe("LdapClient options", () => {
  for (const [what, options, option] of rows) {
    it.effect(`${what} → InvalidPoolOptions naming ${option}`, () =>
      Effect.gen(function*() {
        const error = yield* Effect.flip(checkOptions({ ...base, ...options }))
        assert.strictEqual(error._tag, "InvalidPoolOptions")
        assert.strictEqual(error.option, option, error.message)
        assert.notInclude(error.message, "s3cret")
      }))
  }

  it.effect("good options pass", () =>
    checkOptions({ ...base, bindDn: "cn=app", password: Redacted.make("x"), timeout: "5 seconds", health: { interval: 1000 } }))
})
