import type { Context, Exit, Tracer } from "effect"
import { Metric } from "effect"

/** Latency buckets in seconds: 100 µs doubling up to ~13 s. */
export const durationBoundaries = Metric.exponentialBoundaries({ start: 0.0001, factor: 2, count: 18 })

const operationDuration = Metric.histogram("tether_operation_duration_seconds", {
  description: "Duration of operations run through a server set (ServerSet.use), by set, endpoint, operation and outcome",
  boundaries: durationBoundaries,
  attributes: { unit: "s" }
})

const inFlight = Metric.gauge("tether_operations_in_flight", {
  description: "Operations running through a server set now",
  attributes: { unit: "{operation}" }
})

/** One finished operation, as the recorder sees it. */
export interface Observation {
  readonly set: string
  readonly endpoint: string
  readonly operation: string
  readonly outcome: "success" | "failure" | "interrupted"
  readonly seconds: number
}

/**
 * Turns `tether.serverset.use` spans into the operation metrics: a histogram
 * per (set, endpoint, operation, outcome) and an in-flight gauge per set.
 * Everything is updated synchronously on the span's end: no fiber, no effect.
 */
export class OperationRecorder {
  private readonly histograms = new Map<string, Metric.Metric<number, unknown>>()
  private readonly gauges = new Map<string, { metric: Metric.Metric<number, unknown>; value: number }>()
  constructor(
    private readonly context: Context.Context<never>,
    private readonly onObservation: (observation: Observation) => void
  ) {}

  /** Wraps a tracer so that it reports every `tether.serverset.use` span. */
  wrap(inner: Tracer.Tracer): Tracer.Tracer {
    const start = (span: Tracer.Span, parent: Tracer.Span["parent"]) => this.start(span, parent)
    const wrapped: Tracer.Tracer = {
      span(options) {
        const span = inner.span(options)
        if (options.name !== "tether.serverset.use") return span
        start(span, options.parent)
        return span
      },
      ...(inner.context === undefined ? {} : { context: inner.context })
    }
    return wrapped
  }

  private start(span: Tracer.Span, parent: Tracer.Span["parent"]): void {
    const operation = operationOf(parent)
    const startTime = span.status.startTime
    let set: string | undefined
    const end = span.end
    // `set` is known once the span's attributes are written, right after creation.
    queueAttribute(span, () => {
      set = String(span.attributes.get("tether.set") ?? "unknown")
      this.addInFlight(set, 1)
    })
    span.end = (endTime: bigint, exit: Exit.Exit<unknown, unknown>) => {
      const name = set ?? String(span.attributes.get("tether.set") ?? "unknown")
      if (set !== undefined) this.addInFlight(name, -1)
      const endpoint = String(span.attributes.get("tether.endpoint") ?? "none")
      const outcome = exit._tag === "Success" ? "success" : isInterruptOnly(exit) ? "interrupted" : "failure"
      const seconds = Number(endTime - startTime) / 1e9
      this.record({ set: name, endpoint, operation, outcome, seconds })
      end.call(span, endTime, exit)
    }
  }

  private record(observation: Observation): void {
    const key = `${observation.set}\u0000${observation.endpoint}\u0000${observation.operation}\u0000${observation.outcome}`
    let metric = this.histograms.get(key)
    if (metric === undefined) {
      metric = Metric.withAttributes(operationDuration, {
        set: observation.set,
        endpoint: observation.endpoint,
        operation: observation.operation,
        outcome: observation.outcome
      })
      this.histograms.set(key, metric)
    }
    metric.updateUnsafe(observation.seconds, this.context)
    this.onObservation(observation)
  }

  private addInFlight(set: string, delta: number): void {
    let gauge = this.gauges.get(set)
    if (gauge === undefined) {
      gauge = { metric: Metric.withAttributes(inFlight, { set }), value: 0 }
      this.gauges.set(set, gauge)
    }
    gauge.value += delta
    gauge.metric.updateUnsafe(gauge.value, this.context)
  }
}

/** `tether.pg.query` → `query`, `tether.ldap.search` → `search`; a bare `use` otherwise. */
const operationOf = (parent: Tracer.Span["parent"]): string => {
  if (parent._tag !== "Some" || parent.value._tag !== "Span") return "use"
  const name = parent.value.name
  const match = /^tether\.(?:pg|ldap)\.(.+)$/.exec(name)
  return match === null ? "use" : match[1]!
}

const isInterruptOnly = (exit: Exit.Exit<unknown, unknown>): boolean =>
  exit._tag === "Failure" && exit.cause.reasons.length > 0 && exit.cause.reasons.every((r) => r._tag === "Interrupt")

/**
 * `Effect.withSpan` writes the span's attributes right after `span()` returns;
 * the set's name is one of them. Runs `f` on the first attribute write (or at
 * the end, whichever comes first).
 */
const queueAttribute = (span: Tracer.Span, f: () => void): void => {
  const attribute = span.attribute
  let done = false
  span.attribute = (key: string, value: unknown) => {
    attribute.call(span, key, value)
    if (!done && key === "tether.set") {
      done = true
      span.attribute = attribute
      f()
    }
  }
}
