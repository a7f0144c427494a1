import { assert, describe, it } from "@effect/vitest"
import { Effect, Exit, Fiber, Scope } from "effect"
import * as fc from "fast-check"
import { ConnectionPool } from "@tether/core"
import * as FiberStack from "../src/internal/fiberStack.ts"
import type { FakeConnection } from "./fakeConnections.ts"
import { makeFactory } from "./fakeConnections.ts"

/** What one borrower does. */
interface Step {
  /** Scheduler turns the borrower holds its connection for. */
  readonly hold: number
  /** Turns after start at which the borrower is interrupted, if any. */
  readonly interruptAfter: number | undefined
  /** The work fails (a semantic error: the connection stays). */
  readonly fails: boolean
  /** The work fails with a "broken connection" error: it is destroyed. */
  readonly breaks: boolean
  /** The next open of a connection fails. */
  readonly openFails: boolean
  /** Borrow with `get` in a scope instead of `use`. */
  readonly scoped: boolean
  /** Before borrowing, every open connection fails its next validation (the borrow must retry). */
  readonly invalidates: boolean
}

const step: fc.Arbitrary<Step> = fc.record({
  hold: fc.nat({ max: 6 }),
  interruptAfter: fc.option(fc.nat({ max: 8 }), { nil: undefined }),
  fails: fc.boolean(),
  breaks: fc.boolean(),
  openFails: fc.nat({ max: 9 }).map((n) => n < 3),
  scoped: fc.boolean(),
  invalidates: fc.nat({ max: 9 }).map((n) => n < 2)
})

const turns = (n: number) => Effect.forEach(Array.from({ length: n }), () => Effect.yieldNow, { discard: true })

describe("ConnectionPool properties", () => {
  it("the borrow's fast path (a frame on the fiber's stack) is available with this Effect version", () => {
    assert.isTrue(FiberStack.isEnabled(), "Effect's fiber internals were not found: borrows run on the slower fallback")
  })

  for (const fastPath of [true, false]) {
  it.effect(`never exceeds max, never lends one connection twice, leaks nothing — under random borrows, failures, failed validations and interruptions (${fastPath ? "frame" : "onExit fallback"})`, () =>
    Effect.acquireUseRelease(Effect.sync(() => FiberStack.setEnabled(fastPath)), () => Effect.promise(() =>
      fc.assert(
        fc.asyncProperty(
          fc.integer({ min: 1, max: 4 }),
          fc.integer({ min: 0, max: 2 }),
          fc.array(step, { minLength: 1, maxLength: 40 }),
          (max, minRaw, steps) => {
            const min = Math.min(minRaw, max)
            const f = makeFactory()
            const violations: Array<string> = []
            const work = (s: Step) => (connection: FakeConnection) =>
              Effect.gen(function*() {
                if (!f.state.open.has(connection.id)) violations.push(`lent closed connection #${connection.id}`)
                if (f.state.invalid.has(connection.id)) violations.push(`lent connection #${connection.id} that failed validation`)
                connection.borrowers++
                if (connection.borrowers > 1) violations.push(`connection #${connection.id} lent twice at once`)
                yield* turns(s.hold)
                if (s.breaks) return yield* Effect.fail("broken" as const)
                if (s.fails) return yield* Effect.fail("semantic" as const)
              }).pipe(Effect.ensuring(Effect.sync(() => connection.borrowers--)))
            const program = Effect.gen(function*() {
              const scope = yield* Scope.make()
              const pool = yield* ConnectionPool.make({
                name: "prop",
                acquire: f.acquire,
                min,
                max,
                isBroken: (e) => e === "broken",
                validate: f.validate,
                validationWindow: 0,
                acquireTimeout: "1 hour"
              }).pipe(Scope.provide(scope))
              const fibers = []
              for (const s of steps) {
                if (s.openFails) f.state.failNextOpens++
                if (s.invalidates) for (const id of f.state.open.keys()) f.state.invalid.add(id)
                const borrow = s.scoped
                  ? Effect.scoped(Effect.flatMap(pool.get, work(s)))
                  : pool.use(work(s))
                const fiber = yield* Effect.forkChild(Effect.exit(borrow))
                fibers.push(fiber)
                if (s.interruptAfter !== undefined) {
                  yield* Effect.forkChild(Effect.andThen(turns(s.interruptAfter), Fiber.interrupt(fiber)))
                }
                if (f.state.open.size > max) violations.push(`open ${f.state.open.size} > max ${max}`)
              }
              for (let i = 0; i < 200; i++) {
                yield* Effect.yieldNow
                if (f.state.open.size > max) violations.push(`open ${f.state.open.size} > max ${max}`)
              }
              yield* Fiber.awaitAll(fibers)
              const stats = yield* pool.stats
              if (stats.inUse !== 0) violations.push(`inUse ${stats.inUse} after every borrower finished`)
              yield* Scope.close(scope, Exit.void)
              if (f.state.open.size !== 0) violations.push(`${f.state.open.size} connections still open after close`)
              if (f.state.maxOpen > max) violations.push(`maxOpen ${f.state.maxOpen} > max ${max}`)
              if (f.state.opened !== f.state.closed) violations.push(`opened ${f.state.opened} != closed ${f.state.closed}`)
              return violations
            })
            return Effect.runPromise(program).then((v) => {
              assert.deepStrictEqual(v, [])
            })
          }
        ),
        { numRuns: 300 }
      )
    ), () => Effect.sync(() => FiberStack.setEnabled(true))))
  }
})
