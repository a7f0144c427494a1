import { assert, describe, it } from "@effect/vitest"
import { Effect, Exit, Fiber, Logger, Scope } from "effect"
import { TestClock } from "effect/testing"
import { ConnectionPool } from "@tether/core"
import type { FakeConnection } from "./fakeConnections.ts"
import { makeFactory } from "./fakeConnections.ts"

/** Lets forked fibers run until they block. */
const settle = Effect.forEach(Array.from({ length: 50 }), () => Effect.yieldNow, { discard: true })

const hold = (connection: FakeConnection) =>
  Effect.acquireRelease(
    Effect.sync(() => {
      connection.borrowers++
      return connection
    }),
    () => Effect.sync(() => connection.borrowers--)
  )

describe("ConnectionPool", () => {
  it.effect("warms up to min and reuses connections", () =>
    Effect.gen(function*() {
      const f = makeFactory()
      const pool = yield* ConnectionPool.make({ name: "t", acquire: f.acquire, min: 2, max: 5 })
      assert.strictEqual(f.state.opened, 2)
      for (let i = 0; i < 10; i++) yield* pool.use(() => Effect.void)
      assert.strictEqual(f.state.opened, 2)
      const stats = yield* pool.stats
      assert.deepStrictEqual([stats.idle, stats.inUse, stats.borrows], [2, 0, 10])
    }))

  it.effect("never opens more than max; extra borrowers wait their turn", () =>
    Effect.gen(function*() {
      const f = makeFactory()
      const pool = yield* ConnectionPool.make({ name: "t", acquire: f.acquire, max: 3 })
      const fibers = yield* Effect.forEach(
        Array.from({ length: 8 }, (_, i) => i),
        () => Effect.forkChild(pool.use((c) => Effect.sleep("1 second").pipe(Effect.as(c.id))))
      )
      yield* settle
      assert.strictEqual(f.state.open.size, 3)
      assert.strictEqual((yield* pool.stats).pending, 5)
      yield* TestClock.adjust("3 seconds")
      const ids = yield* Fiber.joinAll(fibers)
      assert.strictEqual(ids.length, 8)
      assert.strictEqual(f.state.maxOpen, 3)
    }))

  it.effect("fails a borrower with PoolTimeout after acquireTimeout, naming the pool's state", () =>
    Effect.gen(function*() {
      const f = makeFactory()
      const pool = yield* ConnectionPool.make({ name: "ldap://a", acquire: f.acquire, max: 1, acquireTimeout: "2 seconds" })
      const holder = yield* Effect.forkChild(pool.use(() => Effect.never))
      yield* settle
      const waiter = yield* Effect.forkChild(Effect.exit(pool.use(() => Effect.succeed("got it"))))
      yield* TestClock.adjust("1999 millis")
      assert.isUndefined(waiter.pollUnsafe())
      yield* TestClock.adjust("1 millis")
      const exit = yield* Fiber.join(waiter)
      assert.isTrue(Exit.isFailure(exit))
      const error = Exit.isFailure(exit) ? exit.cause.reasons[0] : undefined
      assert.strictEqual(error?._tag, "Fail")
      const e = (error as any).error
      assert.strictEqual(e._tag, "PoolTimeout")
      assert.include(e.message, "ldap://a")
      assert.include(e.message, "in use 1/1")
      assert.strictEqual((yield* pool.stats).timeouts, 1)
      yield* Fiber.interrupt(holder)
    }))

  it.effect("the acquire timeout bounds the wait only, not the work", () =>
    Effect.gen(function*() {
      const f = makeFactory()
      const pool = yield* ConnectionPool.make({ name: "t", acquire: f.acquire, max: 1, acquireTimeout: "1 second" })
      const slow = yield* Effect.forkChild(pool.use(() => Effect.sleep("5 seconds").pipe(Effect.as("done"))))
      yield* TestClock.adjust("6 seconds")
      assert.strictEqual(yield* Fiber.join(slow), "done")
    }))

  it.effect("closes idle connections above min after the idle time to live", () =>
    Effect.gen(function*() {
      const f = makeFactory()
      const pool = yield* ConnectionPool.make({
        name: "t",
        acquire: f.acquire,
        min: 1,
        max: 4,
        idleTimeToLive: "10 seconds",
        maxLifetime: "1 hour"
      })
      yield* Effect.forEach([1, 2, 3, 4], () => pool.use(() => Effect.sleep("1 second")), {
        concurrency: "unbounded"
      }).pipe(Effect.forkChild)
      yield* TestClock.adjust("1 second")
      assert.strictEqual(f.state.open.size, 4)
      yield* TestClock.adjust("5 seconds")
      assert.strictEqual(f.state.open.size, 4)
      yield* TestClock.adjust("20 seconds")
      assert.strictEqual(f.state.open.size, 1)
    }))

  it.effect("retires a connection at max lifetime: idle ones at once, busy ones when returned", () =>
    Effect.gen(function*() {
      const f = makeFactory()
      const pool = yield* ConnectionPool.make({
        name: "t",
        acquire: f.acquire,
        min: 1,
        max: 2,
        maxLifetime: "30 seconds",
        housekeepingInterval: "1 second"
      })
      const first = [...f.state.open.keys()]
      yield* TestClock.adjust("31 seconds")
      assert.isFalse(f.state.open.has(first[0]!), "the idle connection past its lifetime was closed")
      assert.strictEqual(f.state.open.size, 1, "and replaced to keep min")
      const busy = yield* Effect.forkChild(pool.use((c) => Effect.sleep("60 seconds").pipe(Effect.as(c.id))))
      yield* TestClock.adjust("45 seconds")
      const busyId = [...f.state.open.keys()][0]!
      assert.isTrue(f.state.open.has(busyId), "a busy connection is not closed under its borrower")
      yield* TestClock.adjust("15 seconds")
      assert.strictEqual(yield* Fiber.join(busy), busyId)
      yield* settle
      assert.isFalse(f.state.open.has(busyId), "closed once returned")
    }))

  it.effect("validates on borrow after the validation window, and skips recent ones", () =>
    Effect.gen(function*() {
      const f = makeFactory()
      const pool = yield* ConnectionPool.make({
        name: "t",
        acquire: f.acquire,
        validate: f.validate,
        max: 2,
        validationWindow: "1 second"
      })
      const a = yield* pool.use((c) => Effect.succeed(c.id))
      yield* pool.use(() => Effect.void)
      assert.strictEqual(f.state.validations, 0, "a connection used within the window is not validated")
      yield* TestClock.adjust("2 seconds")
      f.state.invalid.add(a)
      const b = yield* pool.use((c) => Effect.succeed(c.id))
      assert.notStrictEqual(b, a, "an invalid connection is replaced transparently")
      assert.isFalse(f.state.open.has(a))
      const stats = yield* pool.stats
      assert.strictEqual(stats.validationFailures, 1)
      assert.strictEqual(f.state.validations, 1)
    }))

  it.effect("keep-alive probes idle connections and replaces dead ones", () =>
    Effect.gen(function*() {
      const f = makeFactory()
      yield* ConnectionPool.make({
        name: "t",
        acquire: f.acquire,
        validate: f.validate,
        min: 3,
        max: 3,
        keepAliveInterval: "10 seconds",
        housekeepingInterval: "1 second"
      })
      f.state.invalid.add(2)
      yield* TestClock.adjust("9 seconds")
      assert.strictEqual(f.state.validations, 0)
      yield* TestClock.adjust("2 seconds")
      assert.strictEqual(f.state.validations, 3, "every stale idle connection was probed")
      assert.isFalse(f.state.open.has(2))
      assert.strictEqual(f.state.open.size, 3)
    }))

  it.effect("a failing acquire reaches the borrower as a typed error and does not poison the pool", () =>
    Effect.gen(function*() {
      const f = makeFactory()
      const pool = yield* ConnectionPool.make({ name: "t", acquire: f.acquire, max: 2 })
      f.state.failNextOpens = 1
      const failed = yield* Effect.flip(pool.use(() => Effect.void))
      assert.strictEqual(failed._tag, "ConnectRefused")
      assert.strictEqual(yield* pool.use(() => Effect.succeed("ok")), "ok")
      assert.strictEqual((yield* pool.stats).acquireFailures, 1)
    }))

  it.effect("an acquire that hangs fails with ConnectTimeout", () =>
    Effect.gen(function*() {
      const f = makeFactory()
      const pool = yield* ConnectionPool.make({
        name: "t",
        acquire: f.acquire,
        max: 1,
        connectTimeout: "3 seconds",
        acquireTimeout: "10 seconds"
      })
      f.state.hangOpens = true
      const fiber = yield* Effect.forkChild(Effect.flip(pool.use(() => Effect.void)))
      yield* TestClock.adjust("3 seconds")
      const error = yield* Fiber.join(fiber)
      assert.strictEqual(error._tag, "ConnectTimeout")
      f.state.hangOpens = false
      assert.strictEqual(yield* pool.use((c) => Effect.succeed(c.id)), 1)
    }))

  it.effect("invalidates a connection the driver says is broken", () =>
    Effect.gen(function*() {
      const f = makeFactory()
      const pool = yield* ConnectionPool.make({
        name: "t",
        acquire: f.acquire,
        max: 1,
        isBroken: (e) => e === "reset"
      })
      yield* Effect.flip(pool.use(() => Effect.fail("syntax error")))
      assert.strictEqual(f.state.closed, 0, "a semantic error keeps the connection")
      yield* Effect.flip(pool.use(() => Effect.fail("reset")))
      assert.strictEqual(f.state.closed, 1, "a broken connection is destroyed")
      const c = yield* pool.use((c) => Effect.succeed(c))
      yield* pool.invalidate(c)
      assert.strictEqual(f.state.closed, 2)
    }))

  it.effect("get lends a connection for the lifetime of a scope", () =>
    Effect.gen(function*() {
      const f = makeFactory()
      const pool = yield* ConnectionPool.make({ name: "t", acquire: f.acquire, max: 1, acquireTimeout: "1 second" })
      const scope = yield* Scope.make()
      const c = yield* pool.get.pipe(Scope.provide(scope))
      yield* hold(c).pipe(Scope.provide(scope))
      assert.strictEqual((yield* pool.stats).inUse, 1)
      const timedOut = yield* Effect.forkChild(Effect.flip(pool.use(() => Effect.void)))
      yield* TestClock.adjust("1 second")
      assert.strictEqual((yield* Fiber.join(timedOut))._tag, "PoolTimeout")
      yield* Scope.close(scope, Exit.void)
      assert.strictEqual(c.borrowers, 0)
      assert.strictEqual((yield* pool.stats).inUse, 0)
    }))

  it.effect("detects a leaked borrow and logs it", () =>
    Effect.gen(function*() {
      const f = makeFactory()
      const logs: Array<string> = []
      const logger = Logger.make<unknown, void>(({ message }) => {
        logs.push(String(Array.isArray(message) ? message.join(" ") : message))
      })
      const pool = yield* ConnectionPool.make({
        name: "t",
        acquire: f.acquire,
        max: 1,
        leakDetectionThreshold: "5 seconds",
        housekeepingInterval: "1 second"
      }).pipe(Effect.provide(Logger.layer([logger])))
      const leaker = yield* Effect.forkChild(pool.use(() => Effect.never).pipe(Effect.withSpan("handler")))
      yield* TestClock.adjust("4 seconds")
      assert.strictEqual((yield* pool.stats).leaksDetected, 0)
      yield* TestClock.adjust("2 seconds")
      assert.strictEqual((yield* pool.stats).leaksDetected, 1)
      assert.isTrue(logs.some((line) => line.includes("borrowed for") && line.includes("may never return")))
      yield* TestClock.adjust("10 seconds")
      assert.strictEqual((yield* pool.stats).leaksDetected, 1, "each leak is reported once")
      yield* Fiber.interrupt(leaker)
    }))

  it.effect("drains on shutdown: refuses new borrowers, waits, then interrupts stragglers", () =>
    Effect.gen(function*() {
      const f = makeFactory()
      const scope = yield* Scope.make()
      const pool = yield* ConnectionPool.make({ name: "t", acquire: f.acquire, max: 2, drainTimeout: "5 seconds" })
        .pipe(Scope.provide(scope))
      const quick = yield* Effect.forkChild(pool.use(() => Effect.sleep("1 second").pipe(Effect.as("finished"))))
      const stuck = yield* Effect.forkChild(pool.use(() => Effect.never))
      yield* settle
      const closing = yield* Effect.forkChild(Scope.close(scope, Exit.void))
      yield* settle
      const refused = yield* Effect.flip(pool.use(() => Effect.void))
      assert.strictEqual(refused._tag, "PoolClosed")
      yield* TestClock.adjust("1 second")
      assert.strictEqual(yield* Fiber.join(quick), "finished", "work in flight completes")
      assert.strictEqual(f.state.open.size, 2)
      yield* TestClock.adjust("5 seconds")
      yield* Fiber.join(closing)
      assert.isTrue(Exit.hasInterrupts(yield* Fiber.await(stuck)))
      assert.strictEqual(f.state.open.size, 0, "every connection closed")
    }))

  it.effect("1,000 borrowers doing synchronous work on 10 connections all complete (no stack overflow from inline wakes)", () =>
    Effect.gen(function*() {
      const f = makeFactory()
      const pool = yield* ConnectionPool.make({ name: "t", acquire: f.acquire, min: 10, max: 10 })
      let done = 0
      yield* Effect.forEach(Array.from({ length: 1_000 }), () =>
        Effect.gen(function*() {
          for (let i = 0; i < 20; i++) yield* pool.use(() => Effect.sync(() => done++))
        }), { concurrency: "unbounded", discard: true })
      assert.strictEqual(done, 20_000)
      assert.strictEqual((yield* pool.stats).inUse, 0)
    }))

  it.effect("rejects inconsistent options with a typed error naming the option", () =>
    Effect.gen(function*() {
      const f = makeFactory()
      const e1 = yield* Effect.flip(ConnectionPool.make({ name: "t", acquire: f.acquire, min: 5, max: 2 }))
      assert.strictEqual(e1._tag, "InvalidPoolOptions")
      assert.include(e1.message, "min")
      const e2 = yield* Effect.flip(ConnectionPool.make({ name: "t", acquire: f.acquire, max: 0 }))
      assert.include(e2.message, "max")
      const e3 = yield* Effect.flip(
        ConnectionPool.make({ name: "t", acquire: f.acquire, max: 2, keepAliveInterval: "1 minute" })
      )
      assert.include(e3.message, "keepAliveInterval")
    }))
})
