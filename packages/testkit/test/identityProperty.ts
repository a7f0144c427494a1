import { Identity } from "@tether/core"
import type { ServerSet } from "@tether/core"
import { Effect, Exit, Fiber, Scope } from "effect"
import type { Effect as EffectType } from "effect"
import * as fc from "fast-check"

/** The end user of the current request, in the identity property tests. */
export class EndUser extends Identity.Service<EndUser>()("test/EndUser") {}

/** What one run of the identity property saw. */
export interface IdentityRun {
  /** "userN saw X" for every operation the server saw as somebody else. */
  readonly mismatches: ReadonlyArray<string>
  /** Failures other than interruptions. */
  readonly failures: ReadonlyArray<string>
  /** The set's status just before its scope closed. */
  readonly status: ServerSet.Status
}

/**
 * The identity property, for any backend: 200 fibers, each running as one of
 * `identities` (at random, some interrupted at random), ask the server whom it
 * sees on the connection they were given; `check` gets each run's outcome
 * after the set's scope closed.
 */
export const identityProperty = <C, E>(options: {
  readonly identities: ReadonlyArray<Identity.Credentials>
  /** Opens the set in the given scope. */
  readonly makeSet: (run: number) => EffectType.Effect<ServerSet.ServerSet<C, E>, unknown, Scope.Scope>
  /** Whom the server sees on a connection. */
  readonly whoami: (connection: C) => EffectType.Effect<string, unknown>
  /** What `whoami` answers for identity `i`. */
  readonly expected: (i: number) => string
  readonly check: (run: IdentityRun, runIndex: number) => EffectType.Effect<void, unknown>
  readonly runs: number
}) => {
  let runIndex = 0
  return Effect.promise(() =>
    fc.assert(
      fc.asyncProperty(
        fc.array(
          fc.record({
            who: fc.nat({ max: options.identities.length - 1 }),
            interrupt: fc.nat({ max: 9 }).map((n) => n === 0)
          }),
          { minLength: 200, maxLength: 200 }
        ),
        (plan) =>
          Effect.runPromise(Effect.gen(function*() {
            const run = runIndex++
            const scope = yield* Scope.make()
            const set = yield* options.makeSet(run).pipe(Scope.provide(scope), Effect.orDie)
            const mismatches: Array<string> = []
            const fibers = yield* Effect.forEach(plan, (step) =>
              Effect.forkChild(
                set.as(EndUser).use(options.whoami).pipe(
                  Effect.tap((seen) =>
                    Effect.sync(() => {
                      if (seen !== options.expected(step.who)) mismatches.push(`user${step.who} saw ${seen}`)
                    })
                  ),
                  Effect.provideService(EndUser, options.identities[step.who]!)
                )
              ))
            yield* Effect.forEach(fibers.filter((_, i) => plan[i]!.interrupt), (f) => Fiber.interrupt(f), { discard: true })
            const exits = yield* Effect.forEach(fibers, Fiber.await)
            const failures = exits.flatMap((e) => Exit.isFailure(e) && !Exit.hasInterrupts(e) ? [String(e.cause)] : [])
            const status = yield* set.status
            yield* Scope.close(scope, Exit.void)
            yield* options.check({ mismatches, failures, status }, run).pipe(Effect.orDie)
          }))
      ),
      { numRuns: options.runs }
    )
  )
}
