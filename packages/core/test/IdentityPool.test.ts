import { assert, describe, it } from "@effect/vitest"
import { Identity, IdentityPool } from "@tether/core"
import { Data, Effect, Exit, Fiber, Redacted, Scope } from "effect"
import { TestClock } from "effect/testing"
import * as fc from "fast-check"

class BindFailed extends Data.TaggedError("BindFailed")<{ readonly principal: string }> {}

interface Bound {
  readonly id: number
  principal: string
  borrowers: number
}

/** A fake directory: passwords by principal; records every open connection and whom it is bound as. */
const makeDirectory = (passwords: Record<string, string>) => {
  const state = { opened: 0, open: new Map<number, Bound>(), maxOpen: 0, rebinds: 0, failRebinds: false }
  const connect = (identity: Identity.Credentials | undefined) =>
    Effect.acquireRelease(
      Effect.suspend(() => {
        const principal = identity?.principal ?? "service"
        if (identity !== undefined && Redacted.value(identity.secret!) !== passwords[principal]) {
          return Effect.fail(new BindFailed({ principal }))
        }
        const bound: Bound = { id: ++state.opened, principal, borrowers: 0 }
        state.open.set(bound.id, bound)
        state.maxOpen = Math.max(state.maxOpen, state.open.size)
        return Effect.succeed(bound)
      }),
      (bound) => Effect.sync(() => state.open.delete(bound.id))
    )
  /** Binds an open connection again; a failed bind leaves it anonymous, as an LDAP server does. */
  const rebind = (bound: Bound, identity: Identity.Credentials | undefined) =>
    Effect.suspend(() => {
      const principal = identity?.principal ?? "service"
      const ok = !state.failRebinds &&
        (identity === undefined || Redacted.value(identity.secret!) === passwords[principal])
      bound.principal = ok ? principal : "anonymous"
      if (!ok) return Effect.fail(new BindFailed({ principal }))
      state.rebinds++
      return Effect.void
    })
  return { state, connect, rebind }
}

const user = (i: number) => Identity.make(`uid=user${i}`, Redacted.make(`password-${i}`), { label: `user${i}` })
const passwordsFor = (n: number) => Object.fromEntries(Array.from({ length: n }, (_, i) => [`uid=user${i}`, `password-${i}`]))

const settle = Effect.forEach(Array.from({ length: 50 }), () => Effect.yieldNow, { discard: true })

describe("IdentityPool", () => {
  it.effect("lends each identity only connections bound as itself, and reuses them", () =>
    Effect.gen(function*() {
      const dir = makeDirectory(passwordsFor(3))
      const pool = yield* IdentityPool.make({ name: "ldap", connect: dir.connect, max: 6 })
      for (let round = 0; round < 5; round++) {
        for (const i of [0, 1, 2]) {
          const principal = yield* pool.use(user(i), (c) => Effect.succeed(c.principal))
          assert.strictEqual(principal, `uid=user${i}`)
        }
      }
      assert.strictEqual(dir.state.opened, 3, "one connection per identity, reused")
      const stats = yield* pool.stats
      assert.strictEqual(stats.borrows, 15)
      assert.closeTo(stats.reuseRate, 12 / 15, 1e-9)
      assert.deepStrictEqual(stats.identities.map((i) => i.label).sort(), ["user0", "user1", "user2"])
    }))

  it.effect("keeps one global max across identities, and maxPerIdentity per identity", () =>
    Effect.gen(function*() {
      const dir = makeDirectory(passwordsFor(5))
      const pool = yield* IdentityPool.make({ name: "ldap", connect: dir.connect, max: 4, maxPerIdentity: 2 })
      const fibers = yield* Effect.forEach(Array.from({ length: 30 }, (_, i) => i), (i) =>
        Effect.forkChild(pool.use(user(i % 5), (c) =>
          Effect.gen(function*() {
            c.borrowers++
            yield* settle
            c.borrowers--
            return c.principal
          }))))
      const results = yield* Fiber.joinAll(fibers)
      assert.deepStrictEqual(results, Array.from({ length: 30 }, (_, i) => `uid=user${i % 5}`))
      assert.isAtMost(dir.state.maxOpen, 4)
      const stats = yield* pool.stats
      for (const share of stats.identities) assert.isAtMost(share.created - 0, 30)
      assert.isAtMost(stats.open, 4)
    }))

  it.effect("closes another identity's least recently used idle connection to make room", () =>
    Effect.gen(function*() {
      const dir = makeDirectory(passwordsFor(3))
      const pool = yield* IdentityPool.make({ name: "ldap", connect: dir.connect, max: 2 })
      yield* pool.use(user(0), () => Effect.void)
      yield* pool.use(user(1), () => Effect.void)
      assert.strictEqual(dir.state.open.size, 2)
      const principal = yield* pool.use(user(2), (c) => Effect.succeed(c.principal))
      assert.strictEqual(principal, "uid=user2")
      assert.deepStrictEqual([...dir.state.open.values()].map((b) => b.principal).sort(), ["uid=user1", "uid=user2"])
      assert.strictEqual((yield* pool.stats).evictions, 1)
    }))

  it.effect("re-binds another identity's least recently used idle connection instead of opening one, when the driver can", () =>
    Effect.gen(function*() {
      const dir = makeDirectory(passwordsFor(3))
      const pool = yield* IdentityPool.make({ name: "ldap", connect: dir.connect, rebind: dir.rebind, max: 2 })
      yield* pool.use(user(0), () => Effect.void)
      yield* pool.use(user(1), () => Effect.void)
      const principal = yield* pool.use(user(2), (c) => Effect.succeed(c.principal))
      assert.strictEqual(principal, "uid=user2")
      assert.strictEqual(dir.state.opened, 2, "no third connection opened")
      assert.strictEqual(dir.state.rebinds, 1)
      assert.deepStrictEqual([...dir.state.open.values()].map((b) => b.principal).sort(), ["uid=user1", "uid=user2"])
      // user0's share holds nothing now: its next borrow re-binds user1's (now least recently used) connection.
      assert.strictEqual(yield* pool.use(user(0), (c) => Effect.succeed(c.principal)), "uid=user0")
      const stats = yield* pool.stats
      assert.strictEqual(stats.rebinds, 2)
      assert.strictEqual(stats.evictions, 2)
      assert.strictEqual(dir.state.opened, 2)
    }))

  it.effect("a failed re-bind closes that connection (never pooled half-bound) and opens a new one", () =>
    Effect.gen(function*() {
      const dir = makeDirectory(passwordsFor(2))
      const pool = yield* IdentityPool.make({ name: "ldap", connect: dir.connect, rebind: dir.rebind, max: 1 })
      yield* pool.use(user(0), () => Effect.void)
      dir.state.failRebinds = true
      const principal = yield* pool.use(user(1), (c) => Effect.succeed(c.principal))
      assert.strictEqual(principal, "uid=user1")
      assert.strictEqual(dir.state.opened, 2)
      assert.deepStrictEqual([...dir.state.open.values()].map((b) => b.principal), ["uid=user1"])
      const stats = yield* pool.stats
      assert.strictEqual(stats.rebinds, 0)
      assert.strictEqual(stats.rebindFailures, 1)
    }))

  it.effect("an identity waits while every connection is busy, then gets one when another is returned", () =>
    Effect.gen(function*() {
      const dir = makeDirectory(passwordsFor(2))
      const pool = yield* IdentityPool.make({ name: "ldap", connect: dir.connect, max: 1 })
      const holder = yield* Effect.forkChild(pool.use(user(0), () => Effect.sleep("1 second")))
      yield* settle
      const waiter = yield* Effect.forkChild(pool.use(user(1), (c) => Effect.succeed(c.principal)))
      yield* settle
      assert.isUndefined(waiter.pollUnsafe())
      yield* Fiber.interrupt(holder)
      assert.strictEqual(yield* Fiber.join(waiter), "uid=user1")
      assert.strictEqual(dir.state.maxOpen, 1)
    }))

  it.effect("a wrong password fails that caller only, and keeps no connection", () =>
    Effect.gen(function*() {
      const dir = makeDirectory(passwordsFor(2))
      const pool = yield* IdentityPool.make({ name: "ldap", connect: dir.connect, max: 2 })
      const wrong = Identity.make("uid=user0", Redacted.make("guess"))
      const error = yield* Effect.flip(pool.use(wrong, () => Effect.void))
      assert.strictEqual(error._tag, "BindFailed")
      assert.strictEqual(dir.state.open.size, 0)
      assert.strictEqual(yield* pool.use(user(1), (c) => Effect.succeed(c.principal)), "uid=user1")
      assert.strictEqual(yield* pool.use(user(0), (c) => Effect.succeed(c.principal)), "uid=user0")
    }))

  it.effect("a changed secret for the same principal retires the old connections", () =>
    Effect.gen(function*() {
      const passwords = passwordsFor(1)
      const dir = makeDirectory(passwords)
      const pool = yield* IdentityPool.make({ name: "ldap", connect: dir.connect, max: 4 })
      const before = yield* pool.use(user(0), (c) => Effect.succeed(c.id))
      passwords["uid=user0"] = "rotated"
      const rotated = Identity.make("uid=user0", Redacted.make("rotated"))
      const after = yield* pool.use(rotated, (c) => Effect.succeed(c.id))
      assert.notStrictEqual(after, before)
      yield* settle
      assert.isFalse(dir.state.open.has(before), "the connection bound with the old password is closed")
      // The old credentials now fail: their pool is gone and the directory refuses them.
      assert.strictEqual((yield* Effect.flip(pool.use(user(0), () => Effect.void)))._tag, "BindFailed")
    }))

  it.effect("a wrong password for a principal in use: its borrowers carry on, the caller gets its typed error (not an interruption)", () =>
    Effect.gen(function*() {
      const dir = makeDirectory(passwordsFor(1))
      const pool = yield* IdentityPool.make({ name: "ldap", connect: dir.connect, rebind: dir.rebind, max: 4 })
      const victims = yield* Effect.forEach(Array.from({ length: 3 }), () =>
        Effect.forkChild(pool.use(user(0), (c) => Effect.as(Effect.sleep("1 second"), c.principal))))
      yield* settle
      const opened = dir.state.opened
      const attacker = Identity.make("uid=user0", Redacted.make("guess"))
      for (let i = 0; i < 3; i++) {
        const exit = yield* Effect.exit(pool.use(attacker, () => Effect.void))
        assert.isTrue(Exit.isFailure(exit) && !Exit.hasInterrupts(exit), "a typed failure, not an interruption")
        assert.strictEqual((yield* Effect.flip(pool.use(attacker, () => Effect.void)))._tag, "BindFailed")
      }
      yield* TestClock.adjust("1 second")
      for (const victim of victims) assert.strictEqual(yield* Fiber.join(victim), "uid=user0")
      // The victim's connections were kept and are reused.
      assert.strictEqual(yield* pool.use(user(0), (c) => Effect.succeed(c.principal)), "uid=user0")
      assert.strictEqual(dir.state.opened, opened)
      assert.deepStrictEqual([...dir.state.open.values()].map((b) => b.principal), ["uid=user0", "uid=user0", "uid=user0"])
    }))

  it.effect("a rotated secret replaces the old one once it has bound; work in flight on the old one completes", () =>
    Effect.gen(function*() {
      const passwords = passwordsFor(1)
      const dir = makeDirectory(passwords)
      const pool = yield* IdentityPool.make({ name: "ldap", connect: dir.connect, max: 4 })
      const inFlight = yield* Effect.forkChild(pool.use(user(0), (c) => Effect.as(Effect.sleep("3 seconds"), c.id)))
      yield* settle
      passwords["uid=user0"] = "rotated"
      const rotated = Identity.make("uid=user0", Redacted.make("rotated"))
      const fresh = yield* pool.use(rotated, (c) => Effect.succeed(c.id))
      yield* TestClock.adjust("3 seconds")
      const old = yield* Fiber.join(inFlight)
      assert.notStrictEqual(fresh, old)
      yield* TestClock.adjust("2 seconds") // the sweep closes the old secret's connections once given back
      assert.deepStrictEqual([...dir.state.open.keys()], [fresh])
      assert.strictEqual(yield* pool.use(rotated, (c) => Effect.succeed(c.id)), fresh)
    }))

  it.effect("a new secret that does not bind leaves the old one in place", () =>
    Effect.gen(function*() {
      const dir = makeDirectory(passwordsFor(1))
      const pool = yield* IdentityPool.make({ name: "ldap", connect: dir.connect, max: 4 })
      const first = yield* pool.use(user(0), (c) => Effect.succeed(c.id))
      yield* Effect.flip(pool.use(Identity.make("uid=user0", Redacted.make("guess")), () => Effect.void))
      yield* TestClock.adjust("5 seconds")
      assert.strictEqual(yield* pool.use(user(0), (c) => Effect.succeed(c.id)), first)
      assert.strictEqual(dir.state.opened, 1)
    }))

  it.effect("a connection whose driver says it lost its identity (isReady) is never lent, even within the validation window", () =>
    Effect.gen(function*() {
      const dir = makeDirectory(passwordsFor(1))
      const lost = new Set<number>()
      const pool = yield* IdentityPool.make({
        name: "ldap",
        connect: dir.connect,
        isReady: (c) => !lost.has(c.id),
        max: 2,
        pool: { validationWindow: "1 hour" }
      })
      const first = yield* pool.use(user(0), (c) => Effect.succeed(c.id))
      lost.add(first)
      const second = yield* pool.use(user(0), (c) => Effect.succeed(c.id))
      assert.notStrictEqual(second, first)
      assert.isFalse(dir.state.open.has(first), "the lost connection is closed")
      assert.strictEqual(yield* pool.use(user(0), (c) => Effect.succeed(c.id)), second)
    }))

  it.effect("keys by a keyed digest, never by the secret, and shows only labels", () =>
    Effect.gen(function*() {
      const a = Identity.make("uid=alice", Redacted.make("correct horse battery staple"), { label: "alice" })
      const b = Identity.make("uid=alice", Redacted.make("another secret"), { label: "alice" })
      assert.notInclude(Identity.digest(a), "correct horse")
      assert.notStrictEqual(Identity.digest(a), Identity.digest(b))
      assert.strictEqual(Identity.digest(a), Identity.digest(Identity.make("uid=alice", Redacted.make("correct horse battery staple"))))
      assert.notInclude(JSON.stringify(a), "correct horse")
      assert.notInclude(String(a.secret), "correct horse")
    }))

  it.effect("a group the housekeeper forgot is not used again through a credentials object that knew it: one group per identity, maxPerIdentity kept", () =>
    Effect.gen(function*() {
      const dir = makeDirectory(passwordsFor(1))
      const pool = yield* IdentityPool.make({
        name: "ldap",
        connect: dir.connect,
        max: 4,
        maxPerIdentity: 1,
        pool: { idleTimeToLive: "1 second", housekeepingInterval: "1 second" }
      })
      const known = user(0)
      yield* pool.use(known, () => Effect.void)
      // Idle past its time to live: closed; then unused for over a minute: its group is forgotten.
      yield* TestClock.adjust("5 seconds")
      assert.strictEqual(dir.state.open.size, 0)
      yield* TestClock.adjust("2 minutes")
      const labels = Effect.map(pool.stats, (stats) => stats.identities.map((i) => i.label).filter((l) => l !== "default"))
      assert.deepStrictEqual(yield* labels, [])
      // The same identity as a new credentials object: a new group, holding the one connection it may have.
      const holder = yield* Effect.forkChild(pool.use(user(0), () => Effect.never))
      yield* settle
      assert.strictEqual(dir.state.open.size, 1)
      // The old object must find that group (and wait), not revive the forgotten one (and open a second).
      const waiter = yield* Effect.forkChild(pool.use(known, (c) => Effect.succeed(c.id)))
      yield* settle
      assert.strictEqual(dir.state.open.size, 1, "maxPerIdentity 1: no second connection for the same identity")
      assert.strictEqual(dir.state.opened, 2)
      yield* Fiber.interrupt(holder)
      const id = yield* Fiber.join(waiter)
      assert.strictEqual(id, 2, "served by the connection the new object's group opened")
      assert.deepStrictEqual(yield* labels, ["user0"])
    }))

  it.effect("rejects maxPerIdentity above max", () =>
    Effect.gen(function*() {
      const dir = makeDirectory({})
      const error = yield* Effect.flip(IdentityPool.make({ name: "ldap", connect: dir.connect, max: 2, maxPerIdentity: 3 }))
      assert.strictEqual(error._tag, "InvalidPoolOptions")
      assert.include(error.message, "maxPerIdentity")
    }))

  it.effect("property: never a connection of the wrong identity, never above max, nothing leaked — under random interleavings and interruptions", () =>
    Effect.promise(() =>
      fc.assert(
        fc.asyncProperty(
          fc.integer({ min: 1, max: 4 }),
          fc.constantFrom("no-rebind", "rebind", "rebind-fails"),
          fc.constantFrom(1, 3),
          fc.array(
            fc.record({
              who: fc.nat({ max: 5 }),
              hold: fc.nat({ max: 5 }),
              interruptAfter: fc.option(fc.nat({ max: 6 }), { nil: undefined })
            }),
            { minLength: 1, maxLength: 60 }
          ),
          (max, rebinding, concurrency, steps) => {
            const dir = makeDirectory(passwordsFor(6))
            dir.state.failRebinds = rebinding === "rebind-fails"
            const violations: Array<string> = []
            const program = Effect.gen(function*() {
              const scope = yield* Scope.make()
              const pool = yield* IdentityPool.make({
                name: "p",
                connect: dir.connect,
                rebind: rebinding === "no-rebind" ? undefined : dir.rebind,
                max,
                pool: { drainTimeout: "200 millis", concurrency }
              }).pipe(Scope.provide(scope))
              const fibers = []
              for (const s of steps) {
                const fiber = yield* Effect.forkChild(Effect.exit(pool.use(user(s.who), (c) =>
                  Effect.gen(function*() {
                    if (c.principal !== `uid=user${s.who}`) violations.push(`user${s.who} got ${c.principal}`)
                    if (++c.borrowers > concurrency) violations.push(`connection #${c.id} lent ${c.borrowers} times at once`)
                    yield* Effect.forEach(Array.from({ length: s.hold }), () => Effect.yieldNow, { discard: true })
                  }).pipe(Effect.ensuring(Effect.sync(() => c.borrowers--))))))
                fibers.push(fiber)
                if (s.interruptAfter !== undefined) {
                  yield* Effect.forkChild(Effect.andThen(
                    Effect.forEach(Array.from({ length: s.interruptAfter }), () => Effect.yieldNow, { discard: true }),
                    Fiber.interrupt(fiber)
                  ))
                }
              }
              yield* Fiber.awaitAll(fibers)
              yield* Scope.close(scope, Exit.void)
              if (dir.state.maxOpen > max) violations.push(`maxOpen ${dir.state.maxOpen} > ${max}`)
              if (dir.state.open.size !== 0) violations.push(`${dir.state.open.size} left open`)
              return violations
            })
            return Effect.runPromise(
              program.pipe(Effect.timeoutOrElse({ duration: "5 seconds", orElse: () => Effect.succeed(["stuck for 5 s"]) }))
            ).then((v) => assert.deepStrictEqual(v, []))
          }
        ),
        { numRuns: 100 }
      )
    ), 120_000)
})
