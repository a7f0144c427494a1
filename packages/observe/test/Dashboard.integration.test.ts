import { describe, expect, layer } from "@effect/vitest"
import { PgClient } from "@tether/pg"
import { PostgresCluster } from "@tether/testkit"
import { Effect, Schedule } from "effect"
import * as fs from "node:fs"
import * as path from "node:path"
import { chromium } from "playwright-core"
import { AdminServer, Monitor, Observe } from "../src/index.ts"

/** Screenshots land here (git-ignored). */
const artifacts = path.join(import.meta.dirname, "..", "test-artifacts")

const urlOf = (node: PostgresCluster.Node) => `postgres://${node.host}:${node.port}/postgres`

const browser = Effect.acquireRelease(
  Effect.promise(() =>
    chromium.launch({ executablePath: process.env.CHROMIUM_PATH ?? "/usr/bin/chromium", args: ["--no-sandbox"] })
  ),
  (b) => Effect.promise(() => b.close())
)

layer(PostgresCluster.layer({ replicas: 1 }), { excludeTestServices: true })("the dashboard in headless Chromium", (it) => {
  describe("live endpoint state", () => {
    it.effect("loads with no console error, shows every endpoint, turns a killed server red within 2 s and green when it returns", () =>
      Effect.gen(function*() {
        const cluster = yield* PostgresCluster.PostgresCluster
        const replica = cluster.replicas[0]!
        yield* Effect.gen(function*() {
          const admin = yield* AdminServer.AdminServer
          const monitor = yield* Monitor.Monitor
          const db = yield* PgClient.make({
            name: "orders",
            endpoints: cluster.nodes.map((node) => ({ url: urlOf(node), role: node.role })),
            user: "postgres",
            health: { interval: "200 millis", timeout: "500 millis" },
            queryTimeout: "2 seconds"
          })
          yield* monitor.watch("orders", db)
          // Some traffic for the sparklines.
          yield* Effect.forEach(Array.from({ length: 50 }, (_, i) => i), (i) => db.read`select ${i}::int`, {
            concurrency: 4,
            discard: true
          })

          const chrome = yield* browser
          const page = yield* Effect.promise(() => chrome.newPage({ viewport: { width: 1366, height: 800 } }))
          const problems: Array<string> = []
          page.on("console", (m) => {
            if (m.type() === "error") problems.push(m.text())
          })
          page.on("pageerror", (e) => problems.push(e.message))
          page.on("requestfailed", (r) => {
            // The event stream is closed on purpose when the page goes away.
            if (!r.url().endsWith("/events")) problems.push(`request failed: ${r.url()}`)
          })
          // Nothing but the admin server may be contacted (no CDN).
          const foreign: Array<string> = []
          page.on("request", (r) => {
            if (!r.url().startsWith(admin.url) && !r.url().startsWith("data:")) foreign.push(r.url())
          })

          yield* Effect.promise(() => page.goto(admin.url))
          const card = (node: PostgresCluster.Node, state: string) =>
            `.ep[data-endpoint="orders/${urlOf(node)}"][data-state="${state}"]`
          // Every endpoint, green.
          for (const node of cluster.nodes) {
            yield* Effect.promise(() => page.waitForSelector(card(node, "ok"), { timeout: 30_000 }))
          }
          expect(yield* Effect.promise(() => page.locator(".ep").count())).toBe(cluster.nodes.length)
          const text = yield* Effect.promise(() => page.locator("main").innerText())
          expect(text).toContain("primary")
          expect(text).toContain("replica")
          expect(text).toContain("ops/s")
          yield* Effect.promise(() => page.locator(".ep svg.spark path").first().waitFor({ state: "attached" }))

          // Kill the replica: its card turns red within 2 s (the bound, as a polling wait).
          yield* cluster.kill(replica)
          yield* Effect.promise(() => page.waitForSelector(card(replica, "down"), { timeout: 2_000 }))
          fs.mkdirSync(artifacts, { recursive: true })
          yield* Effect.promise(() => page.screenshot({ path: path.join(artifacts, "dashboard-replica-down.png"), fullPage: true }))
          // The primary stays green.
          expect(yield* Effect.promise(() => page.locator(card(cluster.primary, "ok")).count())).toBe(1)

          // Back: green again.
          yield* cluster.restart(replica)
          yield* Effect.promise(() => page.waitForSelector(card(replica, "ok"), { timeout: 60_000 }))
          // Traffic after recovery shows up too.
          yield* db.read`select 1`.pipe(Effect.retry({ schedule: Schedule.spaced("100 millis"), times: 50 }))
          yield* Effect.promise(() => page.screenshot({ path: path.join(artifacts, "dashboard.png"), fullPage: true }))
          expect(fs.statSync(path.join(artifacts, "dashboard.png")).size).toBeGreaterThan(10_000)

          expect(problems).toEqual([])
          expect(foreign).toEqual([])
          yield* Effect.promise(() => page.close())
        }).pipe(
          Effect.scoped,
          Effect.provide(Observe.layer({ admin: { port: 0 }, monitor: { sampleInterval: "250 millis" } }))
        )
      }).pipe(Effect.scoped))
  })
})
