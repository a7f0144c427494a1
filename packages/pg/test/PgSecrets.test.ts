/**
 * Passwords in URLs: never accepted into an endpoint, never shown in an error, a status
 * or a printed configuration; from the environment they are split off, `Redacted`.
 * TLS settings in URLs are checked before anything connects.
 */
import { inspect } from "node:util"
import { assert, describe, it } from "@effect/vitest"
import { ServerSet } from "@tether/core"
import { ConfigProvider, Effect, Redacted } from "effect"
import { PgClient, PgConfig, PgDriver } from "../src/index.ts"

const SECRET = "Zebra-Horse-17"
const encoded = encodeURIComponent(SECRET)

const noSecret = (...shown: ReadonlyArray<string>) => {
  for (const text of shown) {
    assert.notInclude(text, SECRET)
    assert.notInclude(text, encoded)
    assert.notInclude(text, "Zebra")
  }
}

const urlsWithPasswords = [
  `postgres://app:${encoded}@db1:5432/app`,
  `postgres://db1:5432/app?password=${encoded}`,
  `postgres://db1:5432/app?sslmode=require&password=${encoded}`,
  `postgres://app:${encoded}@db1:5432,db2:5432/app`
]

describe("passwords in PostgreSQL URLs", () => {
  it.effect("PgClient.make refuses them with InvalidEndpoint, the password masked", () =>
    Effect.gen(function*() {
      for (const url of urlsWithPasswords) {
        for (const endpoint of [url, { url, role: "primary" as const }]) {
          const error = yield* Effect.flip(PgClient.make({ endpoints: [endpoint], user: "app", health: false }))
          assert.strictEqual(error._tag, "InvalidEndpoint", url)
          assert.include(error.message, "must not contain credentials")
          noSecret(error.message, JSON.stringify(error), inspect(error), String(error))
        }
      }
    }).pipe(Effect.scoped))

  it.effect("a ServerSet refuses them at make and at add; its status never holds one", () =>
    Effect.gen(function*() {
      const driver = PgDriver.make({ user: "app" })
      const made = yield* Effect.flip(
        ServerSet.make({ name: "s", endpoints: [`postgres://db1:5432/app?password=${encoded}`], driver, health: false })
      )
      noSecret(made.message, inspect(made))
      const set = yield* ServerSet.make({ name: "s", endpoints: ["postgres://db1:5432/app"], driver, health: false })
      for (const url of urlsWithPasswords) {
        const added = yield* Effect.flip(set.add(url))
        assert.strictEqual(added._tag, "InvalidEndpoint")
        noSecret(added.message, inspect(added))
      }
      const status = yield* set.status
      assert.strictEqual(status.endpoints.length, 1)
      noSecret(JSON.stringify(status), inspect(status, { depth: 10 }))
    }).pipe(Effect.scoped))

  it.effect("PgConfig.decode refuses them with InvalidPgConfig, the password masked", () =>
    Effect.gen(function*() {
      for (const url of urlsWithPasswords) {
        for (const endpoint of [url, { url }]) {
          const error = yield* Effect.flip(PgConfig.decode({ endpoints: [endpoint], user: "app" }))
          assert.strictEqual(error._tag, "InvalidPgConfig")
          assert.include(error.message, "holds credentials")
          noSecret(error.message, inspect(error))
        }
      }
    }))

  it.effect("PgConfig.fromEnv splits the password off the URLs at once, Redacted", () =>
    Effect.gen(function*() {
      const provider = ConfigProvider.fromEnv({
        env: {
          TETHER_PG_URLS: `postgres://app:${encoded}@db1:5432/app, postgres://db2:5432/app?password=${encoded}&sslmode=verify-full`,
          TETHER_PG_USER: "app"
        }
      })
      const options = yield* PgConfig.fromEnv.parse(provider)
      assert.deepStrictEqual(options.endpoints, ["postgres://db1:5432/app", "postgres://db2:5432/app?sslmode=verify-full"])
      assert.isTrue(Redacted.isRedacted(options.password))
      assert.strictEqual(Redacted.value(options.password!), SECRET)
      noSecret(JSON.stringify(options), inspect(options, { depth: 10 }), String(options.password))
      // TETHER_PG_PASSWORD wins over a password in a URL.
      const explicit = yield* PgConfig.fromEnv.parse(ConfigProvider.fromEnv({
        env: { TETHER_PG_URLS: `postgres://db1:5432/app?password=${encoded}`, TETHER_PG_USER: "app", TETHER_PG_PASSWORD: "other" }
      }))
      assert.strictEqual(Redacted.value(explicit.password!), "other")
      assert.deepStrictEqual(explicit.endpoints, ["postgres://db1:5432/app"])
    }))
})

describe("TLS settings in PostgreSQL URLs", () => {
  it.effect("an unknown sslmode, an unsupported parameter or an unreadable CA is a typed error before connecting", () =>
    Effect.gen(function*() {
      const cases: ReadonlyArray<readonly [PgClient.Options["endpoints"][number], string]> = [
        ["postgres://db1:5432/app?sslmode=verify_full", "sslmode must be one of disable, allow, prefer, require, verify-ca, verify-full"],
        ["postgres://db1:5432/app?sslmode=require&sslcert=/c.pem", "sslcert is not supported"],
        ["postgres://db1:5432/app?sslrootcert=/nonexistent/ca.pem", "cannot read the CA file"],
        ["postgres://db1:5432/app?sslmode=require&sslrootcert=system", "sslrootcert=system needs sslmode=verify-full"],
        [{ url: "postgres://db1:5432/app", tls: { ca: "/nonexistent/ca.pem" } }, "tls.ca cannot read the CA file"]
      ]
      for (const [endpoint, expected] of cases) {
        const error = yield* Effect.flip(PgClient.make({ endpoints: [endpoint], user: "app", health: false }))
        assert.strictEqual(error._tag, "InvalidEndpoint")
        assert.include(error.message, expected)
      }
      // The driver on its own fails the connect with a typed error too (no connection is attempted).
      const driver = PgDriver.make({ user: "app" })
      const set = yield* ServerSet.make({
        name: "s",
        endpoints: ["postgres://127.0.0.1:1/app?sslmode=sometimes"],
        driver,
        health: false,
        retry: false
      })
      const failed = yield* Effect.flip(set.as().use(() => Effect.void))
      assert.strictEqual(failed._tag, "PgTlsError")
      assert.include(failed.message, "invalid TLS settings: url: sslmode must be one of")
    }).pipe(Effect.scoped))
})
