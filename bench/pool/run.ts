/**
 * Runs the pool workload for several implementations, interleaved: for each
 * borrower count, every round runs every implementation once (rotating the
 * order each round), each trial on a fresh pool, with a garbage collection
 * between trials.
 */
import { collectGarbage, median, Window, type TrialSummary } from "../harness/measure.ts"
import type { Hold, Implementation } from "./workload.ts"

export interface RunOptions {
  readonly size: number
  readonly borrowers: ReadonlyArray<number>
  readonly holds: ReadonlyArray<Hold>
  readonly rounds: number
  /** Per trial, not counted. */
  readonly warmupMs: number
  /** Per trial, counted. */
  readonly measureMs: number
  readonly log: (line: string) => void
}

/** The medians over rounds of one implementation at one borrower count. */
export interface CaseResult {
  readonly opsPerSecond: number
  readonly p50Micros: number
  readonly p99Micros: number
  /** Lowest and highest per-round throughput, to show the spread. */
  readonly minOpsPerSecond: number
  readonly maxOpsPerSecond: number
  readonly trials: ReadonlyArray<TrialSummary>
  /** Why some trials failed (their values are left out; all failed → NaN). */
  readonly errors: ReadonlyArray<string>
}

/** A case: how many borrowers, holding the resource how. */
export interface Case {
  readonly borrowers: number
  readonly hold: Hold
}

/** Results by implementation name, then by case name. */
export type Results = Map<string, Map<string, CaseResult>>

const failed: TrialSummary = { ops: 0, opsPerSecond: Number.NaN, p50Micros: Number.NaN, p99Micros: Number.NaN }

const describe = (error: unknown): string =>
  error instanceof Error ? `${error.name}: ${error.message}` : String(error)

export const runTrial = async (
  impl: Implementation,
  size: number,
  { borrowers, hold }: Case,
  warmupMs: number,
  measureMs: number
) => {
  const prepared = await impl.prepare(size)
  collectGarbage()
  const window = new Window(warmupMs, measureMs)
  // A pool that wedges (borrowers never served) must not hang the whole run:
  // give up on the trial, and leave its pool behind.
  const limitMs = warmupMs + measureMs + 10_000
  let timer: ReturnType<typeof setTimeout> | undefined
  const watchdog = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new Error(`wedged: the borrowers had not finished ${limitMs} ms after the trial started`)),
      limitMs
    )
  })
  try {
    await Promise.race([prepared.run(borrowers, window, hold), watchdog])
  } finally {
    clearTimeout(timer)
  }
  const summary = window.summary()
  await prepared.close()
  return summary
}

export const runAll = async (impls: ReadonlyArray<Implementation>, options: RunOptions): Promise<Results> => {
  const results: Results = new Map(impls.map((impl) => [impl.name, new Map()]))
  // One short unrecorded pass so every implementation's code is compiled
  // before its first measured trial.
  const cases = options.holds.flatMap((hold) => options.borrowers.map((borrowers): Case => ({ borrowers, hold })))
  for (const impl of impls) {
    for (const c of cases) {
      await runTrial(impl, options.size, c, 0, Math.min(100, options.measureMs)).catch((error: unknown) =>
        options.log(`  ${impl.name} ${caseName(options.size, c)}: warm-up pass failed: ${describe(error)}`)
      )
    }
  }
  for (const c of cases) {
    const name = caseName(options.size, c)
    const trials = new Map<string, Array<TrialSummary>>(impls.map((impl) => [impl.name, []]))
    const errors = new Map<string, Array<string>>(impls.map((impl) => [impl.name, []]))
    for (let round = 0; round < options.rounds; round++) {
      for (let k = 0; k < impls.length; k++) {
        const impl = impls[(k + round) % impls.length]!
        let summary: TrialSummary
        try {
          summary = await runTrial(impl, options.size, c, options.warmupMs, options.measureMs)
          trials.get(impl.name)!.push(summary)
        } catch (error) {
          summary = failed
          errors.get(impl.name)!.push(describe(error))
        }
        options.log(
          `  ${impl.name.padEnd(24)} ${name.padEnd(40)} round ${round + 1}/${options.rounds}: ` +
            `${(summary.opsPerSecond / 1e6).toFixed(3)}M ops/s  p50 ${summary.p50Micros.toFixed(2)} µs  ` +
            `p99 ${summary.p99Micros.toFixed(2)} µs`
        )
      }
    }
    for (const impl of impls) {
      const list = trials.get(impl.name)!
      const throughput = list.map((t) => t.opsPerSecond)
      results.get(impl.name)!.set(name, {
        opsPerSecond: median(throughput),
        p50Micros: median(list.map((t) => t.p50Micros)),
        p99Micros: median(list.map((t) => t.p99Micros)),
        minOpsPerSecond: list.length === 0 ? Number.NaN : Math.min(...throughput),
        maxOpsPerSecond: list.length === 0 ? Number.NaN : Math.max(...throughput),
        trials: list,
        errors: errors.get(impl.name)!
      })
    }
  }
  return results
}

export const caseName = (size: number, { borrowers, hold }: Case) =>
  `${size} items, ${borrowers} borrower${borrowers === 1 ? "" : "s"}${hold === "none" ? "" : `, hold ${hold}`}`
