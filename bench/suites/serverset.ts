/**
 * The `serverset` suite.
 *
 * 1. Routing + breaker overhead: `set.as().use` (balancer pick, circuit
 *    breaker, failover wrapper, one pool per endpoint) against a bare
 *    `ConnectionPool.use` on the same real PostgreSQL server, each running
 *    `select 1` on 4 connections from 16 fibers.
 * 2. Breaker overhead: our `CircuitBreaker.protect` around an async no-op,
 *    against cockatiel's and opossum's breakers around the same no-op.
 * 3. Failover: a 3-node PostgreSQL cluster under load with a 250 ms probe
 *    interval; one replica is killed; the time from the kill to the last
 *    request routed to it.
 */
import { CircuitBreaker, ConnectionPool, Fault, ServerSet } from "@tether/core"
import type { Driver } from "@tether/core"
import { PostgresCluster } from "@tether/testkit"
import { circuitBreaker as cockatielBreaker, ConsecutiveBreaker, handleAll } from "cockatiel"
import { Data, Effect, Fiber } from "effect"
import OpossumBreaker from "opossum"
import postgres from "postgres"
import { effectLoop, promiseLoop, runScoped } from "../harness/loops.ts"
import * as requirements from "../harness/requirements.ts"
import type { Measurement, Suite } from "../harness/types.ts"

class PgError extends Data.TaggedError("PgError")<{ readonly cause: unknown }> {}
const attempt = <A>(f: () => Promise<A>) => Effect.tryPromise({ try: f, catch: (cause) => new PgError({ cause }) })

const connect = (url: string) =>
  Effect.acquireRelease(
    Effect.sync(() => postgres(url, { username: "postgres", max: 1, idle_timeout: 0, connect_timeout: 2, onnotice: () => undefined, fetch_types: false })),
    (sql) => Effect.promise(() => sql.end({ timeout: 0 }).catch(() => undefined))
  ).pipe(Effect.tap((sql) => attempt(() => sql`select 1`)))

const driver: Driver.Driver<postgres.Sql, PgError> = {
  connect: (endpoint) => connect(endpoint.url),
  probe: (endpoint) => Effect.scoped(Effect.flatMap(connect(endpoint.url), (sql) => Effect.asVoid(attempt(() => sql`select 1`)))),
  classify: () => Fault.make("connection", { mayHaveReachedServer: false })
}

const urlOf = (node: PostgresCluster.Node) => `postgres://${node.host}:${node.port}/postgres`

export const serversetSuite: Suite = {
  name: "serverset",
  description: "ServerSet routing + breaker overhead, breaker vs cockatiel/opossum, failover time on a real PostgreSQL cluster",
  requires: [requirements.postgres],
  run: async ({ quick, log }) => {
    const measurements: Array<Measurement> = []

    const program = Effect.gen(function*() {
      log("serverset: starting a PostgreSQL primary + 2 replicas")
      const cluster = yield* PostgresCluster.make({ replicas: 2 })

      // 1. Routing + breaker overhead on one server.
      const pool = yield* ConnectionPool.make({ name: "bare", acquire: connect(urlOf(cluster.primary)), min: 4, max: 4 })
      const set = yield* ServerSet.make({
        name: "bench",
        endpoints: [urlOf(cluster.primary)],
        driver,
        pool: { min: 4, max: 4 },
        health: false
      })
      const viaPool = pool.use((sql) => attempt(() => sql`select 1`))
      const viaSet = set.as().use((sql) => attempt(() => sql`select 1`), { idempotent: true })
      yield* effectLoop(() => viaPool, 16, 300)
      yield* effectLoop(() => viaSet, 16, 300)
      // Short windows, back to back, in alternating order; medians over rounds (a slow stretch of the
      // shared machine then hits both alike), as for the breaker below.
      const rounds = quick ? 6 : 12
      const routingWindow = quick ? 300 : 500
      const bareRuns: Array<number> = []
      const routedRuns: Array<number> = []
      for (let i = 0; i < rounds; i++) {
        const runBare = Effect.map(effectLoop(() => viaPool, 16, routingWindow), (r) => bareRuns.push(r.opsPerSecond))
        const runRouted = Effect.map(effectLoop(() => viaSet, 16, routingWindow), (r) => routedRuns.push(r.opsPerSecond))
        yield* (i % 2 === 0 ? Effect.andThen(runBare, runRouted) : Effect.andThen(runRouted, runBare))
      }
      const middle = (xs: Array<number>) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!
      const bare = middle(bareRuns)
      const routed = middle(routedRuns)
      measurements.push({
        case: "select 1, 4 connections, 16 fibers",
        metric: "throughput",
        unit: "ops/s",
        higherIsBetter: true,
        tether: routed,
        peers: { "bare ConnectionPool": bare }
      })
      log(`serverset: ServerSet ${Math.round(routed)} ops/s, bare pool ${Math.round(bare)} ops/s`)

      // 2. Breaker overhead around an async no-op. One machine, shared with
      // other work: the four run in short windows, back to back, in a rotating
      // order, and each reports its median over rounds (one slow stretch of the
      // machine then hits every implementation alike instead of one of them).
      const breaker = yield* CircuitBreaker.make({ endpoint: "bench" })
      const noop = () => Promise.resolve(1)
      const cockatiel = cockatielBreaker(handleAll, { halfOpenAfter: 10_000, breaker: new ConsecutiveBreaker(5) })
      const opossum = new OpossumBreaker(noop, { timeout: false, errorThresholdPercentage: 50, resetTimeout: 10_000 })
      const breakerWindow = quick ? 150 : 300
      const breakerRounds = quick ? 7 : 15
      const contenders: ReadonlyArray<readonly [string, () => Effect.Effect<number, CircuitBreaker.BreakerOpen>]> = [
        ["ours", () => Effect.map(effectLoop(() => breaker.protect(Effect.promise(noop)), 1, breakerWindow), (r) => r.opsPerSecond)],
        ["Effect.promise alone", () => Effect.map(effectLoop(() => Effect.promise(noop), 1, breakerWindow), (r) => r.opsPerSecond)],
        ["cockatiel", () => Effect.promise(() => promiseLoop(() => cockatiel.execute(noop), 1, breakerWindow).then((r) => r.opsPerSecond))],
        ["opossum", () => Effect.promise(() => promiseLoop(() => opossum.fire(), 1, breakerWindow).then((r) => r.opsPerSecond))]
      ]
      for (const [, run] of contenders) yield* run() // warm-up, unrecorded
      const samples = new Map<string, Array<number>>(contenders.map(([name]) => [name, []]))
      for (let round = 0; round < breakerRounds; round++) {
        for (let i = 0; i < contenders.length; i++) {
          const [name, run] = contenders[(i + round) % contenders.length]!
          samples.get(name)!.push(yield* run())
        }
      }
      opossum.shutdown()
      const medianOf = (name: string) => {
        const sorted = [...samples.get(name)!].sort((a, b) => a - b)
        return sorted[Math.floor(sorted.length / 2)]!
      }
      measurements.push({
        case: "breaker around an async no-op",
        metric: "throughput",
        unit: "ops/s",
        higherIsBetter: true,
        tether: medianOf("ours"),
        peers: { cockatiel: medianOf("cockatiel"), opossum: medianOf("opossum"), "Effect.promise alone": medianOf("Effect.promise alone") }
      })
      log(`serverset: breaker ${Math.round(medianOf("ours"))} ops/s, Effect.promise alone ${Math.round(medianOf("Effect.promise alone"))}, ` +
        `opossum ${Math.round(medianOf("opossum"))}, cockatiel ${Math.round(medianOf("cockatiel"))}`)

      // 3. Failover: kill a replica under load; when did the last request go to it?
      const failover = yield* ServerSet.make({
        name: "failover",
        endpoints: cluster.nodes.map(urlOf),
        driver,
        strategy: "round-robin",
        pool: { min: 1, max: 4 },
        health: { interval: "250 millis", timeout: "250 millis" }
      })
      const victim = cluster.replicas[1]!
      const victimId = urlOf(victim)
      let running = true
      let lastRoutedAt = 0
      const worker = Effect.gen(function*() {
        while (running) {
          yield* Effect.exit(failover.as().use((sql, endpoint) => {
            if (endpoint.id === victimId) lastRoutedAt = performance.now()
            return attempt(() => sql`select 1`)
          }, { idempotent: true }))
          yield* Effect.sleep("1 millis")
        }
      })
      const workers = yield* Effect.forkChild(Effect.forEach(Array.from({ length: 8 }), () => worker, { concurrency: "unbounded", discard: true }))
      yield* Effect.sleep("500 millis")
      const killedAt = performance.now()
      yield* cluster.kill(victim)
      yield* Effect.sleep("2 seconds")
      running = false
      yield* Fiber.await(workers)
      const routedAfterKill = Math.max(0, lastRoutedAt - killedAt)
      measurements.push({
        case: "kill 1 of 3 endpoints, 250 ms probes",
        metric: "kill → last request routed to it",
        unit: "ms",
        higherIsBetter: false,
        tether: routedAfterKill,
        peers: { "target (1 s)": 1_000, "seed (5 s)": 5_000 }
      })
      log(`serverset: last request routed to the killed endpoint ${routedAfterKill.toFixed(1)} ms after the kill`)
    })

    await runScoped(program)
    return {
      tetherLabel: "Tether",
      peers: ["bare ConnectionPool", "cockatiel", "opossum", "Effect.promise alone", "target (1 s)", "seed (5 s)"],
      measurements,
      notes: [
        "Routing overhead: same server, same connections and concurrency; windows alternating, medians over rounds (6 quick, 12 full); ratio ServerSet/bare pool (target ≥ 0.9, i.e. under 10% overhead).",
        "Breaker: one caller in a loop around Promise.resolve(); closed state throughout; short windows of the four in a rotating order, median over rounds (7 quick, 15 full).",
        "Failover: the first failed request marks the endpoint unhealthy at once; probes confirm it."
      ]
    }
  }
}
