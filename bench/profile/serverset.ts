/**
 * `set.as().use` (balancer pick, breaker, failover wrapper, identity pool)
 * against a bare `ConnectionPool.use`, both around an async no-op on
 * in-memory connections: what routing costs per call, with no server in the
 * way. For profiling and for comparing variants on a busy machine:
 *
 *   npx tsx --conditions=@tether/source bench/profile/serverset.ts --rounds 20 --millis 200
 *   node --conditions=@tether/source --import tsx --cpu-prof --cpu-prof-dir=/tmp/prof bench/profile/serverset.ts --only serverset
 *   npx tsx bench/profile/summarize.ts /tmp/prof/*.cpuprofile --top 30
 *
 * --fibers N (default 16), --connections N (default 4). Windows of each
 * implementation back to back in a rotating order; medians over rounds.
 */
import type { Effect as EffectType } from "effect"
import { useTscTransform } from "../harness/transpile.ts"

useTscTransform()
const { Effect } = await import("effect")
const { ConnectionPool, Fault, ServerSet } = await import("@tether/core")
const { effectLoop, runScoped } = await import("../harness/loops.ts")

const { flag, median, rotatingRounds } = await import("../harness/profile.ts")
const rounds = Number(flag("rounds", "20"))
const millis = Number(flag("millis", "200"))
const fibers = Number(flag("fibers", "16"))
const connections = Number(flag("connections", "4"))
const only = flag("only", "")

const noop = () => Promise.resolve(1)
const program = Effect.gen(function*() {
  let opened = 0
  const acquire = Effect.sync(() => ({ id: opened++ }))
  const pool = yield* ConnectionPool.make({ name: "bare", acquire, min: connections, max: connections })
  const set = yield* ServerSet.make({
    name: "bench",
    endpoints: ["mem://one"],
    driver: { connect: () => acquire, classify: () => Fault.make("connection", { mayHaveReachedServer: false }) },
    pool: { min: connections, max: connections },
    health: false
  })
  const impls: Array<[string, () => EffectType.Effect<{ opsPerSecond: number }, unknown>]> = [
    ["bare pool", () => effectLoop(() => pool.use(() => Effect.promise(noop)), fibers, millis)],
    ["serverset", () => effectLoop(() => set.as().use(() => Effect.promise(noop), { idempotent: true }), fibers, millis)]
  ]
  const selected = only === "" ? impls : impls.filter(([name]) => name === only)
  for (const [, run] of selected) yield* run()
  const { cpu, ops, ratios } = yield* rotatingRounds(selected, { rounds, millis, baseline: "bare pool", cpuScale: 1000 })
  console.log(`${rounds} rounds of ${millis} ms, ${fibers} fibers, ${connections} connections`)
  console.log("implementation      ops/s   CPU ns/call")
  for (const [name] of selected) {
    console.log(`${name.padEnd(14)} ${Math.round(median(ops[name]!)).toString().padStart(9)}   ${median(cpu[name]!).toFixed(0).padStart(8)}`)
  }
  const ratio = ratios["serverset"]
  if (ratio !== undefined) console.log(`serverset / bare pool (median of rounds): ${median(ratio).toFixed(2)}`)
})

await runScoped(program)
process.exit(0)
