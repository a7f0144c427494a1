/** What the pg integration tests share. */
import type { FaultProxy } from "@tether/testkit"
import { Cause, Effect, Exit, Fiber, Random } from "effect"

/** A node's (or a proxy's) URL, without credentials; also the endpoint id `PgClient` gives it. */
export const urlOf = (node: { readonly host: string; readonly port: number }): string =>
  `postgres://${node.host}:${node.port}/postgres`

/** What a failed operation ended in: the error's tag, `Interrupt`, or `Die` (`Success` for a success). */
export const failureOf = (exit: Exit.Exit<unknown, unknown>): string => {
  if (Exit.isSuccess(exit)) return "Success"
  const fail = exit.cause.reasons.find(Cause.isFailReason)
  if (fail !== undefined) {
    const error = fail.error
    return typeof error === "object" && error !== null && "_tag" in error ? String(error._tag) : "untagged"
  }
  return Exit.hasInterrupts(exit) ? "Interrupt" : "Die"
}

/** Adds one to `key` in `tally`. */
export const count = (tally: Map<string, number>, key: string) => tally.set(key, (tally.get(key) ?? 0) + 1)

/** Whether the resets still go on: workers read it to decide when to stop. */
export interface Storm {
  readonly storming: boolean
}

/**
 * Runs `workers` while resetting every connection through `proxy` every
 * `every[0]`-`every[1]` ms, for as long as `keepResetting(rounds)` says (asked
 * before each reset); then `storming` turns false and the workers finish on
 * their own. Returns the resets (connections reset) and rounds done.
 */
export const withResets = <E, R>(
  proxy: FaultProxy.Proxy,
  options: { readonly every: readonly [number, number]; readonly keepResetting: (rounds: number) => Effect.Effect<boolean> },
  workers: (storm: Storm) => Effect.Effect<void, E, R>
): Effect.Effect<{ readonly resets: number; readonly rounds: number }, E, R> =>
  Effect.gen(function*() {
    const storm = { storming: true }
    let resets = 0
    let rounds = 0
    yield* Effect.all([
      workers(storm),
      Effect.gen(function*() {
        while (yield* options.keepResetting(rounds)) {
          yield* Effect.sleep(yield* Random.nextIntBetween(options.every[0], options.every[1]))
          resets += yield* proxy.resetAll
          rounds++
        }
        storm.storming = false
      })
    ], { concurrency: "unbounded", discard: true })
    return { resets, rounds }
  })

/**
 * One call as the storms make it: one in ten is interrupted at a random point
 * (after 0 to `interruptWithin` - 1 ms; `undefined` then), one in ten runs
 * under a 1-4 ms timeout, the rest plainly; the exit of the others.
 */
export const chaoticCall = <A, E, R>(
  op: Effect.Effect<A, E, R>,
  interruptWithin: number
): Effect.Effect<Exit.Exit<A, E | Cause.TimeoutError> | undefined, never, R> =>
  Effect.gen(function*() {
    const style = yield* Random.nextIntBetween(0, 10)
    if (style === 0) {
      // Interrupted at a random point: connecting, authenticating, switching mode, or in flight.
      const fiber = yield* Effect.forkChild(op)
      yield* Effect.sleep(yield* Random.nextIntBetween(0, interruptWithin))
      yield* Fiber.interrupt(fiber)
      return undefined
    }
    return yield* Effect.exit(style === 1 ? Effect.timeout(op, yield* Random.nextIntBetween(1, 5)) : op)
  })
