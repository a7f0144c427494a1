import { assert, describe, it } from "@effect/vitest"
import { Deferred, Effect, Fiber } from "effect"
import { TestClock } from "effect/testing"
import * as fc from "fast-check"
import * as QueryCache from "../src/internal/queryCache.ts"

/** A statement stand-in that counts its runs (the cache's logic is what is under test here). */
const counted = (rows: ReadonlyArray<unknown>) => {
  const counter = { runs: 0 }
  return { counter, run: Effect.sync(() => (counter.runs++, rows)) }
}

describe("QueryCache (Effect Cache)", () => {
  it.effect("a hit until the time to live passes on the clock, then one run again", () =>
    Effect.gen(function*() {
      const cache = yield* QueryCache.make(10, "10 seconds")
      const { counter, run } = counted([{ x: 1 }])
      const first = yield* cache.get("k", "select 1", run)
      assert.isFalse(first.hit)
      yield* TestClock.adjust("9999 millis")
      const second = yield* cache.get("k", "select 1", run)
      assert.isTrue(second.hit)
      assert.strictEqual(second.rows, first.rows)
      assert.strictEqual(counter.runs, 1)
      yield* TestClock.adjust("1 millis")
      assert.isFalse((yield* cache.get("k", "select 1", run)).hit, "expired at the time to live")
      assert.strictEqual(counter.runs, 2)
      assert.deepStrictEqual(yield* cache.stats, { hits: 1, misses: 2, size: 1 })
    }))

  it.effect("single flight: 50 concurrent misses of one key run the statement once", () =>
    Effect.gen(function*() {
      const cache = yield* QueryCache.make(10, "1 minute")
      const gate = yield* Deferred.make<void>()
      let runs = 0
      const run = Effect.andThen(Effect.sync(() => runs++), Effect.as(Deferred.await(gate), [{ n: 1 }]))
      const fibers = yield* Effect.forEach(
        Array.from({ length: 50 }, () => cache.get("same", "select n", run)),
        (get) => Effect.forkChild(get)
      )
      yield* Effect.yieldNow
      yield* Deferred.succeed(gate, undefined)
      const results = yield* Fiber.joinAll(fibers)
      assert.strictEqual(runs, 1)
      assert.strictEqual(results.filter((r) => !r.hit).length, 1)
      assert.deepStrictEqual(yield* cache.stats, { hits: 49, misses: 1, size: 1 })
    }))

  it.effect("failures are shared by the waiting callers but never kept", () =>
    Effect.gen(function*() {
      const cache = yield* QueryCache.make(10, "1 minute")
      let runs = 0
      const failing = Effect.suspend(() => (runs++, Effect.fail("down" as const)))
      assert.strictEqual(yield* Effect.flip(cache.get("k", "select 1", failing)), "down")
      assert.strictEqual(yield* Effect.flip(cache.get("k", "select 1", failing)), "down")
      assert.strictEqual(runs, 2)
      assert.strictEqual((yield* cache.stats).size, 0)
    }))

  it.effect("least recently used entries go first; invalidate by statement text", () =>
    Effect.gen(function*() {
      const cache = yield* QueryCache.make(2, "1 minute")
      const a = counted([1])
      const b = counted([2])
      const c = counted([3])
      yield* cache.get("a", "select a", a.run)
      yield* cache.get("b", "select b", b.run)
      yield* cache.get("a", "select a", a.run) // a is now the most recently used
      yield* cache.get("c", "select c", c.run)
      assert.isTrue((yield* cache.get("a", "select a", a.run)).hit)
      assert.isFalse((yield* cache.get("b", "select b", b.run)).hit, "b was evicted")
      assert.strictEqual(yield* cache.invalidate((text) => text === "select b"), 1)
      assert.strictEqual((yield* cache.stats).size, 1)
      assert.strictEqual(yield* cache.invalidate(), 1)
      assert.strictEqual((yield* cache.stats).size, 0)
    }))

  it.effect("hits, misses, runs, evictions and invalidations equal a reference model's, under random operations", () =>
    Effect.promise(() =>
      fc.assert(
        fc.asyncProperty(
          fc.integer({ min: 1, max: 4 }),
          fc.array(
            fc.oneof(
              fc.record({ _tag: fc.constant("Get" as const), key: fc.integer({ min: 0, max: 5 }) }),
              fc.record({
                _tag: fc.constant("Advance" as const),
                // The boundaries of the time to live, and anything up to past it.
                millis: fc.oneof(fc.constantFrom(0, 1, 999, 1_000, 1_001), fc.integer({ min: 0, max: 1_500 }))
              }),
              fc.record({ _tag: fc.constant("Invalidate" as const), key: fc.integer({ min: 0, max: 5 }) })
            ),
            { minLength: 1, maxLength: 60 }
          ),
          (capacity, ops) =>
            Effect.runPromise(Effect.gen(function*() {
              const ttl = 1_000
              const cache = yield* QueryCache.make(capacity, ttl)
              // The model: entries in least-recently-used order, each with its expiry; runs per key.
              const model = new Map<number, number>()
              let now = 0
              let hits = 0
              let misses = 0
              const runs = new Map<number, number>()
              for (const op of ops) {
                if (op._tag === "Advance") {
                  yield* TestClock.adjust(op.millis)
                  now += op.millis
                } else if (op._tag === "Get") {
                  const run = Effect.sync(() => {
                    runs.set(op.key, (runs.get(op.key) ?? 0) + 1)
                    return [op.key]
                  })
                  const result = yield* cache.get(`k${op.key}`, `select ${op.key}`, run)
                  const expiresAt = model.get(op.key)
                  model.delete(op.key)
                  const expected = expiresAt !== undefined && now < expiresAt
                  model.set(op.key, expected ? expiresAt : now + ttl)
                  while (model.size > capacity) model.delete(model.keys().next().value!)
                  if (expected) hits++
                  else misses++
                  assert.strictEqual(result.hit, expected, `get ${op.key} at ${now}`)
                  assert.deepStrictEqual(result.rows, [op.key])
                } else {
                  for (const [key, expiresAt] of model) if (now >= expiresAt) model.delete(key)
                  const expected = model.delete(op.key) ? 1 : 0
                  assert.strictEqual(yield* cache.invalidate((text) => text === `select ${op.key}`), expected)
                }
              }
              const stats = yield* cache.stats
              assert.deepStrictEqual({ hits: stats.hits, misses: stats.misses }, { hits, misses })
              // One run per miss: nothing ran that the model did not expect.
              assert.strictEqual([...runs.values()].reduce((a, b) => a + b, 0), misses)
            }).pipe(Effect.provide(TestClock.layer())))
        ),
        { numRuns: 200 }
      )
    ))

  it("keys separate identities and parameters (bigint- and bytes-safe)", () => {
    assert.notStrictEqual(QueryCache.keyOf("select $1", [1], "alice"), QueryCache.keyOf("select $1", [1], "bob"))
    assert.notStrictEqual(QueryCache.keyOf("select $1", [1n], "a"), QueryCache.keyOf("select $1", ["1"], "a"))
    assert.notStrictEqual(
      QueryCache.keyOf("select $1", [new Uint8Array([1])], "a"),
      QueryCache.keyOf("select $1", [new Uint8Array([2])], "a")
    )
  })
})
