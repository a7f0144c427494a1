/**
 * Errors of the caller's own making, against a real server: a parameter
 * that cannot be sent is a `PgUsageError` — not retried, not counted by a
 * breaker, the connection kept — and a wrong port fails with the refused
 * connection named in the error and one WARN line.
 */
import { describe, expect, it, layer } from "@effect/vitest"
import { PostgresCluster } from "@tether/testkit"
import { Effect, Fiber, Logger, References, Ref } from "effect"
import * as net from "node:net"
import { PgClient } from "../src/index.ts"

const urlOf = (node: PostgresCluster.Node) => `postgres://${node.host}:${node.port}/postgres`

/** Log lines (level and message) written while `effect` runs, down to DEBUG; `byFiber` gets each line's fiber id. */
const capture = <A, E, R>(lines: Array<string>, effect: Effect.Effect<A, E, R>, byFiber?: Array<number>) =>
  effect.pipe(
    Effect.provide(Logger.layer([Logger.make((options) => {
      lines.push(`${options.logLevel} ${String(options.message)}`)
      byFiber?.push(options.fiber.id)
    })])),
    Effect.provideService(References.MinimumLogLevel, "Debug")
  )

layer(PostgresCluster.layer({ replicas: 0 }), { excludeTestServices: true })("PostgreSQL usage errors", (it) => {
  it.effect("are PgUsageError: no retry, breakers stay closed, the connection is kept, bystanders unaffected", () =>
    Effect.gen(function*() {
      const cluster = yield* PostgresCluster.PostgresCluster
      const url = urlOf(cluster.primary)
      const lines: Array<string> = []
      const fibers: Array<number> = []
      const self = yield* Effect.withFiber((fiber) => Effect.succeed(fiber.id))
      yield* capture(
        lines,
        Effect.gen(function*() {
          // Two endpoints (the same server under two ids), each with its breaker.
          const db = yield* PgClient.make({
            endpoints: [{ url, id: "a", role: "primary" }, { url, id: "b", role: "primary" }],
            user: "postgres",
            pool: { max: 1 },
            breaker: { consecutiveFailures: 3 }
          })
          yield* db.write`select 1`

          // A bystander load for the whole time the bad calls run.
          const stop = yield* Ref.make(false)
          const outcome = yield* Ref.make({ ok: 0, failed: 0 })
          const bystander = yield* Effect.gen(function*() {
            while (!(yield* Ref.get(stop))) {
              const exit = yield* Effect.exit(db.write`select 1`)
              yield* Ref.update(outcome, (o) => exit._tag === "Success" ? { ...o, ok: o.ok + 1 } : { ...o, failed: o.failed + 1 })
            }
          }).pipe(Effect.forkChild)

          const circular: Record<string, unknown> = {}
          circular["self"] = circular
          const bad = [
            db.write`select ${undefined as unknown as number}::int`,
            db.write`select ${Symbol("s") as unknown as string}::text`,
            db.write`select ${circular as unknown as string}::jsonb`,
            db.unsafe("select 1", Array.from({ length: 70_000 }, () => 1), { mode: "write" })
          ]
          const tags: Array<string> = []
          const first = lines.length
          for (let round = 0; round < 3; round++) {
            for (const call of bad) {
              const error = yield* Effect.flip(call)
              tags.push(error._tag)
            }
          }
          const last = lines.length
          yield* Ref.set(stop, true)
          yield* Fiber.join(bystander)

          expect(tags).toEqual(Array.from({ length: 12 }, () => "PgUsageError"))
          const status = yield* db.status
          for (const endpoint of status.endpoints) expect(endpoint.breaker?.status).toBe("closed")
          const bystanders = yield* Ref.get(outcome)
          expect(bystanders.failed).toBe(0)
          expect(bystanders.ok).toBeGreaterThan(0)
          // Never retried: no "attempt failed on <endpoint>; retrying" and no "giving up" from the bad calls
          // (a wait for a write endpoint while the probes settle, "(no endpoint)", is not a retry of the error).
          const chatter = lines.slice(first, last).filter((l, i) => fibers[first + i] === self && /failed on |giving up/.test(l))
          expect(chatter).toEqual([])
          // No connection was closed: the usage errors left every session in the pool.
          const pools = (yield* db.status).endpoints.map((e) => e.pool)
          for (const pool of pools) {
            expect(pool.destroyed).toBe(0)
            expect(pool.validationFailures).toBe(0)
          }
          expect(pools.reduce((n, p) => n + p.created, 0)).toBeGreaterThan(0)
        }).pipe(Effect.scoped),
        fibers
      )
    }))
})

/** A local port nothing listens on (it was just released). */
const closedPort = Effect.promise(() =>
  new Promise<number>((resolve, reject) => {
    const server = net.createServer()
    server.once("error", reject)
    server.listen(0, "127.0.0.1", () => {
      const port = (server.address() as net.AddressInfo).port
      server.close(() => resolve(port))
    })
  })
)

describe("a wrong port", () => {
  it.live("fails with the refused connection in the error and one WARN line", () =>
    Effect.gen(function*() {
      const port = yield* closedPort
      const lines: Array<string> = []
      yield* capture(
        lines,
        Effect.gen(function*() {
          const db = yield* PgClient.make({
            endpoints: [`postgres://127.0.0.1:${port}/postgres`],
            user: "postgres",
            ssl: "disable",
            connectTimeout: "1 second"
          })
          lines.length = 0
          const error = yield* Effect.flip(db.read`select 1`)
          expect(error._tag).toBe("NoEndpointAvailable")
          expect(error.message).toMatch(/ECONNREFUSED|refused/)
          const warnings = lines.filter((l) => l.startsWith("Warn"))
          expect(warnings, lines.join("\n")).toHaveLength(1)
          expect(lines.filter((l) => l.includes("slow statement"))).toEqual([])
        }).pipe(Effect.scoped)
      )
    }), 60_000)
})
