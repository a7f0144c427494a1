/**
 * Runs one pool implementation at one concurrency for a while, for profiling:
 *
 *   node --import tsx --cpu-prof --cpu-prof-dir=.cpuprofile bench/profile/pool.ts --impl ConnectionPool --borrowers 100
 *   npx tsx bench/profile/pool.ts --impl Pool.makeWithTTL --borrowers 100 --hold microtask --seconds 3
 *
 * --impl is one of the names printed by `--list` (the pool suite's
 * implementations). Prints throughput and latency.
 */
import { useTscTransform } from "../harness/transpile.ts"
import type { Hold } from "../pool/workload.ts"

const transform = useTscTransform()
const { Window } = await import("../harness/measure.ts")
const { implementations } = await import("../pool/workload.ts")

const args = process.argv.slice(2)
const { flag } = await import("../harness/profile.ts")

if (args.includes("--list")) {
  for (const impl of implementations) console.log(impl.name)
  process.exit(0)
}

const implName = flag("impl", "ConnectionPool")
const borrowers = Number(flag("borrowers", "100"))
const hold = flag("hold", "none") as Hold
const seconds = Number(flag("seconds", "3"))
const size = Number(flag("size", "10"))
const impl = implementations.find((i) => i.name === implName)
if (impl === undefined) {
  console.error(`unknown --impl ${implName}; one of: ${implementations.map((i) => i.name).join(", ")}`)
  process.exit(2)
}

const prepared = await impl.prepare(size)
const window = new Window(300, seconds * 1000)
await prepared.run(borrowers, window, hold)
const s = window.summary()
await prepared.close()
console.log(
  `${impl.name} [${transform}]: ${size} items, ${borrowers} borrowers, hold ${hold}: ${(s.opsPerSecond / 1e6).toFixed(3)}M ops/s, ` +
    `p50 ${s.p50Micros.toFixed(2)} µs, p99 ${s.p99Micros.toFixed(2)} µs`
)
process.exit(0)
