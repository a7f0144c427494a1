/**
 * Closed-loop load shared by the suites: `concurrency` workers each run an
 * operation again and again for a measuring window; throughput and p99.
 * Effect operations run on fibers (how an Effect program calls a client),
 * promise operations on async workers (how a promise-based peer is called).
 */
import { Effect, Exit, Scope } from "effect"
import { median, now, percentile } from "./measure.ts"

/** What one loop measured. */
export interface LoopResult {
  readonly opsPerSecond: number
  /** p99 latency in µs (0 when latencies were not recorded). */
  readonly p99Micros: number
}

/** Options of a loop. */
export interface LoopOptions {
  /** An unrecorded warm-up before the window. Default none. */
  readonly warmupMillis?: number | undefined
  /** Record each operation's latency for p99. Default false. */
  readonly latencies?: boolean | undefined
}

const summarize = (done: number, millis: number, samples: Array<number> | undefined): LoopResult => ({
  opsPerSecond: done / (millis / 1000),
  p99Micros: samples === undefined ? 0 : percentile(samples.sort((a, b) => a - b), 0.99) * 1000
})

/** Runs `op(i)` (i: the worker's next index) from `concurrency` fibers for `millis`. */
export const effectLoop = <E, R>(
  op: (i: number) => Effect.Effect<unknown, E, R>,
  concurrency: number,
  millis: number,
  options: LoopOptions = {}
): Effect.Effect<LoopResult, E, R> => {
  const window = (windowMillis: number, samples: Array<number> | undefined) =>
    Effect.gen(function*() {
      let done = 0
      const end = now() + windowMillis
      yield* Effect.forEach(
        Array.from({ length: concurrency }, (_, w) => w),
        (w) =>
          Effect.gen(function*() {
            let i = w
            while (now() < end) {
              const t0 = now()
              yield* op(i)
              if (samples !== undefined) samples.push(now() - t0)
              i += concurrency
              done++
            }
          }),
        { concurrency: "unbounded", discard: true }
      )
      return done
    })
  return Effect.gen(function*() {
    if (options.warmupMillis !== undefined) yield* window(options.warmupMillis, undefined)
    const samples = options.latencies === true ? [] : undefined
    return summarize(yield* window(millis, samples), millis, samples)
  })
}

/** The same for a promise-returning operation, from `concurrency` async workers. */
export const promiseLoop = async (
  op: (i: number) => Promise<unknown>,
  concurrency: number,
  millis: number,
  options: LoopOptions = {}
): Promise<LoopResult> => {
  const window = async (windowMillis: number, samples: Array<number> | undefined) => {
    let done = 0
    const end = now() + windowMillis
    await Promise.all(Array.from({ length: concurrency }, async (_, w) => {
      let i = w
      while (now() < end) {
        const t0 = now()
        await op(i)
        if (samples !== undefined) samples.push(now() - t0)
        i += concurrency
        done++
      }
    }))
    return done
  }
  if (options.warmupMillis !== undefined) await window(options.warmupMillis, undefined)
  const samples = options.latencies === true ? [] : undefined
  return summarize(await window(millis, samples), millis, samples)
}

/** Runs a suite's program in a scope, closed (servers stopped) even when the program fails. */
export const runScoped = async <E>(program: Effect.Effect<void, E, Scope.Scope>): Promise<void> => {
  const scope = Effect.runSync(Scope.make())
  try {
    await Effect.runPromise(program.pipe(Scope.provide(scope)))
  } finally {
    await Effect.runPromise(Scope.close(scope, Exit.void))
  }
}

/** One client's windows in {@link alternating}: the median throughput and p99, and every window. */
export interface Alternated extends LoopResult {
  readonly windows: ReadonlyArray<LoopResult>
}

/**
 * Runs each client's window `rounds` times, the clients alternating (the order rotated by one
 * each round), and reports each client's median throughput and median p99. A client's first
 * window runs with `options.first` (e.g. a warm-up), the others with `options.rest`. On a
 * machine whose speed drifts during a run (shared cores, a server on the same cores), every
 * client sees the same drift.
 */
export const alternating = <E, R>(
  clients: ReadonlyArray<readonly [string, (options: LoopOptions) => Effect.Effect<LoopResult, E, R>]>,
  options: { readonly rounds: number; readonly first: LoopOptions; readonly rest: LoopOptions }
): Effect.Effect<Readonly<Record<string, Alternated>>, E, R> =>
  Effect.gen(function*() {
    const windows: Record<string, Array<LoopResult>> = {}
    for (let round = 0; round < options.rounds; round++) {
      for (let i = 0; i < clients.length; i++) {
        const [name, run] = clients[(i + round) % clients.length]!
        const mine = windows[name] ??= []
        mine.push(yield* run(mine.length === 0 ? options.first : options.rest))
      }
    }
    return Object.fromEntries(
      Object.entries(windows).map(([name, results]) => [name, {
        opsPerSecond: median(results.map((r) => r.opsPerSecond)),
        p99Micros: median(results.map((r) => r.p99Micros)),
        windows: results
      }])
    )
  })
