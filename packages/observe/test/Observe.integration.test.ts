import { describe, expect, layer } from "@effect/vitest"
import { InMemoryLogRecordExporter, SimpleLogRecordProcessor } from "@opentelemetry/sdk-logs"
import {
  AggregationTemporality,
  InMemoryMetricExporter,
  PeriodicExportingMetricReader
} from "@opentelemetry/sdk-metrics"
import { InMemorySpanExporter, SimpleSpanProcessor } from "@opentelemetry/sdk-trace-base"
import { PgClient } from "@tether/pg"
import { PostgresCluster, Prometheus as PrometheusServer } from "@tether/testkit"
import { Effect, Redacted, Schedule, Schema } from "effect"
import { spawnSync } from "node:child_process"
import * as Http from "node:http"
import type { AddressInfo } from "node:net"
import type { Telemetry } from "../src/index.ts";
import { AdminServer, Monitor, Observe, Snapshot } from "../src/index.ts"

const urlOf = (node: PostgresCluster.Node) => `postgres://${node.host}:${node.port}/postgres`

const clientFor = (cluster: PostgresCluster.Cluster, name = "db") =>
  PgClient.make({
    name,
    endpoints: cluster.nodes.map((node) => ({ url: urlOf(node), role: node.role })),
    user: "postgres",
    health: { interval: "250 millis", timeout: "500 millis" },
    queryTimeout: "2 seconds"
  })

const get = (url: string) =>
  Effect.promise(async () => {
    const response = await fetch(url)
    return { status: response.status, type: response.headers.get("content-type") ?? "", body: await response.text() }
  })

/** A tiny OTLP/HTTP collector: records every request. */
const otlpRecorder = Effect.acquireRelease(
  Effect.callback<{ url: string; server: Http.Server; requests: Array<{ path: string; type: string; body: string }> }>(
    (resume) => {
      const requests: Array<{ path: string; type: string; body: string }> = []
      const server = Http.createServer((req, res) => {
        let body = ""
        req.setEncoding("utf8").on("data", (c: string) => (body += c)).on("end", () => {
          requests.push({ path: req.url ?? "", type: req.headers["content-type"] ?? "", body })
          res.writeHead(200, { "content-type": "application/json" }).end("{}")
        })
      })
      server.listen(0, "127.0.0.1", () => {
        const port = (server.address() as AddressInfo).port
        resume(Effect.succeed({ url: `http://127.0.0.1:${port}`, server, requests }))
      })
    }
  ),
  ({ server }) => Effect.promise(() => new Promise<void>((resolve) => server.close(() => resolve())))
)

/** `promtool check metrics` on an exposition: its exit code and complaints. */
const promtool = (exposition: string) => {
  const result = spawnSync("promtool", ["check", "metrics"], { input: exposition, encoding: "utf8" })
  return { status: result.status, output: `${result.stdout}${result.stderr}`.trim() }
}

layer(PostgresCluster.layer({ replicas: 1 }), { excludeTestServices: true })("observe on a real PostgreSQL", (it) => {
  describe("OpenTelemetry", () => {
    it.effect("a traced query shows caller → tether.pg.query → tether.serverset.use with its endpoint; metrics carry names, units and attributes; OTLP/HTTP receives all three signals", () =>
      Effect.gen(function*() {
        const cluster = yield* PostgresCluster.PostgresCluster
        const collector = yield* otlpRecorder
        const spans = new InMemorySpanExporter()
        const metrics = new InMemoryMetricExporter(AggregationTemporality.CUMULATIVE)
        const metricReader = new PeriodicExportingMetricReader({ exporter: metrics, exportIntervalMillis: 60_000 })
        const logs = new InMemoryLogRecordExporter()
        const telemetry = {
          serviceName: "observe-test",
          serviceVersion: "9.9.9",
          attributes: { "deployment.environment": "test" },
          endpoint: collector.url,
          metricInterval: "200 millis",
          spanProcessors: [new SimpleSpanProcessor(spans)],
          metricReaders: [metricReader],
          logRecordProcessors: [new SimpleLogRecordProcessor({ exporter: logs })]
        } satisfies Telemetry.Options

        // The in-memory exporters forget everything when the SDK shuts down: read them before.
        const { exported, finished, logRecords } = yield* Effect.gen(function*() {
          const db = yield* clientFor(cluster, "traced")
          const rows = yield* db.read<{ n: number }>`select 1::int as n`.pipe(Effect.withSpan("checkout"))
          expect(rows[0]!.n).toBe(1)
          yield* Effect.logInfo("checkout done")
          yield* Effect.promise(() => metricReader.forceFlush())
          return {
            finished: spans.getFinishedSpans().slice(),
            exported: metrics.getMetrics().flatMap((rm) => rm.scopeMetrics.flatMap((sm) => sm.metrics)),
            logRecords: logs.getFinishedLogRecords().slice()
          }
        }).pipe(Effect.scoped, Effect.provide(Observe.layer({ telemetry })))

        // The span tree, with semantic attributes.
        const checkout = finished.find((s) => s.name === "checkout")!
        const query = finished.find((s) => s.name === "tether.pg.query")!
        const use = finished.find((s) => s.name === "tether.serverset.use")!
        expect(checkout).toBeDefined()
        expect(query.parentSpanContext?.spanId).toBe(checkout.spanContext().spanId)
        expect(use.parentSpanContext?.spanId).toBe(query.spanContext().spanId)
        expect(query.attributes["db.system"]).toBe("postgresql")
        expect(query.attributes["db.statement"]).toBe("select 1::int as n")
        expect(use.attributes["tether.set"]).toBe("traced")
        const replica = cluster.replicas[0]!
        expect(use.attributes["tether.endpoint"]).toBe(urlOf(replica))
        expect(use.resource.attributes["service.name"]).toBe("observe-test")
        expect(use.resource.attributes["service.version"]).toBe("9.9.9")
        expect(use.resource.attributes["deployment.environment"]).toBe("test")

        // Metrics through the OTel SDK: names, units, attributes.
        const duration = exported.filter((m) => m.descriptor.name === "tether_operation_duration_seconds")
        expect(duration.length).toBeGreaterThan(0)
        expect(duration[0]!.descriptor.unit).toBe("s")
        const points = duration.flatMap((m) => m.dataPoints as ReadonlyArray<{ attributes: Record<string, unknown> }>)
        expect(points.some((p) =>
          p.attributes.set === "traced" && p.attributes.operation === "query" && p.attributes.outcome === "success" &&
          p.attributes.endpoint === urlOf(replica)
        )).toBe(true)
        expect(exported.some((m) => m.descriptor.name === "tether_pool_connections")).toBe(true)

        // Logs through the OTel SDK.
        expect(logRecords.some((r) => r.body === "checkout done")).toBe(true)

        // The real OTLP/HTTP endpoint got traces (with our spans), metrics and logs.
        const paths = new Set(collector.requests.map((r) => r.path))
        expect(paths).toContain("/v1/traces")
        expect(paths).toContain("/v1/metrics")
        expect(paths).toContain("/v1/logs")
        const traces = collector.requests.filter((r) => r.path === "/v1/traces").map((r) => r.body).join("\n")
        expect(traces).toContain("tether.serverset.use")
        expect(traces).toContain("observe-test")
        const exportedMetrics = collector.requests.filter((r) => r.path === "/v1/metrics").map((r) => r.body).join("\n")
        expect(exportedMetrics).toContain("tether_operation_duration_seconds")
      }).pipe(Effect.scoped))
  })

  describe("admin server", () => {
    it.effect("/metrics passes promtool, a real Prometheus scrapes it, /health and /status answer, no secret anywhere", () =>
      Effect.gen(function*() {
        const cluster = yield* PostgresCluster.PostgresCluster
        const token = "s3cret-admin-token"
        yield* Effect.gen(function*() {
          const admin = yield* AdminServer.AdminServer
          const monitor = yield* Monitor.Monitor
          const db = yield* clientFor(cluster, "app")
          yield* monitor.watch("app", db, { required: true })
          for (let i = 0; i < 20; i++) yield* db.read`select 1`
          yield* db.cached`select 2`
          yield* db.cached`select 2`

          // /metrics: Prometheus text, valid for promtool (no lint complaint either).
          const metrics = yield* get(`${admin.url}/metrics`).pipe(
            Effect.repeat({ until: (r) => r.body.includes("tether_query_cache_hit_ratio"), schedule: Schedule.spaced("100 millis"), times: 100 })
          )
          expect(metrics.status).toBe(200)
          expect(metrics.type).toContain("text/plain; version=0.0.4")
          expect(metrics.body).toMatch(/tether_operation_duration_seconds_bucket\{set="app",endpoint="[^"]+",operation="query",outcome="success",le="0\.0001"\} \d+/)
          expect(metrics.body).toContain("# HELP tether_operation_duration_seconds ")
          expect(metrics.body).toContain("# TYPE tether_pool_acquire_time_seconds histogram")
          expect(metrics.body).not.toContain("_ms_bucket")
          const check = promtool(metrics.body)
          expect(check.output).toBe("")
          expect(check.status).toBe(0)
          // promtool itself is not a stub: a broken exposition fails.
          expect(promtool("# TYPE x counter\nx{a=\"1\"} 1\nx{a=\"1\"} 2\nbad line\n").status).not.toBe(0)

          // Health and status.
          expect((yield* get(`${admin.url}/health/live`)).status).toBe(200)
          // Ready once a probe has seen an endpoint answer (on a loaded machine a probe may time out first).
          const ready = yield* get(`${admin.url}/health/ready`).pipe(
            Effect.repeat({ until: (r) => r.status === 200, schedule: Schedule.spaced("100 millis"), times: 300 })
          )
          expect(ready.body).toBe(`{"status":"ready"}`)
          expect(ready.status).toBe(200)
          const status = yield* get(`${admin.url}/status`)
          const snapshot = Schema.decodeUnknownSync(Snapshot.Snapshot)(JSON.parse(status.body))
          const app = snapshot.sets.find((s) => s.name === "app")!
          expect(app.endpoints.map((e) => e.role).sort()).toEqual(["primary", "replica"])
          expect(app.cache!.hits).toBeGreaterThanOrEqual(1)
          for (const body of [metrics.body, status.body]) expect(body).not.toContain(token)

          // Without the token the mutating routes refuse; with it they work.
          const replica = app.endpoints.find((e) => e.role === "replica")!
          const drain = (auth: string | undefined) =>
            Effect.promise(() =>
              fetch(`${admin.url}/api/sets/app/endpoints/${encodeURIComponent(replica.id)}/drain`, {
                method: "POST",
                headers: auth === undefined ? {} : { authorization: auth }
              }).then((r) => r.status)
            )
          expect(yield* drain(undefined)).toBe(401)
          expect(yield* drain("Bearer wrong")).toBe(401)
          // A PgClient-watched set is steerable: drained, the replica stays listed as draining and
          // reads go to the primary; re-enabled, it takes work again.
          const draining = Effect.map(db.status, (st) => st.endpoints.filter((e) => e.draining).map((e) => e.id))
          expect(yield* drain(`Bearer ${token}`)).toBe(200)
          expect(yield* draining).toEqual([replica.id])
          const drained = Schema.decodeUnknownSync(Snapshot.Snapshot)(JSON.parse((yield* get(`${admin.url}/status`)).body))
          expect(drained.sets.find((s) => s.name === "app")!.endpoints.find((e) => e.id === replica.id)!.pool.draining).toBe(true)
          const requests = Effect.map(db.status, (st) => new Map(st.endpoints.map((e) => [e.role, e.requests])))
          const before = yield* requests
          for (let i = 0; i < 10; i++) yield* db.read`select 1`
          const after = yield* requests
          expect(after.get("replica")).toBe(before.get("replica"))
          expect(after.get("primary")! - before.get("primary")!).toBeGreaterThanOrEqual(10)
          const enable = yield* Effect.promise(() =>
            fetch(`${admin.url}/api/sets/app/endpoints/${encodeURIComponent(replica.id)}/enable`, {
              method: "POST",
              headers: { authorization: `Bearer ${token}` }
            }).then((r) => r.status)
          )
          expect(enable).toBe(200)
          expect(yield* draining).toEqual([])

          // A real Prometheus scrapes the admin server; its HTTP API returns a tether_ series.
          const prometheus = yield* PrometheusServer.make({ targets: [admin.url.replace("http://", "")], scrapeInterval: "1 second" })
          // One series per endpoint (the reads above went to the replica, then to the primary while it was drained).
          const total = (samples: ReadonlyArray<{ readonly value: readonly [number, string] }>) =>
            samples.reduce((n, sample) => n + Number(sample.value[1]), 0)
          const samples = yield* prometheus.query(`tether_operation_duration_seconds_count{set="app",outcome="success"}`).pipe(
            Effect.repeat({ until: (s) => total(s) >= 30, schedule: Schedule.spaced("250 millis"), times: 240 })
          )
          expect(samples.length).toBeGreaterThan(0)
          expect(total(samples)).toBeGreaterThanOrEqual(30)
          const targets = yield* prometheus.targets
          expect(targets.map((t) => t.health)).toEqual(["up"])
        }).pipe(
          Effect.scoped,
          Effect.provide(Observe.layer({ admin: { port: 0, token: Redacted.make(token) } }))
        )
      }).pipe(Effect.scoped))

    it.effect("/health/ready is 503 with reasons when a required set has no usable endpoint; mutating routes do not exist without a token", () =>
      Effect.gen(function*() {
        const cluster = yield* PostgresCluster.PostgresCluster
        yield* Effect.gen(function*() {
          const admin = yield* AdminServer.AdminServer
          const monitor = yield* Monitor.Monitor
          const dead = yield* PgClient.make({
            name: "nowhere",
            // A loopback port nobody listens on.
            endpoints: ["postgres://127.0.0.1:1/postgres"],
            user: "postgres",
            health: { interval: "100 millis", timeout: "200 millis" }
          })
          const db = yield* clientFor(cluster, "fine")
          yield* monitor.watch("nowhere", dead, { required: true })
          yield* monitor.watch("fine", db, { required: true })
          const ready = yield* get(`${admin.url}/health/ready`).pipe(
            Effect.repeat({ until: (r) => r.status === 503, schedule: Schedule.spaced("100 millis"), times: 100 })
          )
          expect(ready.status).toBe(503)
          const body = JSON.parse(ready.body) as { reasons: Array<string> }
          expect(body.reasons.length).toBe(1)
          expect(body.reasons[0]).toContain(`set "nowhere" has no usable endpoint`)
          const notFound = yield* Effect.promise(() =>
            fetch(`${admin.url}/api/sets/fine/endpoints/x/drain`, { method: "POST" }).then((r) => r.status)
          )
          expect(notFound).toBe(404)
        }).pipe(Effect.scoped, Effect.provide(Observe.layer({ admin: { port: 0 } })))
      }).pipe(Effect.scoped))
  })
})
