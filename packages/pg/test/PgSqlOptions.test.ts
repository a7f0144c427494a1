/**
 * Bad `PgSql` options, as a careless user writes them: construction fails with one typed
 * `InvalidPoolOptions` naming the option — never a defect, a throw, or a client that fails later.
 */
import { assert, describe, it } from "@effect/vitest"
import { Cause, Effect, Exit } from "effect"
import * as Reactivity from "effect/reactivity/Reactivity"
import { PgSql } from "../src/index.ts"

const make = (options: Record<string, unknown>) =>
  PgSql.make({ endpoints: ["postgres://127.0.0.1:1/db"], user: "app", health: false, ...options } as PgSql.Options).pipe(
    Effect.provide(Reactivity.layer),
    Effect.scoped
  )

const rows: ReadonlyArray<readonly [what: string, options: Record<string, unknown>, option: string]> = [
  ["queryTimeout banana", { queryTimeout: "banana" }, "queryTimeout"],
  ["connectTimeout 0", { connectTimeout: 0 }, "connectTimeout"],
  ["slowQueryThreshold a symbol", { slowQueryThreshold: Symbol("x") }, "slowQueryThreshold"],
  ["pipeline 0", { pipeline: 0 }, "pipeline"],
  ["pipeline 1.5", { pipeline: 1.5 }, "pipeline"],
  ["pgbouncer session", { pgbouncer: "session" }, "pgbouncer"],
  ["cache.ttl soon", { cache: { ttl: "soon" } }, "cache.ttl"],
  ["cache.capacity -1", { cache: { capacity: -1 } }, "cache.capacity"],
  ["readFrom replica", { readFrom: "replica" }, "readFrom"],
  ["ssl maybe", { ssl: "maybe" }, "ssl"],
  ["empty user", { user: "" }, "user"],
  ["exclusivePool.max 0", { exclusivePool: { max: 0 } }, "exclusivePool.max"],
  ["readPool.min banana", { readPool: { min: "banana" } }, "readPool.min"],
  ["listenEndpoints a string", { listenEndpoints: "postgres://db:5432/app" }, "listenEndpoints"]
]

describe("PgSql options", () => {
  for (const [what, options, option] of rows) {
    it.effect(`${what}: a typed error naming ${option}`, () =>
      Effect.gen(function*() {
        const exit = yield* Effect.exit(make(options))
        assert.isTrue(Exit.isFailure(exit))
        if (Exit.isFailure(exit)) {
          assert.isFalse(Cause.hasDies(exit.cause), `a defect: ${Cause.pretty(exit.cause)}`)
          const error = Cause.findErrorOption(exit.cause)
          assert.isTrue(error._tag === "Some")
          if (error._tag === "Some") {
            const failure = error.value as { _tag: string; option?: string; message: string }
            assert.strictEqual(failure._tag, "InvalidPoolOptions")
            assert.include(failure.message, option)
          }
        }
      }))
  }
})
