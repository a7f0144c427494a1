import { assert, describe, it } from "@effect/vitest"
import { ServerSet } from "@tether/core"
import { Effect, Fiber, Redacted, Stream, SubscriptionRef } from "effect"
import { TestClock } from "effect/testing"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { PgConfig } from "../src/index.ts"

/** A handle that records what `apply` is given (the set's own logic is tested in core). */
const recording = () => {
  const applied: Array<ServerSet.Reconfiguration> = []
  const status = Effect.succeed({ name: "rec", strategy: "round-robin" as const, endpoints: [] })
  const handle: ServerSet.Reconfigure = {
    ...ServerSet.serverlessReconfigure("rec", status),
    apply: (config) =>
      Effect.sync(() => {
        applied.push(config)
        return []
      })
  }
  return { applied, handle }
}

const tempFile = () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "tether-pg-watch-"))
  const file = path.join(dir, "tether.json")
  return {
    file,
    write: (pg: unknown) => fs.writeFileSync(file, JSON.stringify({ pg })),
    writeText: (text: string) => fs.writeFileSync(file, text),
    remove: Effect.sync(() => fs.rmSync(dir, { recursive: true, force: true }))
  }
}

describe("PgConfig.watch", () => {
  it.effect("applies the file at start and at each poll of the clock; host lists are expanded as the client does", () =>
    Effect.gen(function*() {
      const tmp = tempFile()
      yield* Effect.addFinalizer(() => tmp.remove)
      tmp.write({ user: "app", endpoints: ["postgres://db1:5432/app"], pool: { max: 5 } })
      const { applied, handle } = recording()
      const watch = yield* PgConfig.watch(tmp.file, handle, { interval: "2 seconds", password: Redacted.make("pw") })
      assert.strictEqual(applied.length, 1)
      assert.deepStrictEqual(applied[0]!.endpoints, ["postgres://db1:5432/app"])
      assert.strictEqual(applied[0]!.pool?.max, 5)

      tmp.write({ user: "app", endpoints: ["postgres://db1:5432,db2:5433/app"], strategy: "least-connections" })
      const next = yield* SubscriptionRef.changes(watch.config).pipe(Stream.drop(1), Stream.take(1), Stream.runHead, Effect.forkChild)
      yield* TestClock.adjust("2 seconds")
      yield* Fiber.join(next)
      assert.strictEqual(applied.length, 2)
      assert.deepStrictEqual(applied[1]!.endpoints, ["postgres://db1:5432/app", "postgres://db2:5433/app"])
      assert.strictEqual(applied[1]!.strategy, "least-connections")
      // The password given with the watch is in the configuration, Redacted.
      const current = yield* SubscriptionRef.get(watch.config)
      assert.strictEqual(Redacted.value(current.password!), "pw")
    }).pipe(Effect.scoped))

  it.effect("a bad file (not JSON, invalid, unreadable) is an InvalidPgConfig that never quotes the password and applies nothing", () =>
    Effect.gen(function*() {
      const tmp = tempFile()
      yield* Effect.addFinalizer(() => tmp.remove)
      tmp.write({ user: "app", endpoints: ["postgres://db1:5432/app"] })
      const { applied, handle } = recording()
      const watch = yield* PgConfig.watch(tmp.file, handle)
      assert.strictEqual(applied.length, 1)

      tmp.writeText(`{ "pg": { "user": "app", "password": "hunter2-secret", "endpoints": [ `)
      const notJson = yield* Effect.flip(watch.reload)
      assert.strictEqual(notJson._tag, "InvalidPgConfig")
      assert.notInclude(notJson.message, "hunter2")

      tmp.write({ user: "app", password: "hunter2-secret", endpoints: ["postgres://db1:5432/app"], pool: { max: "x" } })
      const invalid = yield* Effect.flip(watch.reload)
      assert.strictEqual(invalid._tag, "InvalidPgConfig")
      assert.notInclude(invalid.message, "hunter2")

      yield* tmp.remove
      const missing = yield* Effect.flip(watch.reload)
      assert.strictEqual(missing._tag, "InvalidPgConfig")
      assert.include(missing.message, "ENOENT")
      assert.strictEqual(applied.length, 1)
      assert.deepStrictEqual((yield* SubscriptionRef.get(watch.config)).endpoints, ["postgres://db1:5432/app"])
    }).pipe(Effect.scoped))
})
