/**
 * The `observe` suite: what `@tether/observe` costs on the `pg` suite's
 * `select 1` at concurrency 16 (one real PostgreSQL server, 8 connections).
 *
 * - "with Observe.layer()": the performance monitor (every `ServerSet.use`
 *   span timed into `tether_operation_duration_seconds`, in-flight gauge) vs. the
 *   same client without it. Goal: ≤ 5% fewer ops/s.
 * - "with Observe.layer({ telemetry })": the monitor plus OpenTelemetry traces
 *   through the Node SDK (batch span processor, an exporter that drops spans),
 *   for information.
 *
 * Rounds alternate (without, with, without, with, …) and the medians are reported,
 * so that drift on a shared machine hits both sides alike.
 */
import type { ExportResult } from "@opentelemetry/core"
import type { ReadableSpan, SpanExporter } from "@opentelemetry/sdk-trace-base"
import { BatchSpanProcessor } from "@opentelemetry/sdk-trace-base"
import { Observe } from "@tether/observe"
import { PgClient } from "@tether/pg"
import { PostgresCluster } from "@tether/testkit"
import type { Layer } from "effect"
import { Effect } from "effect"
import { effectLoop, runScoped } from "../harness/loops.ts"
import { median } from "../harness/measure.ts"
import * as requirements from "../harness/requirements.ts"
import type { Measurement, Suite } from "../harness/types.ts"

const CONNECTIONS = 8
const CONCURRENCY = 16

/** Takes spans and drops them: the cost of tracing without a collector's. */
class DropExporter implements SpanExporter {
  export(_spans: Array<ReadableSpan>, done: (result: ExportResult) => void): void {
    done({ code: 0 })
  }
  shutdown(): Promise<void> {
    return Promise.resolve()
  }
}

export const observeSuite: Suite = {
  name: "observe",
  description: "@tether/observe overhead on pg select 1 at concurrency 16 (monitor; monitor + OTel traces)",
  requires: [requirements.postgres],
  run: async ({ quick, log }) => {
    const millis = quick ? 1_000 : 3_000
    const rounds = quick ? 3 : 5
    const measurements: Array<Measurement> = []

    const program = Effect.gen(function*() {
      log("observe: starting PostgreSQL")
      const cluster = yield* PostgresCluster.make({ replicas: 0 })
      const node = cluster.primary
      const db = yield* PgClient.make({
        endpoints: [`postgres://${node.host}:${node.port}/postgres`],
        user: "postgres",
        readFrom: "any",
        health: false,
        pool: { min: CONNECTIONS, max: CONNECTIONS },
        slowQueryThreshold: "1 minute"
      })
      const loop = effectLoop(() => db.read`select 1`, CONCURRENCY, millis, { warmupMillis: 300, latencies: true })

      const compare = <A, E>(label: string, layer: Layer.Layer<A, E>) =>
        Effect.gen(function*() {
          const without: Array<number> = []
          const withLayer: Array<number> = []
          const p99Without: Array<number> = []
          const p99With: Array<number> = []
          for (let round = 0; round < rounds; round++) {
            const a = yield* loop
            without.push(a.opsPerSecond)
            p99Without.push(a.p99Micros)
            const b = yield* loop.pipe(Effect.provide(layer))
            withLayer.push(b.opsPerSecond)
            p99With.push(b.p99Micros)
          }
          const ours = median(withLayer)
          const base = median(without)
          measurements.push({
            case: `select 1, concurrency ${CONCURRENCY}, ${label}`,
            metric: "throughput",
            unit: "ops/s",
            higherIsBetter: true,
            tether: ours,
            peers: { "without observe": base }
          })
          measurements.push({
            case: `select 1, concurrency ${CONCURRENCY}, ${label}`,
            metric: "p99 latency",
            unit: "µs",
            higherIsBetter: false,
            tether: median(p99With),
            peers: { "without observe": median(p99Without) }
          })
          log(`observe: ${label}: ${Math.round(ours)} vs ${Math.round(base)} ops/s (${((ours / base - 1) * 100).toFixed(1)}%)`)
        })

      yield* compare("with Observe.layer()", Observe.layer())
      yield* compare(
        "with Observe.layer({ telemetry })",
        Observe.layer({
          telemetry: { serviceName: "bench", otlp: false, spanProcessors: [new BatchSpanProcessor(new DropExporter())] }
        })
      )
    })

    await runScoped(program)
    return {
      tetherLabel: "with observe",
      peers: ["without observe"],
      measurements,
      notes: [
        `One PostgreSQL 15 server on loopback, PgClient exclusive mode with ${CONNECTIONS} connections, ${CONCURRENCY} fibers; medians of ${rounds} alternating rounds.`,
        "Goal: Observe.layer() (the performance monitor) costs ≤ 5% of throughput. The telemetry row adds OpenTelemetry spans (Node SDK, batch processor, spans dropped instead of sent)."
      ]
    }
  }
}
