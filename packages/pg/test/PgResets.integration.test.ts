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
import { Clock, Effect, Exit, Random, Stream } from "effect"
import * as Reactivity from "effect/reactivity/Reactivity"
import { PgClient, PgSql } from "../src/index.ts"
import { chaoticCall, count, failureOf, type Storm, urlOf, withResets } from "./support.ts"

layer(PostgresCluster.layer({ replicas: 0 }), { excludeTestServices: true })("connection resets", (it) => {
  /** Options of a client through `proxy`, with no health probe or breaker in the way. */
  const through = (proxy: FaultProxy.Proxy) => ({
    endpoints: [{ url: urlOf(proxy), role: "primary" as const }],
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
      const start = yield* Clock.currentTimeMillis
      const worker = (storm: Storm, n: number) =>
        Effect.gen(function*() {
          while (storm.storming || tally.okAfter < 50) {
            const result = yield* chaoticCall(read(n), 3)
            if (result === undefined) continue
            if (Exit.isSuccess(result)) {
              expect(result.value[0]!.n).toBe(n)
              tally.ok++
              if (!storm.storming) tally.okAfter++
            } else {
              count(tally.failed, failureOf(result))
            }
            yield* Effect.sleep(yield* Random.nextIntBetween(0, 5))
          }
        })
      const { resets } = yield* withResets(
        proxy,
        { every: [50, 150], keepResetting: () => Effect.map(Clock.currentTimeMillis, (now) => now < start + 8_000) },
        (storm) => Effect.forEach(Array.from({ length: 24 }, (_, n) => n), (n) => worker(storm, n), { concurrency: "unbounded", discard: true })
      )
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
