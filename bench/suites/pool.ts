/**
 * Suite "pool": acquire+release throughput and p50/p99 acquire latency of
 * our ConnectionPool against bare `Pool.makeWithTTL`, generic-pool and tarn,
 * with 10 resources and 1, 100 and 1,000 concurrent borrowers.
 */
import type { Measurement, Suite } from "../harness/types.ts"
import { type Case, caseName, runAll } from "../pool/run.ts"
import { barePool, connectionPool, genericPoolImpl, tarnImpl } from "../pool/workload.ts"

const SIZE = 10
const BORROWERS = [1, 100, 1000] as const
/** "none" is the workload; "microtask" makes every borrower yield while holding, as real ones do. */
const HOLDS = ["none", "microtask"] as const

export const poolSuite: Suite = {
  name: "pool",
  description: "ConnectionPool vs Pool.makeWithTTL, generic-pool, tarn: 10 items, 1/100/1000 borrowers",
  run: async ({ quick, log }) => {
    const ours = connectionPool
    const peers = [barePool, genericPoolImpl, tarnImpl]
    const rounds = quick ? 2 : 5
    const warmupMs = quick ? 100 : 200
    const measureMs = quick ? 300 : 1000
    const results = await runAll([ours, ...peers], {
      size: SIZE,
      borrowers: BORROWERS,
      holds: HOLDS,
      rounds,
      warmupMs,
      measureMs,
      log
    })
    const measurements: Array<Measurement> = []
    const cases = HOLDS.flatMap((hold) => BORROWERS.map((borrowers): Case => ({ borrowers, hold })))
    for (const c of cases) {
      const name = caseName(SIZE, c)
      const at = (impl: string) => results.get(impl)!.get(name)!
      const metric = (metric: string, unit: string, higherIsBetter: boolean, pick: (r: ReturnType<typeof at>) => number) =>
        measurements.push({
          case: name,
          metric,
          unit,
          higherIsBetter,
          tether: pick(at(ours.name)),
          peers: Object.fromEntries(peers.map((peer) => [peer.name, pick(at(peer.name))]))
        })
      metric("throughput", "ops/s", true, (r) => r.opsPerSecond)
      metric("acquire p50", "µs", false, (r) => r.p50Micros)
      metric("acquire p99", "µs", false, (r) => r.p99Micros)
    }
    const failures: Array<string> = []
    for (const [impl, byCase] of results) {
      for (const [name, r] of byCase) {
        if (r.errors.length > 0) failures.push(`FAILED ${impl}, ${name}: ${r.errors.length} trial(s): ${[...new Set(r.errors)].join("; ")}`)
      }
    }
    return {
      tetherLabel: ours.name,
      peers: peers.map((peer) => peer.name),
      measurements,
      notes: [
        `${rounds} interleaved rounds per case; each trial: fresh pool of ${SIZE}, ${warmupMs} ms warm-up, ` +
          `${measureMs} ms measured; median over rounds.`,
        "One op = acquire + release, holding for nothing or for one microtask; latency = ask → hold, for every " +
          "acquire in progress during the window (so starved borrowers count).",
        "Ratio columns: ours relative to the peer, > 1 = ours better (throughput ours/peer, latency peer/ours).",
        ...failures
      ]
    }
  }
}
