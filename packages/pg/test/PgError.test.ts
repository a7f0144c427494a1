import { assert, describe, it } from "@effect/vitest"
import { Fault } from "@tether/core"
import { Effect, Redacted } from "effect"
import { PgConfig, PgError } from "../src/index.ts"
import { expandHostList } from "../src/internal/pgClient.ts"

const context = { endpoint: "postgres://db1:5432/app", user: "app" }
const serverError = (code: string, message: string) => Object.assign(new Error(message), { code, detail: "Key (id)=(7) exists" })

describe("PgError", () => {
  it("maps SQLSTATE classes to typed errors, and classifies them for breaker and retry", () => {
    const syntax = PgError.fromUnknown(serverError("42601", "syntax error at or near \"selec\""), context)
    assert.strictEqual(syntax._tag, "PgQueryError")
    assert.strictEqual(syntax._tag === "PgQueryError" && syntax.kind, "syntax")
    assert.strictEqual(PgError.classify(syntax).kind, "semantic")

    const constraint = PgError.fromUnknown(serverError("23505", "duplicate key value"), context)
    assert.strictEqual(constraint._tag === "PgQueryError" && constraint.kind, "constraint")
    // The detail (row values) stays out of the message.
    assert.notInclude(constraint.message, "Key (id)")

    const kinds: ReadonlyArray<readonly [string, PgError.QueryErrorKind]> = [
      ["40001", "serialization"],
      ["40P01", "deadlock"],
      ["25006", "read-only"],
      ["42P01", "undefined-object"]
    ]
    for (const [code, kind] of kinds) {
      const error = PgError.fromUnknown(serverError(code, "x"), context)
      assert.strictEqual(error._tag === "PgQueryError" && error.kind, kind)
      assert.isFalse(Fault.isRetryable(PgError.classify(error), true), `${code} is not retried on another endpoint`)
    }

    const auth = PgError.fromUnknown(serverError("28P01", "password authentication failed"), context)
    assert.strictEqual(auth._tag, "PgAuthenticationError")
    assert.strictEqual(PgError.classify(auth).kind, "authentication")
    assert.isFalse(Fault.isServerFault(PgError.classify(auth)))

    const refused = PgError.fromUnknown(Object.assign(new Error("connect ECONNREFUSED"), { code: "ECONNREFUSED" }), context)
    assert.strictEqual(refused._tag, "PgConnectionError")
    assert.isTrue(Fault.isRetryable(PgError.classify(refused), false), "never sent: safe to retry even a write")

    const shutdown = PgError.fromUnknown(serverError("57P01", "terminating connection due to administrator command"), context)
    assert.strictEqual(shutdown._tag, "PgConnectionError")
    assert.isTrue(PgError.isBroken(shutdown))
    assert.isTrue(Fault.isServerFault(PgError.classify(shutdown)))

    // A lost connection after a write was sent: outcome unknown, never replayed.
    const lost = PgError.fromUnknown(Object.assign(new Error("write CONNECTION_CLOSED"), { code: "CONNECTION_CLOSED" }), {
      ...context,
      write: true
    })
    assert.strictEqual(lost._tag, "PgOutcomeUnknown")
    assert.isFalse(Fault.isRetryable(PgError.classify(lost), false))

    const busy = PgError.fromUnknown(serverError("53300", "too many connections"), context)
    assert.strictEqual(PgError.classify(busy).kind, "overload")
  })
})

describe("PgConfig", () => {
  it.effect("decodes a configuration into client options, the password Redacted", () =>
    Effect.gen(function*() {
      const options = yield* PgConfig.decode({
        endpoints: ["postgres://db1:5432/app", { url: "postgres://db2:5432/app", role: "replica" }],
        user: "app",
        password: "s3cret-config-password",
        multiplex: 4,
        queryTimeoutMillis: 2000
      })
      assert.strictEqual(options.user, "app")
      assert.strictEqual(options.multiplex, 4)
      assert.isTrue(Redacted.isRedacted(options.password))
      assert.strictEqual(Redacted.value(options.password!), "s3cret-config-password")
      assert.notInclude(String(options.password), "s3cret")
    }))

  it.effect("the shared pool, health, breaker and retry settings reach the client's options", () =>
    Effect.gen(function*() {
      const options = yield* PgConfig.decode({
        endpoints: ["postgres://db1:5432/app"],
        user: "app",
        strategy: "fastest",
        pool: { max: 20, maxPerIdentity: 4, acquireTimeoutMillis: 2000 },
        health: { intervalMillis: 500 },
        breaker: false,
        retry: { maxAttempts: 2 }
      })
      assert.strictEqual(options.strategy, "fastest")
      assert.strictEqual(options.pool?.max, 20)
      assert.strictEqual(options.pool?.maxPerIdentity, 4)
      assert.strictEqual(options.pool?.acquireTimeout, 2000)
      assert.deepStrictEqual(options.health, { interval: 500, timeout: undefined, unhealthyAfter: undefined, healthyAfter: undefined })
      assert.strictEqual(options.breaker, false)
      assert.isDefined(options.retry === false ? undefined : options.retry?.schedule)
      const bad = yield* Effect.flip(PgConfig.decode({ endpoints: ["postgres://db1/app"], user: "app", breaker: { consecutiveFailures: 0 } }))
      assert.include(bad.message, "breaker")
    }))

  it.effect("a bad setting is a typed error naming it, and never shows the password", () =>
    Effect.gen(function*() {
      const error = yield* Effect.flip(PgConfig.decode({
        endpoints: [],
        user: "app",
        password: "s3cret-config-password",
        multiplex: 0,
        ssl: "sometimes"
      }))
      assert.strictEqual(error._tag, "InvalidPgConfig")
      assert.include(error.message, "endpoints")
      assert.include(error.message, "multiplex")
      assert.include(error.message, "ssl")
      assert.notInclude(error.message, "s3cret")
    }))
})

describe("host lists", () => {
  it("a libpq-style host list becomes one URL per host", () => {
    assert.deepStrictEqual(expandHostList("postgres://db1:5432,db2:5433/app?sslmode=require"), [
      "postgres://db1:5432/app?sslmode=require",
      "postgres://db2:5433/app?sslmode=require"
    ])
    assert.deepStrictEqual(expandHostList("postgres://db1:5432/app"), ["postgres://db1:5432/app"])
  })
})
