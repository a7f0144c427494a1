/**
 * The identity guarantee as a property, against a fake directory whose
 * connections drop (a client library would then reconnect them *unbound*,
 * as ldapts does) and whose passwords rotate while victims, stale callers
 * and attackers borrow concurrently, with random interruptions.
 */
import { assert, describe, it } from "@effect/vitest"
import { Identity, IdentityPool } from "@tether/core"
import { Data, Effect, Exit, Fiber, Redacted, Scope } from "effect"
import * as fc from "fast-check"
import * as FiberStack from "../src/internal/fiberStack.ts"

class BindFailed extends Data.TaggedError("BindFailed")<{ readonly principal: string }> {}
/** The driver refused to reconnect a dropped connection (what `@tether/ldap` does instead of running unbound). */
class Dropped extends Data.TaggedError("Dropped")<{ readonly id: number }> {}

interface Conn {
  readonly id: number
  /** Whom the server sees: a principal and the secret it bound with, or "anonymous". */
  principal: string
  secret: string | undefined
  dropped: boolean
  borrowers: number
}

const principals = ["uid=a", "uid=b", "uid=c", "uid=d"] as const

type Step =
  | { readonly _tag: "use"; readonly who: number; readonly secret: "current" | "stale" | "wrong"; readonly hold: number; readonly interruptAfter: number | undefined }
  | { readonly _tag: "drop"; readonly pick: number }
  | { readonly _tag: "rotate"; readonly who: number }

const step: fc.Arbitrary<Step> = fc.oneof(
  {
    weight: 8,
    arbitrary: fc.record({
      _tag: fc.constant("use" as const),
      who: fc.nat({ max: principals.length - 1 }),
      secret: fc.constantFrom("current" as const, "current" as const, "current" as const, "stale" as const, "wrong" as const),
      hold: fc.nat({ max: 6 }),
      interruptAfter: fc.option(fc.nat({ max: 6 }), { nil: undefined })
    })
  },
  { weight: 2, arbitrary: fc.record({ _tag: fc.constant("drop" as const), pick: fc.nat() }) },
  { weight: 1, arbitrary: fc.record({ _tag: fc.constant("rotate" as const), who: fc.nat({ max: principals.length - 1 }) }) }
)

const yields = (n: number) => Effect.forEach(Array.from({ length: n }), () => Effect.yieldNow, { discard: true })

describe("IdentityPool property", () => {
  // Both ways a borrow can end: the fast path's frame on the fiber's stack, and the public combinators.
  for (const fastPath of [true, false]) {
  it.effect(
    `with connections that drop (and would reconnect unbound) and rotating passwords: never the wrong identity, never a connection lent without a passing readiness check, never above max, nothing leaked, no caller ends in an interruption it did not ask for (${fastPath ? "frame" : "fallback"})`,
    () =>
      Effect.acquireUseRelease(Effect.sync(() => FiberStack.setEnabled(fastPath)), () => Effect.promise(() =>
        fc.assert(
          fc.asyncProperty(
            fc.integer({ min: 1, max: 5 }),
            fc.boolean(),
            fc.constantFrom(1, 2),
            fc.array(step, { minLength: 1, maxLength: 80 }),
            (max, rebinding, concurrency, steps) => {
              const passwords = new Map<string, string>(principals.map((p) => [p, `${p}-v0`]))
              const previous = new Map<string, string>()
              const open = new Map<number, Conn>()
              let opened = 0
              let maxOpen = 0
              const violations: Array<string> = []
              /** The last readiness check each fiber made: the pool must lend only right after a passing one. */
              const checks = new Map<unknown, { readonly id: number; readonly ok: boolean }>()

              const bindAs = (conn: Conn, identity: Identity.Credentials | undefined) => {
                const principal = identity?.principal ?? "service"
                const secret = identity === undefined ? undefined : Redacted.value(identity.secret!)
                if (identity !== undefined && passwords.get(principal) !== secret) {
                  conn.principal = "anonymous"
                  conn.secret = undefined
                  return false
                }
                conn.principal = principal
                conn.secret = secret
                return true
              }
              const connect = (identity: Identity.Credentials | undefined) =>
                Effect.acquireRelease(
                  Effect.suspend(() => {
                    const conn: Conn = { id: ++opened, principal: "", secret: undefined, dropped: false, borrowers: 0 }
                    if (!bindAs(conn, identity)) return Effect.fail(new BindFailed({ principal: identity!.principal }))
                    open.set(conn.id, conn)
                    maxOpen = Math.max(maxOpen, open.size)
                    return Effect.succeed(conn)
                  }),
                  (conn) => Effect.sync(() => open.delete(conn.id))
                )
              const rebind = (conn: Conn, identity: Identity.Credentials | undefined) =>
                Effect.suspend((): Effect.Effect<void, BindFailed | Dropped> => {
                  if (conn.dropped) return Effect.fail(new Dropped({ id: conn.id }))
                  return bindAs(conn, identity) ? Effect.void : Effect.fail(new BindFailed({ principal: identity!.principal }))
                })
              const isReady = (conn: Conn) => {
                checks.set(Fiber.getCurrent(), { id: conn.id, ok: !conn.dropped })
                return !conn.dropped
              }

              const program = Effect.gen(function*() {
                const scope = yield* Scope.make()
                const pool = yield* IdentityPool.make<Conn, BindFailed | Dropped>({
                  name: "p",
                  connect,
                  rebind: rebinding ? rebind : undefined,
                  isReady,
                  validate: (conn) => Effect.succeed(!conn.dropped),
                  isBroken: (error) => error instanceof Dropped,
                  max,
                  pool: { drainTimeout: "200 millis", concurrency, validationWindow: "1 hour", acquireTimeout: "2 seconds" }
                }).pipe(Scope.provide(scope))
                const fibers: Array<{ readonly fiber: Fiber.Fiber<unknown, unknown>; readonly interrupted: boolean; readonly attacker: boolean }> = []
                for (const s of steps) {
                  if (s._tag === "drop") {
                    const all = [...open.values()]
                    if (all.length > 0) all[s.pick % all.length]!.dropped = true
                    yield* Effect.yieldNow
                    continue
                  }
                  if (s._tag === "rotate") {
                    const p = principals[s.who]!
                    const now = passwords.get(p)!
                    previous.set(p, now)
                    passwords.set(p, `${p}-v${Number(now.split("-v")[1]) + 1}`)
                    continue
                  }
                  const p = principals[s.who]!
                  const secret = s.secret === "current"
                    ? passwords.get(p)!
                    : s.secret === "stale"
                    ? previous.get(p) ?? passwords.get(p)!
                    : `${p}-wrong`
                  const identity = Identity.make(p, Redacted.make(secret), { label: p })
                  const fiber = yield* Effect.forkChild(pool.use(identity, (conn) =>
                    Effect.gen(function*() {
                      const check = checks.get(Fiber.getCurrent())
                      checks.delete(Fiber.getCurrent())
                      if (check === undefined || check.id !== conn.id || !check.ok) {
                        violations.push(`connection #${conn.id} lent without a passing readiness check`)
                      }
                      if (conn.principal !== p || conn.secret !== secret) {
                        violations.push(`${p} (secret ${secret}) got #${conn.id} bound as ${conn.principal} (${conn.secret})`)
                      }
                      if (++conn.borrowers > concurrency) violations.push(`#${conn.id} lent ${conn.borrowers} times at once`)
                      yield* yields(s.hold)
                      // Dropped meanwhile: the driver fails the operation rather than reconnect it unbound.
                      if (conn.dropped) return yield* Effect.fail(new Dropped({ id: conn.id }))
                      return conn.principal
                    }).pipe(Effect.ensuring(Effect.sync(() => conn.borrowers--)))))
                  fibers.push({ fiber, interrupted: s.interruptAfter !== undefined, attacker: s.secret === "wrong" })
                  if (s.interruptAfter !== undefined) {
                    yield* Effect.forkChild(Effect.andThen(yields(s.interruptAfter), Fiber.interrupt(fiber)))
                  }
                }
                const exits = yield* Effect.forEach(fibers, ({ fiber }) => Fiber.await(fiber))
                const stats = yield* pool.stats
                if (stats.inUse !== 0) violations.push(`inUse ${stats.inUse} after every borrower finished (a lease never ended)`)
                exits.forEach((exit, i) => {
                  const { attacker, interrupted } = fibers[i]!
                  if (Exit.isFailure(exit) && Exit.hasInterrupts(exit) && !interrupted) {
                    violations.push(`a caller ended in an interruption it did not ask for`)
                  }
                  if (attacker && Exit.isSuccess(exit)) violations.push("a wrong password succeeded")
                  if (attacker && Exit.isFailure(exit) && !Exit.hasInterrupts(exit)) {
                    const reason = exit.cause.reasons[0]
                    const tag = reason?._tag === "Fail" ? (reason.error as { _tag?: string })._tag : reason?._tag
                    if (tag !== "BindFailed") violations.push(`an attacker got ${tag}, not its typed error`)
                  }
                })
                yield* Scope.close(scope, Exit.void)
                if (maxOpen > max) violations.push(`maxOpen ${maxOpen} > ${max}`)
                if (open.size !== 0) violations.push(`${open.size} left open`)
                return violations
              })
              return Effect.runPromise(
                program.pipe(Effect.timeoutOrElse({ duration: "10 seconds", orElse: () => Effect.succeed(["stuck for 10 s"]) }))
              ).then((v) => assert.deepStrictEqual(v, []))
            }
          ),
          { numRuns: 150 }
        )
      ), () => Effect.sync(() => FiberStack.setEnabled(true))),
    120_000
  )
  }
})
