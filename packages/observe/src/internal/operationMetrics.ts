import type { ServerSet } from "@tether/core"
import type { Context } from "effect"
import { Metric } from "effect"

/** Latency buckets in seconds: 100 µs doubling up to ~13 s. */
export const durationBoundaries = Metric.exponentialBoundaries({ start: 0.0001, factor: 2, count: 18 })

const operationDuration = Metric.histogram("tether_operation_duration_seconds", {
  description: "Duration of operations run through a server set (ServerSet.use), by set, endpoint, operation and outcome",
  boundaries: durationBoundaries,
  attributes: { unit: "s" }
})

/** Operations running through a set now (sampled from its status by the monitor). */
export const inFlight = Metric.gauge("tether_operations_in_flight", {
  description: "Operations running through a server set now",
  attributes: { unit: "{operation}" }
})

/** One finished operation, as `set.as(key).use` reports it. */
export type Observation = ServerSet.Observation

/**
 * One series of the histogram, kept in plain numbers: recording costs a binary
 * search, not an Effect metric update (which costs about as much as routing
 * the call). The metric registry reads it through a `get` hook.
 */
class LocalHistogram {
  private readonly values: Uint32Array
  private count = 0
  private sum = 0
  private min = Number.MAX_VALUE
  private max = -Number.MAX_VALUE
  constructor(private readonly boundaries: ReadonlyArray<number>) {
    this.values = new Uint32Array(boundaries.length + 1)
  }
  observe(value: number): void {
    const bounds = this.boundaries
    let from = 0
    let to = bounds.length
    while (from < to) {
      const mid = (from + to) >>> 1
      if (value <= bounds[mid]!) to = mid
      else from = mid + 1
    }
    this.values[from]!++
    this.count++
    this.sum += value
    if (value < this.min) this.min = value
    if (value > this.max) this.max = value
  }
  state(): Metric.HistogramState {
    const buckets: Array<[number, number]> = []
    let cumulated = 0
    for (let i = 0; i < this.boundaries.length; i++) {
      cumulated += this.values[i]!
      buckets.push([this.boundaries[i]!, cumulated])
    }
    return { buckets, count: this.count, min: this.min, max: this.max, sum: this.sum }
  }
}

const sortedBoundaries = [...durationBoundaries].sort((a, b) => a - b)

/**
 * Records each operation `set.as(key).use` reports (see `ServerSet.OperationObserver`)
 * in the operation histogram, a series per (set, endpoint, operation, outcome),
 * synchronously: no span, no fiber, no effect.
 */
export class OperationRecorder {
  private readonly series = new Map<string, LocalHistogram>()
  constructor(
    private readonly context: Context.Context<never>,
    private readonly onObservation: (observation: Observation) => void
  ) {}

  readonly record = (observation: Observation): void => {
    const key = `${observation.set}\u0000${observation.endpoint}\u0000${observation.operation}\u0000${observation.outcome}`
    let histogram = this.series.get(key)
    if (histogram === undefined) {
      const local = new LocalHistogram(sortedBoundaries)
      histogram = local
      this.series.set(key, local)
      const metric = Metric.withAttributes(operationDuration, {
        set: observation.set,
        endpoint: observation.endpoint,
        operation: observation.operation,
        outcome: observation.outcome
      })
      const observe = (value: number) => local.observe(value)
      Metric.registerUnsafe(metric, this.context, { get: () => local.state(), update: observe, modify: observe })
    }
    histogram.observe(observation.seconds)
    this.onObservation(observation)
  }
}
