/**
 * A steady load for tests that change something while work runs: `fibers`
 * loops each run one operation after another, every outcome counted, until
 * `stop`. Progress is waited for by count (`progress(n)`: `n` more
 * successes), never by time, so a slow machine only makes the test slower.
 *
 * @example
 * ```ts
 * import { SteadyLoad } from "@tether/testkit"
 * import { Effect } from "effect"
 *
 * declare const read: Effect.Effect<ReadonlyArray<unknown>, Error>
 *
 * const program = Effect.gen(function*() {
 *   const load = yield* SteadyLoad.start(read, { fibers: 8 })
 *   yield* load.progress(100) // 100 more successful reads
 *   // … reconfigure, fail over, restart a server …
 *   yield* load.progress(100)
 *   yield* load.stop
 *   console.log(load.counts) // { ok, failed, errors }
 * })
 * ```
 *
 * @since 0.2.0
 */
import { Effect, Fiber, Schedule } from "effect"

/**
 * What the load has seen so far.
 *
 * @since 0.2.0
 * @category models
 */
export interface Counts {
  ok: number
  failed: number
  /** The first five failures, as text. */
  readonly errors: Array<string>
}

/**
 * A running load.
 *
 * @since 0.2.0
 * @category models
 */
export interface SteadyLoad {
  readonly counts: Counts
  /** Waits until `n` more operations have succeeded; dies with the counts after `maxPolls` polls 10 ms apart without. */
  readonly progress: (n: number) => Effect.Effect<void>
  /** Stops the loops after their current operation and waits for them. */
  readonly stop: Effect.Effect<void>
}

/**
 * Options of {@link start}.
 *
 * @since 0.2.0
 * @category models
 */
export interface Options<A> {
  readonly fibers: number
  /** Why a successful result does not count as one (e.g. an entry not found); `undefined`: it counts. */
  readonly check?: ((result: A) => string | undefined) | undefined
  /** Polls of `progress` before it gives up. Default 12,000 (two minutes). */
  readonly maxPolls?: number | undefined
}

/**
 * Starts `options.fibers` loops of `operation`.
 *
 * @since 0.2.0
 * @category constructors
 */
export const start = <A, E>(operation: Effect.Effect<A, E>, options: Options<A>): Effect.Effect<SteadyLoad> =>
  Effect.gen(function*() {
    const counts: Counts = { ok: 0, failed: 0, errors: [] }
    let running = true
    const loop = Effect.gen(function*() {
      while (running) {
        const exit = yield* Effect.exit(operation)
        const problem = exit._tag === "Failure" ? String(exit.cause) : options.check?.(exit.value)
        if (problem === undefined) counts.ok++
        else {
          counts.failed++
          if (counts.errors.length < 5) counts.errors.push(problem)
        }
      }
    })
    const all = yield* Effect.forEach(Array.from({ length: options.fibers }), () => Effect.forkChild(loop))
    const progress = (n: number) =>
      Effect.suspend(() => {
        const target = counts.ok + n
        return Effect.sync(() => counts.ok).pipe(
          Effect.repeat({
            until: (ok) => ok >= target,
            schedule: Schedule.spaced("10 millis"),
            times: options.maxPolls ?? 12_000
          }),
          Effect.flatMap((ok) => ok >= target ? Effect.void : Effect.die(`no progress: ${JSON.stringify(counts)}`))
        )
      })
    const stop = Effect.suspend(() => {
      running = false
      return Effect.asVoid(Fiber.joinAll(all))
    })
    return { counts, progress, stop }
  })
