/** Per-second samples of one endpoint for the dashboard's sparklines. */
export interface Point {
  /** Epoch seconds. */
  readonly t: number
  /** Operations per second over the sample (from the set's request counter). */
  readonly ops: number
  /** Failed operations per second over the sample. */
  readonly failures: number
  /** Latency percentiles of the operations recorded in that second, in milliseconds. */
  readonly p50: number | null
  readonly p99: number | null
}

/** At most this many latency samples per endpoint per second (reservoir sampling past it). */
const reservoirSize = 512

/** Latencies of one endpoint during the current second. */
export class LatencyWindow {
  private samples: Array<number> = []
  private seen = 0

  add(millis: number): void {
    this.seen++
    if (this.samples.length < reservoirSize) this.samples.push(millis)
    else {
      const i = Math.floor(Math.random() * this.seen)
      if (i < reservoirSize) this.samples[i] = millis
    }
  }

  /** The percentiles of the second that ended, then starts a new one. */
  drain(): { readonly p50: number | null; readonly p99: number | null } {
    const sorted = this.samples.sort((a, b) => a - b)
    this.samples = []
    this.seen = 0
    return { p50: percentile(sorted, 0.5), p99: percentile(sorted, 0.99) }
  }
}

/** Nearest-rank percentile of sorted values; `null` when there are none. */
export const percentile = (sorted: ReadonlyArray<number>, q: number): number | null => {
  if (sorted.length === 0) return null
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))
  return round3(sorted[rank]!)
}

export const round3 = (n: number): number => Math.round(n * 1000) / 1000

/** A bounded history of points (oldest first). */
export class Ring {
  private readonly points: Array<Point> = []
  constructor(private readonly capacity: number) {}
  push(point: Point): void {
    this.points.push(point)
    if (this.points.length > this.capacity) this.points.splice(0, this.points.length - this.capacity)
  }
  toArray(): ReadonlyArray<Point> {
    return this.points.slice()
  }
}
