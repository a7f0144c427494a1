/**
 * The tagged pool (`internal/pool`, one pool per endpoint whose connections
 * carry their identity) is what `IdentityPool.make` builds. This file runs
 * the IdentityPool unit tests and properties over its `make` explicitly (so
 * they keep covering it if the public wiring changes), and adds tests
 * of what only it has: bounded-fairness reuse, `resize`, housekeeping.
 */
import { assert, describe, it } from "@effect/vitest"
import { Identity, IdentityPool } from "@tether/core"
import { Deferred, Effect, Fiber, Metric, Redacted } from "effect"
import { TestClock } from "effect/testing"
import type * as Core from "@tether/core"
import { vi } from "vitest"
import * as Tagged from "../src/internal/pool/identityPool.ts"

vi.mock("@tether/core", async (importOriginal) => {
  const core = await importOriginal<typeof Core>()
  const tagged = await import("../src/internal/pool/identityPool.ts")
  return { ...core, IdentityPool: { ...core.IdentityPool, make: tagged.make } }
})

await import("./IdentityPool.test.ts")
await import("./IdentityPool.property.test.ts")

interface Conn {
  readonly id: number
  principal: string
}

const directory = () => {
  const state = { opened: 0, open: new Set<number>(), rebinds: 0 }
  const connect = (identity: Identity.Credentials | undefined) =>
    Effect.acquireRelease(
      Effect.sync((): Conn => {
        const conn = { id: ++state.opened, principal: identity?.principal ?? "service" }
        state.open.add(conn.id)
        return conn
      }),
      (conn) => Effect.sync(() => state.open.delete(conn.id))
    )
  const rebind = (conn: Conn, identity: Identity.Credentials | undefined) =>
    Effect.sync(() => {
      state.rebinds++
      conn.principal = identity?.principal ?? "service"
    })
  return { state, connect, rebind }
}
const user = (i: number) => Identity.make(`uid=u${i}`, Redacted.make(`pw-${i}`), { label: `u${i}` })

/** `users` borrowers per identity loop `rounds` times over a pool of `max` connections; each holds its connection for `hold` ms. */
const contended = (maxReuseStreak: number, users: number, max: number) =>
  Effect.gen(function*() {
    const dir = directory()
    const pool = yield* Tagged.make({ name: "p", connect: dir.connect, rebind: dir.rebind, max, maxReuseStreak })
    const wrong: Array<string> = []
    const fibers = yield* Effect.forEach(Array.from({ length: users }, (_, i) => i), (i) =>
      Effect.forkChild(Effect.forEach(Array.from({ length: 20 }), () =>
        pool.use(user(i), (c) =>
          Effect.gen(function*() {
            if (c.principal !== `uid=u${i}`) wrong.push(`u${i} got ${c.principal}`)
            yield* Effect.sleep("10 millis")
          })), { discard: true })))
    for (let t = 0; t < 200 && fibers.some((f) => f.pollUnsafe() === undefined); t++) yield* TestClock.adjust("10 millis")
    yield* Fiber.joinAll(fibers)
    assert.deepStrictEqual(wrong, [])
    return yield* pool.stats
  }).pipe(Effect.scoped)

describe("tagged pool", () => {
  it("the IdentityPool tests above ran over the tagged pool", () => {
    assert.strictEqual(IdentityPool.make, Tagged.make)
  })


  it.effect("bounded fairness: 10 users on 8 connections reuse more than strict arrival order, and everyone finishes", () =>
    Effect.gen(function*() {
      const fifo = yield* contended(0, 10, 8)
      const fair = yield* contended(4, 10, 8)
      assert.strictEqual(fifo.borrows, 200)
      assert.strictEqual(fair.borrows, 200)
      assert.isAbove(fair.reuseRate, fifo.reuseRate, `reuse: strict order ${fifo.reuseRate}, bounded fairness ${fair.reuseRate}`)
      assert.isAtMost(fair.open, 8)
    }))

  it.effect("a borrower resumed from the queue runs after the dispatch that granted it: the returns it causes are dispatched at once", () =>
    Effect.gen(function*() {
      const dir = directory()
      const pool = yield* Tagged.make({ name: "p", connect: dir.connect, max: 2, maxPerIdentity: 1 })
      const [a, b] = [user(0), user(1)]
      const releaseA = yield* Deferred.make<void>()
      const releaseB = yield* Deferred.make<void>()
      const log: Array<string> = []
      // A's and B's only connections, held.
      const holders = [
        yield* Effect.forkChild(pool.use(a, () => Deferred.await(releaseA))),
        yield* Effect.forkChild(pool.use(b, () => Deferred.await(releaseB)))
      ]
      yield* TestClock.adjust("1 millis")
      // Queued: a borrower of A that, once served, lets B's holder return; then a borrower of B.
      const waiterA = yield* Effect.forkChild(
        pool.use(a, () => Effect.sync(() => log.push("A"))).pipe(
          Effect.andThen(Deferred.succeed(releaseB, undefined)),
          // B's holder returned its connection (synchronously, above): the borrower of B was granted it.
          Effect.andThen(pool.stats),
          Effect.map((stats) => log.push(`after B returned: ${stats.pending} pending`))
        )
      )
      yield* TestClock.adjust("1 millis")
      const waiterB = yield* Effect.forkChild(pool.use(b, () => Effect.sync(() => log.push("B"))))
      yield* TestClock.adjust("1 millis")
      assert.strictEqual((yield* pool.stats).pending, 2)
      yield* Deferred.succeed(releaseA, undefined)
      yield* Fiber.joinAll([...holders, waiterA, waiterB])
      // Resumed inside the dispatch that served it (as it once was), the borrower of A would have run
      // while every dispatch its work caused was skipped: B would still have been pending here.
      assert.deepStrictEqual(log, ["A", "after B returned: 0 pending", "B"])
    }).pipe(Effect.scoped))

  it.effect("resize: growing admits a waiter at once; shrinking closes idle connections above the limit, the rest when returned", () =>
    Effect.gen(function*() {
      const dir = directory()
      const pool = yield* Tagged.make({ name: "p", connect: dir.connect, max: 1 })
      const holder = yield* Effect.forkChild(pool.use(user(0), () => Effect.sleep("1 second")))
      yield* TestClock.adjust("1 millis")
      const waiter = yield* Effect.forkChild(pool.use(user(1), (c) => Effect.as(Effect.sleep("1 second"), c.principal)))
      yield* TestClock.adjust("1 millis")
      assert.strictEqual((yield* pool.stats).pending, 1)
      yield* pool.resize({ max: 2 })
      yield* TestClock.adjust("1 millis")
      assert.strictEqual((yield* pool.stats).pending, 0, "admitted at once")
      assert.strictEqual(dir.state.open.size, 2)
      yield* pool.resize({ max: 1 })
      assert.strictEqual(dir.state.open.size, 2, "work in flight is not failed")
      yield* TestClock.adjust("1 second")
      yield* Fiber.join(holder)
      assert.strictEqual(yield* Fiber.join(waiter), "uid=u1")
      assert.strictEqual(dir.state.open.size, 1, "the surplus closed as it was returned")
      const error = yield* Effect.flip(pool.resize({ max: 0 }))
      assert.strictEqual(error._tag, "InvalidPoolOptions")
    }).pipe(Effect.scoped))

  it.effect("housekeeping (TestClock): idle connections close after idleTimeToLive, keeping min of the default identity", () =>
    Effect.gen(function*() {
      const dir = directory()
      const pool = yield* Tagged.make({ name: "p", connect: dir.connect, min: 1, max: 3, pool: { idleTimeToLive: "1 minute" } })
      assert.strictEqual(dir.state.open.size, 1, "warmed up to min")
      yield* pool.use(user(0), () => Effect.void)
      yield* pool.use(user(1), () => Effect.void)
      assert.strictEqual(dir.state.open.size, 3)
      yield* TestClock.adjust("59 seconds")
      assert.strictEqual(dir.state.open.size, 3)
      yield* TestClock.adjust("2 seconds")
      assert.strictEqual(dir.state.open.size, 1, "the default identity's min stays")
    }).pipe(Effect.scoped))

  it.effect("housekeeping (TestClock): a connection past maxLifetime is closed when idle, never while lent", () =>
    Effect.gen(function*() {
      const dir = directory()
      const pool = yield* Tagged.make({ name: "p", connect: dir.connect, max: 2, pool: { maxLifetime: "10 seconds" } })
      const first = yield* pool.use(user(0), (c) => Effect.succeed(c.id))
      const busy = yield* Effect.forkChild(pool.use(user(0), (c) => Effect.as(Effect.sleep("20 seconds"), c.id)))
      yield* TestClock.adjust("15 seconds")
      assert.isTrue(dir.state.open.has(first), "still lent")
      yield* TestClock.adjust("5 seconds")
      assert.strictEqual(yield* Fiber.join(busy), first)
      assert.isFalse(dir.state.open.has(first), "closed once returned")
    }).pipe(Effect.scoped))

  it.effect("metrics: counters reach the pool's series on the next sweep; a borrow that waited records its wait", () =>
    Effect.gen(function*() {
      const dir = directory()
      const pool = yield* Tagged.make({ name: "metered", connect: dir.connect, max: 1 })
      const held = yield* Effect.forkChild(pool.use(user(0), () => Effect.sleep("50 millis")))
      yield* Effect.yieldNow
      const waiter = yield* Effect.forkChild(pool.use(user(0), () => Effect.void))
      yield* TestClock.adjust("50 millis")
      yield* Fiber.join(held)
      yield* Fiber.join(waiter)
      yield* pool.use(user(0), () => Effect.void)
      yield* TestClock.adjust("1 second") // a housekeeping sweep
      const series = (yield* Metric.snapshot).filter((m) => m.attributes?.["pool"] === "metered")
      const state = (id: string) => series.find((m) => m.id === id)?.state as { count?: number; sum?: number } | undefined
      assert.strictEqual(state("tether_pool_connections_created_total")?.count, 1)
      // The first borrow waited for its connection to open, the second for the first to finish; the third was served at once.
      assert.strictEqual(state("tether_pool_immediate_borrows_total")?.count, 1)
      const waited = state("tether_pool_acquire_time_ms")
      assert.strictEqual(waited?.count, 2)
      assert.isAtLeast(waited?.sum ?? 0, 50)
    }).pipe(Effect.scoped))
})
