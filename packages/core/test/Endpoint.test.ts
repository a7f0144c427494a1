import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Result from "effect/Result"
import * as Redacted from "effect/Redacted"
import * as Schema from "effect/Schema"
import * as Endpoint from "../src/Endpoint.ts"

const failure = (input: unknown) =>
  Effect.gen(function*() {
    const result = yield* Effect.result(Endpoint.decode(input))
    assert.isTrue(Result.isFailure(result), "expected the endpoint to be rejected")
    return (result as Result.Failure<never, Endpoint.InvalidEndpoint>).failure
  })

describe("Endpoint", () => {
  it.effect("decodes a bare URL with every default", () =>
    Effect.gen(function*() {
      const endpoint = yield* Endpoint.decode("ldap://ldap1.example.com:389")
      assert.deepStrictEqual(endpoint, {
        id: "ldap://ldap1.example.com:389",
        url: "ldap://ldap1.example.com:389",
        weight: 1,
        priority: 0,
        role: "any",
        tags: {}
      })
    }))

  it.effect("decodes a full object and keeps an explicit id", () =>
    Effect.gen(function*() {
      const endpoint = yield* Endpoint.decode({
        id: "primary",
        url: "postgres://db1:5432/app",
        weight: 3,
        priority: -1,
        role: "primary",
        tls: { ca: "/etc/ssl/ca.pem", servername: "db.internal" },
        tags: { zone: "a" }
      })
      assert.deepStrictEqual(endpoint, {
        id: "primary",
        url: "postgres://db1:5432/app",
        weight: 3,
        priority: -1,
        role: "primary",
        tls: { ca: "/etc/ssl/ca.pem", rejectUnauthorized: true, servername: "db.internal" },
        tags: { zone: "a" }
      })
    }))

  it.effect("treats undefined optional fields as missing", () =>
    Effect.gen(function*() {
      const endpoint = yield* Endpoint.decode({ url: "ldap://a:389", weight: undefined, role: undefined })
      assert.strictEqual(endpoint.weight, 1)
      assert.strictEqual(endpoint.role, "any")
    }))

  it("derives ids from the URL without credentials, query or a bare slash", () => {
    assert.strictEqual(Endpoint.deriveId("ldap://a:389/"), "ldap://a:389")
    assert.strictEqual(Endpoint.deriveId("postgres://db1:5432/app?sslmode=require"), "postgres://db1:5432/app")
    assert.strictEqual(Endpoint.deriveId("postgres:///app?host=/run/pg"), "postgres:///app?host=/run/pg")
    assert.strictEqual(Endpoint.deriveId("ldaps://LDAP.example.com"), "ldaps://LDAP.example.com")
  })

  it.effect("names the endpoint, the field and the fix for a malformed URL", () =>
    Effect.gen(function*() {
      const error = yield* failure({ url: "ldap//x" })
      assert.strictEqual(error._tag, "InvalidEndpoint")
      assert.strictEqual(error.message, `endpoint "ldap//x": url must be a URL like ldap://host:389`)
      assert.deepStrictEqual(error.problems, [{ field: "url", message: "must be a URL like ldap://host:389" }])
    }))

  it.effect("rejects a URL without a scheme", () =>
    Effect.gen(function*() {
      const error = yield* failure("localhost:389")
      assert.include(error.message, "url must be a URL like ldap://host:389")
    }))

  it.effect("rejects credentials in the URL without echoing the password", () =>
    Effect.gen(function*() {
      const error = yield* failure({ url: "ldap://admin:s3cret@ldap1:389" })
      assert.notInclude(error.message, "s3cret")
      assert.include(error.message, `endpoint "ldap://***@ldap1:389"`)
      assert.include(error.message, "url must not contain credentials")
    }))

  it.effect("lists every bad field with the value it got", () =>
    Effect.gen(function*() {
      const error = yield* failure({
        url: "ldap://a:389",
        weight: 0,
        priority: 1.5,
        role: "master",
        tls: { ca: "-----BEGIN CERTIFICATE-----", rejectUnauthorized: "no" },
        tags: { zone: 1 }
      })
      assert.deepStrictEqual(error.problems.map((p) => p.field), [
        "weight",
        "priority",
        "role",
        "tls.rejectUnauthorized",
        "tags.zone"
      ])
      assert.strictEqual(
        error.message,
        `endpoint "ldap://a:389": weight must be a positive integer (got 0); ` +
          `priority must be an integer (lower is preferred) (got 1.5); ` +
          `role must be "primary", "replica" or "any" (got "master"); ` +
          `tls.rejectUnauthorized must be true or false (got "no"); ` +
          `tags.zone must be a string (tag values are strings) (got 1)`
      )
    }))

  it.effect("reports a missing url and a value that is not an endpoint at all", () =>
    Effect.gen(function*() {
      const missing = yield* failure({ weight: 2 })
      assert.include(missing.message, "url is required (a URL like ldap://host:389)")
      const number = yield* failure(42)
      assert.strictEqual(
        number.message,
        `endpoint "42": must be a URL string or an object like { url: "ldap://host:389" }`
      )
    }))

  it.effect("decodeAll labels entries by position and rejects duplicate ids", () =>
    Effect.gen(function*() {
      const endpoints = yield* Endpoint.decodeAll(["ldap://a:389", { url: "ldap://b:389", role: "replica" }])
      assert.deepStrictEqual(endpoints.map((e) => e.id), ["ldap://a:389", "ldap://b:389"])

      const positional = yield* Effect.flip(Endpoint.decodeAll(["ldap://a:389", { weight: 1 }]))
      assert.strictEqual(positional.endpoint, "#1")

      const duplicate = yield* Effect.flip(Endpoint.decodeAll(["ldap://a:389", { url: "ldap://a:389/" }]))
      assert.strictEqual(
        duplicate.message,
        `endpoint "ldap://a:389/": id "ldap://a:389" is used by more than one endpoint; give each endpoint a distinct id`
      )
    }))

  it.effect("the schema encodes a decoded endpoint back", () =>
    Effect.gen(function*() {
      const endpoint = yield* Endpoint.decode({ url: "ldap://a:389", tags: { zone: "b" } })
      const encoded = yield* Schema.encodeEffect(Endpoint.Endpoint)(endpoint)
      assert.deepStrictEqual(yield* Endpoint.decode(encoded), endpoint)
    }))

  it("acceptsWrites", () => {
    assert.isTrue(Endpoint.acceptsWrites("primary"))
    assert.isTrue(Endpoint.acceptsWrites("any"))
    assert.isFalse(Endpoint.acceptsWrites("replica"))
  })

  describe("credentials in URLs", () => {
    const secret = "Tr0ub4dor&3"
    const encoded = encodeURIComponent(secret)
    const urls = [
      `postgres://app:${encoded}@db1:5432/app`,
      `postgres://db1:5432/app?password=${encoded}`,
      `postgres://db1:5432/app?sslmode=require&password=${encoded}`,
      `postgres://db1:5432/app?sslmode=require&sslpassword=${encoded}`,
      `postgres://db1:5432/app?PassWord=${encoded}&sslmode=require`,
      `ldap://ldap1:389/dc=example,dc=com??sub??bindname=cn%3Dapp,X-BINDPW=${encoded}`,
      `ldap://ldap1:389/dc=example,dc=com????!X-BINDPW=${encoded}`
    ]

    it.effect("a password anywhere in a URL is rejected with a typed error that never shows it", () =>
      Effect.gen(function*() {
        for (const url of urls) {
          for (const input of [url, { url }, { url, weight: 0 }, [{ url }]]) {
            const result = yield* Effect.result(
              Array.isArray(input) ? Effect.asVoid(Endpoint.decodeAll(input)) : Effect.asVoid(Endpoint.decode(input))
            )
            assert.isTrue(Result.isFailure(result), `accepted ${url}`)
            const error = (result as Result.Failure<never, Endpoint.InvalidEndpoint>).failure
            assert.strictEqual(error._tag, "InvalidEndpoint")
            assert.include(error.message, "must not contain credentials")
            for (const shown of [error.message, error.endpoint, JSON.stringify(error), String(error)]) {
              assert.notInclude(shown, encoded)
              assert.notInclude(shown, secret)
              assert.notInclude(shown, "Tr0ub4dor")
            }
          }
        }
      }))

    it("redactUrl masks the user-info part and every password parameter", () => {
      for (const url of urls) {
        const shown = Endpoint.redactUrl(url)
        assert.notInclude(shown, "Tr0ub4dor", url)
        assert.include(shown, "***")
      }
      assert.strictEqual(
        Endpoint.redactUrl(`postgres://db1:5432/app?sslmode=require&password=${encoded}&application_name=x`),
        "postgres://db1:5432/app?sslmode=require&password=***&application_name=x"
      )
      assert.strictEqual(Endpoint.redactUrl("postgres://db1:5432/app?sslmode=require"), "postgres://db1:5432/app?sslmode=require")
    })

    it("splitCredentials takes the password out of a URL, Redacted, and leaves a URL decode accepts", () =>
      Effect.runSync(Effect.gen(function*() {
        const cases: ReadonlyArray<readonly [string, string, string | undefined]> = [
          [`postgres://app:${encoded}@db1:5432/app`, "postgres://db1:5432/app", "app"],
          [`postgres://db1:5432/app?password=${encoded}`, "postgres://db1:5432/app", undefined],
          [`postgres://db1:5432/app?password=${encoded}&sslmode=require`, "postgres://db1:5432/app?sslmode=require", undefined],
          [`postgres://db1:5432/app?sslmode=require&password=${encoded}`, "postgres://db1:5432/app?sslmode=require", undefined]
        ]
        for (const [input, url, user] of cases) {
          const split = Endpoint.splitCredentials(input)
          assert.strictEqual(split.url, url)
          assert.strictEqual(split.user, user)
          assert.strictEqual(Redacted.value(split.password!), secret)
          assert.notInclude(JSON.stringify(split), "Tr0ub4dor")
          assert.notInclude(String(split.password), "Tr0ub4dor")
          const endpoint = yield* Endpoint.decode(split.url)
          assert.strictEqual(endpoint.url, url)
        }
        const plain = Endpoint.splitCredentials("postgres://db1:5432/app")
        assert.deepStrictEqual(plain, { url: "postgres://db1:5432/app", user: undefined, password: undefined })
      })))
  })
})
