/**
 * The `promise` suite: the Promise API (`@tether/promise`) against the Effect
 * client it wraps (`@tether/pg`), on the same PostgreSQL server and the same
 * pool settings (8 connections), `select 1` at concurrency 1 and 16. It
 * measures what the Promise layer adds per call: a `ManagedRuntime` run, the
 * exit-to-rejection mapping, and the `await` (goal ≥ 0.9x).
 */
import { createPgClient } from "@tether/promise"
import { PgClient } from "@tether/pg"
import { PostgresCluster } from "@tether/testkit"
import { Effect } from "effect"
import { effectLoop, promiseLoop, runScoped } from "../harness/loops.ts"
import * as requirements from "../harness/requirements.ts"
import type { Measurement, Suite } from "../harness/types.ts"

const CONNECTIONS = 8
const measured = { warmupMillis: 500, latencies: true }

export const promiseSuite: Suite = {
  name: "promise",
  description: "@tether/promise vs the Effect PgClient it wraps: select 1 (8 connections)",
  requires: [requirements.postgres],
  run: async ({ quick, log }) => {
    const millis = quick ? 1_000 : 3_000
    const rounds = quick ? 2 : 3
    const measurements: Array<Measurement> = []

    const program = Effect.gen(function*() {
      log("promise: starting PostgreSQL")
      const cluster = yield* PostgresCluster.make({ replicas: 0 })
      const node = cluster.primary
      const options = {
        endpoints: [`postgres://${node.host}:${node.port}/postgres`],
        user: "postgres",
        readFrom: "any" as const,
        health: false as const,
        pool: { min: CONNECTIONS, max: CONNECTIONS },
        slowQueryThreshold: "1 minute" as const
      }
      const effectClient = yield* PgClient.make(options)
      const promiseClient = yield* Effect.acquireRelease(
        Effect.promise(() => createPgClient(options)),
        (client) => Effect.promise(() => client.close())
      )
      for (const concurrency of [1, 16]) {
        // Alternate the two, best round of each: the machine is shared and noisy.
        let ours = { opsPerSecond: 0, p99Micros: Number.POSITIVE_INFINITY }
        let theirs = { opsPerSecond: 0, p99Micros: Number.POSITIVE_INFINITY }
        for (let round = 0; round < rounds; round++) {
          const e = yield* effectLoop(() => effectClient.read`select 1`, concurrency, millis, measured)
          const p = yield* Effect.promise(() => promiseLoop(() => promiseClient.read`select 1`, concurrency, millis, measured))
          if (e.opsPerSecond > theirs.opsPerSecond) theirs = e
          if (p.opsPerSecond > ours.opsPerSecond) ours = p
        }
        const label = `select 1, concurrency ${concurrency}`
        measurements.push(
          { case: label, metric: "throughput", unit: "ops/s", higherIsBetter: true, tether: ours.opsPerSecond, peers: { "Effect PgClient": theirs.opsPerSecond } },
          { case: label, metric: "p99 latency", unit: "µs", higherIsBetter: false, tether: ours.p99Micros, peers: { "Effect PgClient": theirs.p99Micros } }
        )
        log(`promise: ${label}: Promise API ${Math.round(ours.opsPerSecond)}, Effect client ${Math.round(theirs.opsPerSecond)} ops/s (${(ours.opsPerSecond / theirs.opsPerSecond).toFixed(2)}x)`)
      }
    })

    await runScoped(program)
    return {
      tetherLabel: "Promise API",
      peers: ["Effect PgClient"],
      measurements,
      notes: [
        `One PostgreSQL 15 server on loopback; both clients hold ${CONNECTIONS} connections with the same options. Best of ${rounds} alternating rounds each.`,
        "Target: the Promise API ≥ 0.9x of the Effect client."
      ]
    }
  }
}
