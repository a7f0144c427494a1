import { describe, expect, it } from "@effect/vitest"
import { InMemorySpanExporter, SimpleSpanProcessor } from "@opentelemetry/sdk-trace-base"
import type { Driver } from "@tether/core"
import { Fault, ServerSet } from "@tether/core"
import { ConfigProvider, Data, Effect, Metric, Schedule } from "effect"
import { Observe, Telemetry } from "../src/index.ts"

class Refused extends Data.TaggedError("Refused")<{ readonly url: string }> {}

/** `fake://bad` refuses every connection; the others accept. */
const driver: Driver.Driver<{ readonly url: string }, Refused> = {
  connect: (endpoint) =>
    endpoint.url.includes("bad") ? Effect.fail(new Refused({ url: endpoint.url })) : Effect.succeed({ url: endpoint.url }),
  classify: (error) =>
    error instanceof Refused ? Fault.make("connection", { mayHaveReachedServer: false }) : Fault.make("unknown")
}

describe("traces and the operation histogram", () => {
  it.live("use spans name the endpoint that ran them and carry events for failed attempts, the breaker opening and failovers", () =>
    Effect.gen(function*() {
      const spans = new InMemorySpanExporter()
      const finished = yield* Effect.gen(function*() {
        const set = yield* ServerSet.make({
          name: "events",
          endpoints: ["fake://bad:1", "fake://good:2"],
          driver,
          strategy: "round-robin",
          health: false,
          breaker: { consecutiveFailures: 1, openDuration: Schedule.spaced("1 minute") },
          retry: { schedule: Schedule.recurs(3) }
        })
        for (let i = 0; i < 6; i++) {
          expect(yield* set.as().use((c) => Effect.succeed(c.url), { idempotent: true }).pipe(Effect.withSpan(`op ${i}`))).toBe(
            "fake://good:2"
          )
        }
        // The histogram counted every operation, all on the good endpoint, all successful.
        const snapshot = yield* Metric.snapshot
        const histograms = snapshot.filter((m) =>
          m.id === "tether_operation_duration_seconds" && m.attributes?.set === "events"
        )
        expect(histograms.map((m) => `${m.attributes?.endpoint} ${m.attributes?.outcome} ${m.attributes?.operation}`)).toEqual([
          "fake://good:2 success use"
        ])
        expect(histograms[0]!.type === "Histogram" && histograms[0]!.state.count).toBe(6)
        return spans.getFinishedSpans().slice()
      }).pipe(
        Effect.scoped,
        Effect.provide(Observe.layer({ telemetry: { otlp: false, spanProcessors: [new SimpleSpanProcessor(spans)] } }))
      )
      const uses = finished.filter((s) => s.name === "tether.serverset.use")
      expect(uses.length).toBe(6)
      for (const use of uses) expect(use.attributes["tether.endpoint"]).toBe("fake://good:2")
      const events = uses.flatMap((s) => s.events.map((e) => e.name))
      expect(events).toContain("tether.attempt.failed")
      // The breaker opening is logged inside the span, so it is one of its events too. (The balancer
      // skips endpoints whose breaker is open, so a `tether.breaker.rejected` event only appears when
      // a pick races with the opening.)
      expect(events.some((e) => e.startsWith("circuit breaker opened"))).toBe(true)
      expect(events).toContain("tether.failover")
      const failover = uses.flatMap((s) => s.events).find((e) => e.name === "tether.failover")!
      expect(failover.attributes).toEqual({ from: "fake://bad:1", to: "fake://good:2" })
    }))

  it.live("without a service name in the options, the standard OTEL_* variables name the service and add resource attributes", () =>
    Effect.gen(function*() {
      const spans = new InMemorySpanExporter()
      // The standard environment, as the default ConfigProvider reads it (it copies process.env once).
      const env = ConfigProvider.fromEnv({
        env: { OTEL_SERVICE_NAME: "from-env", OTEL_RESOURCE_ATTRIBUTES: "deployment.environment=staging,team=identity" }
      })
      const finished = yield* Effect.gen(function*() {
        yield* Effect.void.pipe(Effect.withSpan("work"))
        return spans.getFinishedSpans().slice()
      }).pipe(
        Effect.provide(Telemetry.layer({ otlp: false, serviceVersion: "2.0.0", spanProcessors: [new SimpleSpanProcessor(spans)] })),
        Effect.provide(ConfigProvider.layer(env))
      )
      const resource = finished.find((s) => s.name === "work")!.resource.attributes
      expect(resource["service.name"]).toBe("from-env")
      expect(resource["service.version"]).toBe("2.0.0")
      expect(resource["deployment.environment"]).toBe("staging")
      expect(resource["team"]).toBe("identity")
    }))
})
