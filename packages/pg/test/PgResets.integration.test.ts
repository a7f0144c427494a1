/**
 * Connection resets under load. postgres.js can leave a statement that was in
 * flight when its socket was reset unsettled for ever, and reconnects a closed
 * session silently on the next statement. Through `PgClient`, with a query
 * timeout far longer than the test, every read must still settle (succeed, or
 * fail with a typed error), and once the resets stop every worker must finish.
 * `PgSql` gets the same storm over each of its paths (pipelined statements,
 * transactions, cursors, read-only sessions).
 */
import { expect, layer } from "@effect/vitest"
import { FaultProxy, PostgresCluster } from "@tether/testkit"
import { Clock, Effect, Fiber, Random, Stream } from "effect"
import * as Reactivity from "effect/reactivity/Reactivity"
import { PgClient, PgSql } from "../src/index.ts"

layer(PostgresCluster.layer({ replicas: 0 }), { excludeTestServices: true })("connection resets", (it) => {
  /** Options of a client through `proxy`, with no health probe or breaker in the way. */
  const through = (proxy: FaultProxy.Proxy) => ({
    endpoints: [{ url: `postgres://${proxy.host}:${proxy.port}/postgres`, role: "primary" as const }],
    user: "postgres",
    health: false as const,
    breaker: false as const,
    // Far beyond the test's own timeout: a statement left hanging would hang the test.
    queryTimeout: "1 hour" as const,
    connectTimeout: "10 seconds" as const
  })

  /** 24 workers read under resets for 8 s, then until 50 more reads succeeded; returns the tally. */
  const storm = <E extends { readonly _tag: string }>(
    proxy: FaultProxy.Proxy,
    read: (n: number) => Effect.Effect<ReadonlyArray<{ readonly n: number }>, E>
  ) =>
    Effect.gen(function*() {
      const tally = { ok: 0, okAfter: 0, failed: new Map<string, number>() }
      let storming = true
      const start = yield* Clock.currentTimeMillis
      const worker = (n: number) =>
        Effect.gen(function*() {
          while (storming || tally.okAfter < 50) {
            const style = yield* Random.nextIntBetween(0, 10)
            if (style === 0) {
              // Interrupted at a random point, its session in any state.
              const fiber = yield* Effect.forkChild(read(n))
              yield* Effect.sleep(yield* Random.nextIntBetween(0, 3))
              yield* Fiber.interrupt(fiber)
              continue
            }
            const result = yield* Effect.result(style === 1 ? Effect.timeout(read(n), yield* Random.nextIntBetween(1, 5)) : read(n))
            if (result._tag === "Success") {
              expect(result.success[0]!.n).toBe(n)
              tally.ok++
              if (!storming) tally.okAfter++
            } else {
              const tag = result.failure._tag
              tally.failed.set(tag, (tally.failed.get(tag) ?? 0) + 1)
            }
            yield* Effect.sleep(yield* Random.nextIntBetween(0, 5))
          }
        })
      let resets = 0
      yield* Effect.all([
        Effect.forEach(Array.from({ length: 24 }, (_, n) => n), worker, { concurrency: "unbounded", discard: true }),
        Effect.gen(function*() {
          while ((yield* Clock.currentTimeMillis) < start + 8_000) {
            yield* Effect.sleep(yield* Random.nextIntBetween(50, 150))
            resets += yield* proxy.resetAll
          }
          storming = false
        })
      ], { concurrency: "unbounded", discard: true })
      const summary = JSON.stringify({ ...tally, failed: Object.fromEntries(tally.failed), resets })
      expect(resets, summary).toBeGreaterThan(20)
      expect(tally.okAfter, summary).toBeGreaterThanOrEqual(50)
      return { tally, summary }
    })

  it.effect("PgClient: resetAll every 50-150 ms for 8 s under 24 readers, random interruptions and timeouts: no statement hangs, every failure is typed, the pool recovers", () =>
    Effect.gen(function*() {
      const cluster = yield* PostgresCluster.PostgresCluster
      const proxy = yield* FaultProxy.make({ target: cluster.primary })
      const db = yield* PgClient.make({ ...through(proxy), pool: { max: 8, acquireTimeout: "1 hour" } })
      const { summary, tally } = yield* storm(proxy, (n) => db.read<{ n: number }>`select ${n}::int as n`)
      for (const tag of tally.failed.keys()) expect(["PgConnectionError", "TimeoutError"], summary).toContain(tag)
      expect((yield* db.status).endpoints[0]!.pool.inUse, summary).toBe(0)
    }).pipe(Effect.scoped), 120_000)

  it.effect("PgSql: the same storm over pipelined statements, transactions, cursors and read-only sessions — no statement hangs, every failure is typed, the pool recovers", () =>
    Effect.gen(function*() {
      const cluster = yield* PostgresCluster.PostgresCluster
      const proxy = yield* FaultProxy.make({ target: cluster.primary })
      const sql = yield* PgSql.make({
        ...through(proxy),
        pool: { max: 4, acquireTimeout: "1 hour" },
        exclusivePool: { max: 6, acquireTimeout: "1 hour" },
        readPool: { max: 2, acquireTimeout: "1 hour" }
      })
      const select = (n: number) => sql<{ n: number }>`select ${n}::int as n`
      const { summary, tally } = yield* storm(proxy, (n) => {
        switch (n % 4) {
          case 0:
            return select(n)
          case 1:
            return sql.withTransaction(select(n))
          case 2:
            return Stream.runCollect(select(n).stream)
          default:
            return PgSql.readReplica(select(n))
        }
      })
      for (const tag of tally.failed.keys()) expect(["SqlError", "TimeoutError"], summary).toContain(tag)
    }).pipe(Effect.scoped, Effect.provide(Reactivity.layer)), 120_000)
})
