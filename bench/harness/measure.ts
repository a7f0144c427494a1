/**
 * Measurement helpers shared by the suites: a measuring window that every
 * implementation under test reports to in exactly the same way, percentiles,
 * medians and a between-trials garbage collection.
 */
import { performance } from "node:perf_hooks"
import * as v8 from "node:v8"
import * as vm from "node:vm"

/** The clock every suite uses (milliseconds, sub-microsecond resolution). */
export const now = (): number => performance.now()

/** Capacity of the shared latency-sample buffer (64 MiB of float64). */
const SAMPLE_CAPACITY = 1 << 23
let sampleBuffer: Float64Array | undefined

/**
 * One trial's measuring window. Workers call {@link Window.record} once per
 * operation with the time they asked (`t0`) and the time they got (`t1`),
 * and stop once it answers `false`:
 *
 * - throughput counts the operations *completed* inside the window;
 * - latency is kept for every acquire that was in progress at some point of
 *   the window (asked before it closed, served after it opened), including
 *   ones asked during the warm-up or served only after the window closed:
 *   a borrower starved all along still shows up in p99 (counting only the
 *   acquires completed inside the window would hide starvation).
 *
 * Every implementation pays the same: two `now()` calls and one `record`
 * call per operation.
 */
export class Window {
  readonly samples: Float64Array
  ops = 0
  latencies = 0
  stopped = false
  measureStart: number
  measureEnd: number

  constructor(warmupMs: number, measureMs: number) {
    sampleBuffer ??= new Float64Array(SAMPLE_CAPACITY)
    this.samples = sampleBuffer
    const start = now()
    this.measureStart = start + warmupMs
    this.measureEnd = this.measureStart + measureMs
  }

  /** Reports one operation; answers whether the worker should carry on. */
  record(t0: number, t1: number): boolean {
    if (t0 < this.measureEnd && t1 >= this.measureStart) {
      const i = this.latencies++
      if (i < SAMPLE_CAPACITY) this.samples[i] = t1 - t0
    }
    if (t1 >= this.measureStart) {
      if (t1 < this.measureEnd) this.ops++
      else this.stopped = true
    }
    return !this.stopped
  }

  /** Throughput and latency percentiles (µs) of the window. */
  summary(): TrialSummary {
    const n = Math.min(this.latencies, SAMPLE_CAPACITY)
    const sorted = this.samples.subarray(0, n).sort()
    const seconds = (this.measureEnd - this.measureStart) / 1000
    return {
      ops: this.ops,
      opsPerSecond: this.ops / seconds,
      p50Micros: percentile(sorted, 0.5) * 1000,
      p99Micros: percentile(sorted, 0.99) * 1000
    }
  }
}

/** What one trial measured. */
export interface TrialSummary {
  readonly ops: number
  readonly opsPerSecond: number
  readonly p50Micros: number
  readonly p99Micros: number
}

/** Nearest-rank percentile of an ascending array. */
export const percentile = (sorted: ArrayLike<number>, q: number): number => {
  if (sorted.length === 0) return Number.NaN
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))
  return sorted[rank]!
}

export const median = (values: ReadonlyArray<number>): number => {
  if (values.length === 0) return Number.NaN
  const sorted = [...values].sort((a, b) => a - b)
  const mid = sorted.length >> 1
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2
}

let collect: (() => void) | undefined | null = null

/**
 * A full garbage collection between trials, so one implementation's garbage
 * is not collected on the next one's time. Works without `--expose-gc`.
 */
export const collectGarbage = (): void => {
  if (collect === null) {
    try {
      v8.setFlagsFromString("--expose-gc")
      collect = vm.runInNewContext("gc") as () => void
    } catch {
      collect = undefined
    }
  }
  collect?.()
}

/** Resolves on the next turn of the event loop (lets timers and I/O run). */
export const nextTurn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve))
