/**
 * The `observe` suite: what `@tether/observe` costs on the `pg` suite's
 * `select 1` at concurrency 16 (one real PostgreSQL server, 8 connections).
 *
 * - "with Observe.layer()": the performance monitor (every `set.as(key).use`
 *   span timed into `tether_operation_duration_seconds`, in-flight gauge) vs. the
 *   same client without it. Goal: ≤ 5% fewer ops/s.
 * - "with Observe.layer({ telemetry })": the monitor plus OpenTelemetry traces
 *   through the Node SDK (batch span processor, an exporter that drops spans),
 *   for information.
 *
 * - the same two layers on `set.as().use` over an in-memory driver (no I/O):
 *   the added cost per operation, without the server's noise.
 *
 * Rounds alternate (without, with, without, with, …) and the medians are reported,
 * so that drift on a shared machine hits both sides alike.
 */
import type { ExportResult } from "@opentelemetry/core"
import type { ReadableSpan, SpanExporter } from "@opentelemetry/sdk-trace-base"
import { BatchSpanProcessor } from "@opentelemetry/sdk-trace-base"
import type { Driver } from "@tether/core"
import { Fault, ServerSet } from "@tether/core"
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
      const pgLoop = effectLoop(() => db.read`select 1`, CONCURRENCY, millis, { warmupMillis: 300, latencies: true })
      const driver: Driver.Driver<number, never> = { connect: () => Effect.succeed(1), classify: () => Fault.make("unknown") }
      const memory = yield* ServerSet.make({ name: "bench-memory", endpoints: ["mem://a:1"], driver, health: false, pool: { min: CONNECTIONS, max: CONNECTIONS } })
      const memoryLoop = effectLoop(() => memory.as().use((n) => Effect.succeed(n)), CONCURRENCY, millis, { warmupMillis: 300, latencies: true })

      const compare = <A, E>(label: string, layer: Layer.Layer<A, E>, loop = pgLoop, what = "select 1") =>
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
            case: `${what}, concurrency ${CONCURRENCY}, ${label}`,
            metric: "throughput",
            unit: "ops/s",
            higherIsBetter: true,
            tether: ours,
            peers: { "without observe": base }
          })
          measurements.push({
            case: `${what}, concurrency ${CONCURRENCY}, ${label}`,
            metric: "p99 latency",
            unit: "µs",
            higherIsBetter: false,
            tether: median(p99With),
            peers: { "without observe": median(p99Without) }
          })
          log(`observe: ${what}, ${label}: ${Math.round(ours)} vs ${Math.round(base)} ops/s (${((ours / base - 1) * 100).toFixed(1)}%)`)
        })

      const monitorOnly = Observe.layer()
      const withTelemetry = Observe.layer({
        telemetry: { serviceName: "bench", otlp: false, spanProcessors: [new BatchSpanProcessor(new DropExporter())] }
      })
      yield* compare("with Observe.layer()", monitorOnly)
      yield* compare("with Observe.layer({ telemetry })", withTelemetry)
      yield* compare("with Observe.layer()", monitorOnly, memoryLoop, "ServerSet.use, in-memory driver")
      yield* compare("with Observe.layer({ telemetry })", withTelemetry, memoryLoop, "ServerSet.use, in-memory driver")
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
