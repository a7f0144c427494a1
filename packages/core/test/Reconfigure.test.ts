import { assert, describe, it } from "@effect/vitest"
import { Endpoint, Identity, IdentityPool, ServerSet } from "@tether/core"
import { Data, Deferred, Effect, Fiber, Logger, Redacted, SubscriptionRef } from "effect"
import { TestClock } from "effect/testing"
import * as fc from "fast-check"
import { diff, type Running } from "../src/internal/reconfigure.ts"
import { FakeError, makeFakeDriver } from "./fakeDriver.ts"

const A = "fake://a:1"
const B = "fake://b:1"
const C = "fake://c:1"

class BadSource extends Data.TaggedError("BadSource") {}

const settle = Effect.forEach(Array.from({ length: 50 }), () => Effect.yieldNow, { discard: true })

const capture = () => {
  const lines: Array<string> = []
  const logger = Logger.make<unknown, void>((options) => {
    const message = Array.isArray(options.message) ? options.message.join(" ") : String(options.message)
    lines.push(`${options.logLevel} ${message}`)
  })
  return { lines, layer: Logger.layer([logger]) }
}

const endpoint = (id: string, weight = 1): Endpoint.Endpoint => ({
  id,
  url: id,
  weight,
  priority: 0,
  role: "any",
  tags: {}
})

const running = (endpoints: ReadonlyArray<Endpoint.Endpoint>): Running => ({
  endpoints,
  strategy: "round-robin",
  pool: { max: 10, maxPerIdentity: 10, min: 0, perIdentityFollowsMax: true },
  breaker: undefined
})

describe("Reconfigure: apply's diff", () => {
  it("the same configuration is no change; each kind of difference is one change", () => {
    const now = running([endpoint(A), endpoint(B, 2)])
    assert.deepStrictEqual(diff(now, { endpoints: [endpoint(A), endpoint(B, 2)], strategy: "round-robin", pool: { max: 10 } }), [])
    assert.deepStrictEqual(diff(now, {}), [])
    assert.deepStrictEqual(
      diff(now, {
        endpoints: [endpoint(B, 5), endpoint(C), { ...endpoint(A), tags: { zone: "b" } }],
        strategy: "least-connections",
        pool: { max: 4 },
        breaker: { consecutiveFailures: 3 }
      }),
      [
        { _tag: "PoolResized", limits: { max: 4 } },
        { _tag: "BreakerChanged" },
        { _tag: "StrategyChanged", from: "round-robin", to: "least-connections" },
        { _tag: "EndpointUpdated", endpoint: B, weight: 5, priority: 0, role: "any" },
        { _tag: "EndpointAdded", endpoint: C },
        { _tag: "EndpointReplaced", endpoint: A }
      ]
    )
    // maxPerIdentity follows max unless given: the same effective limits are no change.
    assert.deepStrictEqual(diff(now, { pool: { maxPerIdentity: 10 } }), [])
    assert.deepStrictEqual(diff(now, { pool: { maxPerIdentity: 4 } }), [{ _tag: "PoolResized", limits: { maxPerIdentity: 4 } }])
  })

  it("property: the changes turn the running endpoints into the wanted ones, and removals come last", () => {
    const ids = ["a", "b", "c", "d", "e", "f"].map((x) => `fake://${x}:1`)
    const config = fc.uniqueArray(fc.record({ id: fc.constantFrom(...ids), weight: fc.integer({ min: 1, max: 4 }) }), {
      selector: (e) => e.id
    })
    fc.assert(fc.property(config, config, (before, after) => {
      const changes = diff(running(before.map((e) => endpoint(e.id, e.weight))), {
        endpoints: after.map((e) => endpoint(e.id, e.weight))
      })
      // Replay the changes on a plain map.
      const state = new Map(before.map((e) => [e.id, e.weight]))
      const wanted = new Map(after.map((e) => [e.id, e.weight]))
      let removing = false
      for (const change of changes) {
        switch (change._tag) {
          case "EndpointAdded":
            assert.isFalse(removing)
            assert.isFalse(state.has(change.endpoint))
            state.set(change.endpoint, wanted.get(change.endpoint)!)
            break
          case "EndpointUpdated":
            assert.isFalse(removing)
            assert.notStrictEqual(state.get(change.endpoint), change.weight)
            state.set(change.endpoint, change.weight)
            break
          case "EndpointRemoved":
            removing = true
            state.delete(change.endpoint)
            break
          default:
            assert.fail(`unexpected ${change._tag}`)
        }
      }
      assert.deepStrictEqual(new Map([...state].sort()), new Map([...wanted].sort()))
      // Minimal: one change per endpoint added, removed or re-weighted; none for the rest.
      const beforeIds = new Map(before.map((e) => [e.id, e.weight]))
      const added = after.filter((e) => !beforeIds.has(e.id)).length
      const removed = before.filter((e) => !wanted.has(e.id)).length
      const reweighted = after.filter((e) => beforeIds.has(e.id) && beforeIds.get(e.id) !== e.weight).length
      assert.strictEqual(changes.length, added + removed + reweighted)
    }))
  })
})

describe("Reconfigure: a running set", () => {
  it.effect("drain: listed as draining, no new work, in-flight work finishes; enable: work again", () =>
    Effect.gen(function*() {
      const fake = makeFakeDriver()
      const set = yield* ServerSet.make({
        name: "d",
        endpoints: [A, B],
        driver: fake.driver,
        health: false,
        strategy: "round-robin",
        retry: false
      })
      const started = yield* Deferred.make<void>()
      const release = yield* Deferred.make<void>()
      // Work in flight on A (and on B: round robin sends one of the two there).
      const inFlight = yield* Effect.forEach([1, 2], () =>
        set.as().use((c) =>
          Effect.andThen(
            c.endpoint === A ? Deferred.succeed(started, undefined) : Effect.void,
            Effect.as(Deferred.await(release), c.endpoint)
          )
        ).pipe(Effect.forkChild))
      yield* Deferred.await(started)
      yield* set.reconfigure.drain(A)
      const status = yield* set.status
      assert.deepStrictEqual(status.endpoints.map((e) => [e.id, e.draining]), [[A, true], [B, false]])
      assert.strictEqual(status.endpoints[0]!.inFlight, 1)
      fake.calls.length = 0
      for (let i = 0; i < 6; i++) yield* set.as().use((c) => fake.operation(c))
      assert.deepStrictEqual([...new Set(fake.calls)], [B])
      yield* Deferred.succeed(release, undefined)
      assert.deepStrictEqual((yield* Fiber.joinAll(inFlight)).sort(), [A, B])
      // Every endpoint drained: a typed error that says why.
      yield* set.reconfigure.drain(B)
      const error = yield* Effect.flip(set.as().use((c) => fake.operation(c)))
      assert.strictEqual(error._tag, "NoEndpointAvailable")
      assert.include(error.message, "draining")
      yield* set.reconfigure.enable(A)
      yield* set.reconfigure.enable(B)
      fake.calls.length = 0
      for (let i = 0; i < 6; i++) yield* set.as().use((c) => fake.operation(c))
      assert.deepStrictEqual([...new Set(fake.calls)].sort(), [A, B])
      const unknown = yield* Effect.flip(set.reconfigure.drain("fake://nope:1"))
      assert.strictEqual(unknown._tag, "UnknownEndpoint")
      assert.include(unknown.message, A)
    }).pipe(Effect.scoped))

  it.effect("setWeight and setStrategy change the picks; bad values are typed errors that change nothing", () =>
    Effect.gen(function*() {
      const fake = makeFakeDriver()
      const set = yield* ServerSet.make({ name: "w", endpoints: [A, B], driver: fake.driver, health: false })
      yield* set.reconfigure.setWeight(A, 3)
      fake.calls.length = 0
      for (let i = 0; i < 8; i++) yield* set.as().use((c) => fake.operation(c))
      assert.strictEqual(fake.calls.filter((c) => c === A).length, 6)
      assert.strictEqual((yield* set.status).endpoints.find((e) => e.id === A)!.weight, 3)
      const bad = yield* Effect.flip(set.reconfigure.setWeight(A, 0))
      assert.strictEqual(bad._tag, "InvalidEndpoint")
      assert.strictEqual((yield* set.status).endpoints.find((e) => e.id === A)!.weight, 3)
      yield* set.reconfigure.setStrategy("round-robin")
      assert.strictEqual((yield* set.status).strategy, "round-robin")
      fake.calls.length = 0
      for (let i = 0; i < 8; i++) yield* set.as().use((c) => fake.operation(c))
      assert.strictEqual(fake.calls.filter((c) => c === A).length, 4)
      const strategy = yield* Effect.flip(set.reconfigure.setStrategy("nope" as never))
      assert.strictEqual(strategy._tag, "InvalidPoolOptions")
      assert.strictEqual((yield* set.status).strategy, "round-robin")
    }).pipe(Effect.scoped))

  it.effect("setBreaker: new thresholds from the next call on (2 failures open it instead of 5)", () =>
    Effect.gen(function*() {
      const fake = makeFakeDriver()
      const set = yield* ServerSet.make({
        name: "b",
        endpoints: [A],
        driver: fake.driver,
        health: false,
        retry: false,
        breaker: { consecutiveFailures: 5 }
      })
      const fail = set.as().use(() => Effect.fail(new FakeError({ kind: "busy", endpoint: A })))
      const breaker = Effect.map(set.status, (s) => s.endpoints[0]!.breaker!.status)
      yield* Effect.flip(fail)
      yield* Effect.flip(fail)
      assert.strictEqual(yield* breaker, "closed")
      yield* set.reconfigure.setBreaker({ consecutiveFailures: 2 })
      yield* Effect.flip(fail)
      assert.strictEqual(yield* breaker, "closed")
      yield* Effect.flip(fail)
      assert.strictEqual(yield* breaker, "open")
      const invalid = yield* Effect.flip(set.reconfigure.setBreaker({ consecutiveFailures: 0 }))
      assert.strictEqual(invalid._tag, "InvalidPoolOptions")
      assert.include(invalid.message, "consecutiveFailures")
    }).pipe(Effect.scoped))

  it.effect("apply: checks everything first (a bad part changes nothing), then applies the difference, each change logged at INFO without a secret", () => {
    const logs = capture()
    return Effect.gen(function*() {
      const fake = makeFakeDriver()
      const set = yield* ServerSet.make({ name: "ap", endpoints: [A, B], driver: fake.driver, health: false })
      const ids = Effect.map(set.status, (s) => s.endpoints.map((e) => `${e.id}:${e.weight}`))
      const bad = yield* Effect.flip(set.reconfigure.apply({ endpoints: [A, C], pool: { max: 2, min: 3 } }))
      assert.strictEqual(bad._tag, "InvalidPoolOptions")
      assert.deepStrictEqual(yield* ids, [`${A}:1`, `${B}:1`])
      const badUrl = yield* Effect.flip(set.reconfigure.apply({ endpoints: [A, "not a url"] }))
      assert.strictEqual(badUrl._tag, "InvalidEndpoint")
      assert.deepStrictEqual(yield* ids, [`${A}:1`, `${B}:1`])
      const secret = yield* Effect.flip(set.reconfigure.apply({ endpoints: [A, "fake://user:s3cret@c:1"] }))
      assert.strictEqual(secret._tag, "InvalidEndpoint")
      assert.notInclude(secret.message, "s3cret")

      const changes = yield* set.reconfigure.apply({
        endpoints: [{ url: A, weight: 2 }, C],
        pool: { max: 3 },
        strategy: "round-robin"
      })
      assert.deepStrictEqual(changes.map((c) => c._tag), [
        "PoolResized",
        "StrategyChanged",
        "EndpointUpdated",
        "EndpointAdded",
        "EndpointRemoved"
      ])
      assert.deepStrictEqual(yield* ids, [`${A}:2`, `${C}:1`])
      assert.isTrue((yield* set.status).endpoints.every((e) => e.pool.max === 3))
      // The same again: nothing to do.
      assert.deepStrictEqual(yield* set.reconfigure.apply({ endpoints: [{ url: A, weight: 2 }, C], pool: { max: 3 } }), [])
      const applied = logs.lines.filter((l) => l.includes("applied:"))
      assert.strictEqual(applied.length, 6)
      assert.isTrue(applied.every((l) => l.startsWith("Info ")))
      assert.isFalse(logs.lines.some((l) => l.includes("s3cret")))
      // Endpoints added later get the new limits.
      yield* set.reconfigure.add(B)
      assert.strictEqual((yield* set.status).endpoints.find((e) => e.id === B)!.pool.max, 3)
    }).pipe(Effect.scoped, Effect.provide(logs.layer))
  })
})

describe("IdentityPool.resize", () => {
  it.effect("growing admits a waiter at once; shrinking never fails work in flight and closes connections as they come back", () =>
    Effect.gen(function*() {
      let opened = 0
      let closed = 0
      const pool = yield* IdentityPool.make({
        name: "r",
        connect: () =>
          Effect.acquireRelease(Effect.sync(() => ++opened), () =>
            Effect.sync(() => {
              closed++
            })),
        max: 1,
        pool: { acquireTimeout: "1 hour" }
      })
      const holds = Array.from({ length: 3 }, () => Deferred.makeUnsafe<void>())
      const started = Array.from({ length: 3 }, () => Deferred.makeUnsafe<void>())
      const hold = (i: number) =>
        pool.use(undefined, (c) => Effect.andThen(Deferred.succeed(started[i]!, undefined), Effect.as(Deferred.await(holds[i]!), c)))
          .pipe(Effect.forkChild)
      const first = yield* hold(0)
      yield* Deferred.await(started[0]!)
      const second = yield* hold(1)
      yield* settle
      assert.isFalse(yield* Deferred.isDone(started[1]!))
      // Grown: the waiter gets a connection while the first is still held.
      yield* pool.resize({ max: 3 })
      yield* Deferred.await(started[1]!)
      const third = yield* hold(2)
      yield* Deferred.await(started[2]!)
      assert.strictEqual((yield* pool.stats).open, 3)

      // Shrunk to 1 with 3 in use: nothing is interrupted; they close as they come back.
      yield* pool.resize({ max: 1 })
      assert.strictEqual((yield* pool.stats).open, 3)
      assert.strictEqual((yield* pool.stats).max, 1)
      yield* Deferred.succeed(holds[0]!, undefined)
      yield* Fiber.join(first)
      yield* Deferred.succeed(holds[1]!, undefined)
      yield* Fiber.join(second)
      yield* settle
      assert.isAtMost((yield* pool.stats).open, 1)
      yield* Deferred.succeed(holds[2]!, undefined)
      assert.isNumber(yield* Fiber.join(third))
      yield* settle
      assert.isAtMost((yield* pool.stats).open, 1)
      assert.isAtLeast(closed, 2)
      // Still serves, within the new limit.
      const results = yield* Effect.forEach(Array.from({ length: 5 }), () => pool.use(undefined, Effect.succeed), {
        concurrency: 5
      })
      assert.strictEqual(results.length, 5)
      assert.isAtMost((yield* pool.stats).open, 1)

      const invalid = yield* Effect.flip(pool.resize({ max: 0 }))
      assert.strictEqual(invalid._tag, "InvalidPoolOptions")
      assert.strictEqual(invalid.option, "max")
      const perIdentity = yield* Effect.flip(pool.resize({ maxPerIdentity: 2 }))
      assert.strictEqual(perIdentity.option, "maxPerIdentity")
      assert.strictEqual((yield* pool.stats).max, 1)
    }).pipe(Effect.scoped))
})

describe("IdentityPool.resize across identities", () => {
  it.effect("shrinking the shared limit: every identity's connections come down to it as they are returned, none fails", () =>
    Effect.gen(function*() {
      const open = new Map<string, number>()
      const pool = yield* IdentityPool.make({
        name: "ids",
        connect: (identity) => {
          const label = identity?.label ?? "default"
          return Effect.acquireRelease(
            Effect.sync(() => open.set(label, (open.get(label) ?? 0) + 1)),
            () => Effect.sync(() => void open.set(label, open.get(label)! - 1))
          )
        },
        max: 4,
        pool: { acquireTimeout: "1 hour" }
      })
      const alice = Identity.make("uid=alice", Redacted.make("a"), { label: "alice" })
      const bob = Identity.make("uid=bob", Redacted.make("b"), { label: "bob" })
      const release = yield* Deferred.make<void>()
      const started: Array<Deferred.Deferred<void>> = []
      const hold = (who: Identity.Credentials) => {
        const begun = Deferred.makeUnsafe<void>()
        started.push(begun)
        return pool.use(who, () => Effect.andThen(Deferred.succeed(begun, undefined), Deferred.await(release))).pipe(
          Effect.forkChild
        )
      }
      const held = [yield* hold(alice), yield* hold(alice), yield* hold(bob), yield* hold(bob)]
      yield* Effect.forEach(started, Deferred.await, { discard: true })
      assert.strictEqual((yield* pool.stats).open, 4)
      yield* pool.resize({ max: 2 })
      // In use: nothing is closed under its borrower.
      assert.strictEqual((yield* pool.stats).open, 4)
      yield* Deferred.succeed(release, undefined)
      yield* Fiber.joinAll(held)
      yield* settle
      assert.isAtMost((yield* pool.stats).open, 2)
      assert.isAtMost([...open.values()].reduce((a, b) => a + b, 0), 2)
      // Both identities still served, within the limit.
      const more = yield* Effect.forEach([alice, bob, alice, bob], (who) => pool.use(who, () => Effect.succeed(who.label)), {
        concurrency: 4
      })
      assert.deepStrictEqual(more, ["alice", "bob", "alice", "bob"])
      assert.isAtMost([...open.values()].reduce((a, b) => a + b, 0), 2)
    }).pipe(Effect.scoped))
})

describe("ServerSet.watchConfig", () => {
  it.effect("polls on the clock: a change is applied and published, a bad file is logged once and changes nothing", () => {
    const logs = capture()
    return Effect.gen(function*() {
      const fake = makeFakeDriver()
      const set = yield* ServerSet.make({ name: "wc", endpoints: [A], driver: fake.driver, health: false })
      let text = JSON.stringify({ endpoints: [A, B] })
      let reads = 0
      const watch = yield* ServerSet.watchConfig({
        read: Effect.sync(() => {
          reads++
          return text
        }),
        decode: (t) =>
          Effect.try({
            try: () => JSON.parse(t) as { endpoints: Array<string> },
            catch: () => new Endpoint.InvalidEndpoint({ endpoint: "(file)", problems: [{ field: "(file)", message: "not JSON" }] })
          }),
        toReconfiguration: (c) => ({ endpoints: c.endpoints }),
        target: set.reconfigure,
        interval: "5 seconds",
        label: "test config"
      })
      const ids = Effect.map(set.status, (s) => s.endpoints.map((e) => e.id))
      // Applied at start.
      assert.deepStrictEqual(yield* ids, [A, B])
      assert.deepStrictEqual((yield* SubscriptionRef.get(watch.config)).endpoints, [A, B])

      text = JSON.stringify({ endpoints: [A, C] })
      yield* TestClock.adjust("4 seconds")
      assert.deepStrictEqual(yield* ids, [A, B])
      yield* TestClock.adjust("1 second")
      assert.deepStrictEqual(yield* ids, [A, C])
      assert.deepStrictEqual((yield* SubscriptionRef.get(watch.config)).endpoints, [A, C])

      // A bad file: logged at ERROR once (not at every poll), nothing changes.
      text = "{ not json"
      yield* TestClock.adjust("15 seconds")
      assert.deepStrictEqual(yield* ids, [A, C])
      assert.deepStrictEqual((yield* SubscriptionRef.get(watch.config)).endpoints, [A, C])
      const errors = logs.lines.filter((l) => l.startsWith("Error") && l.includes("not applied"))
      assert.strictEqual(errors.length, 1)
      assert.include(errors[0]!, "test config")
      // A valid file that `apply` refuses: also nothing.
      text = JSON.stringify({ endpoints: ["not a url"] })
      yield* TestClock.adjust("5 seconds")
      assert.deepStrictEqual(yield* ids, [A, C])
      // Fixed: applied at the next poll.
      text = JSON.stringify({ endpoints: [B] })
      yield* TestClock.adjust("5 seconds")
      assert.deepStrictEqual(yield* ids, [B])
      // `reload` reads at once, off the clock.
      text = JSON.stringify({ endpoints: [A] })
      const readsBefore = reads
      const changes = yield* watch.reload
      assert.strictEqual(reads, readsBefore + 1)
      assert.deepStrictEqual(changes.map((c) => c._tag), ["EndpointAdded", "EndpointRemoved"])
      assert.deepStrictEqual(yield* ids, [A])
      text = "{ not json"
      const failed = yield* Effect.flip(watch.reload)
      assert.strictEqual(failed._tag, "InvalidEndpoint")
      assert.deepStrictEqual(yield* ids, [A])
    }).pipe(Effect.scoped, Effect.provide(logs.layer))
  })

  it.effect("a bad source at start is a typed error", () =>
    Effect.gen(function*() {
      const fake = makeFakeDriver()
      const set = yield* ServerSet.make({ name: "wc2", endpoints: [A], driver: fake.driver, health: false })
      const error = yield* Effect.flip(ServerSet.watchConfig({
        read: Effect.succeed("x"),
        decode: () => Effect.fail(new BadSource()),
        toReconfiguration: () => ({}),
        target: set.reconfigure
      }))
      assert.strictEqual(error._tag, "BadSource")
    }).pipe(Effect.scoped))
})
