/**
 * What each pool adds to a bare `Pool.use` per uncontended borrow: one fiber
 * borrows in a loop and does nothing with the connection, for `Pool.use`
 * (bare `Pool.makeWithTTL`, configured as `ConnectionPool` configures it),
 * `ConnectionPool.use` and `IdentityPool.use` (the default identity), with
 * the frames of `internal/fiberStack.ts` on and, for comparison, off (the
 * public-combinator fallback):
 *
 *   npx tsx --conditions=@tether/source bench/profile/poolSteps.ts --rounds 15 --millis 200
 *
 * Windows of each contender back to back in a rotating order; medians of
 * throughput and of CPU ns per borrow. The issue's limit is on the added
 * time: ≤ 0.5 µs per uncontended borrow over `Pool.use`.
 */
import type { Effect as EffectType } from "effect"
import { useTscTransform } from "../harness/transpile.ts"

useTscTransform()
const { Effect, Pool } = await import("effect")
const { ConnectionPool, IdentityPool } = await import("@tether/core")
const FiberStack = await import("../../packages/core/src/internal/fiberStack.ts")
const { effectLoop } = await import("../harness/loops.ts")
const { flag, median, rotatingRounds } = await import("../harness/profile.ts")
const { bareTtlPool } = await import("../pool/workload.ts")

const rounds = Number(flag("rounds", "15"))
const millis = Number(flag("millis", "200"))

const program = Effect.gen(function*() {
  const bare = yield* bareTtlPool(10)
  const single = yield* ConnectionPool.make({ name: "steps", acquire: Effect.sync(() => ({ id: 1 })), min: 10, max: 10 })
  const tagged = yield* IdentityPool.make({ name: "steps", connect: () => Effect.sync(() => ({ id: 1 })), max: 10 })
  const body = () => Effect.void
  const framesOff = <A, E>(effect: EffectType.Effect<A, E>) =>
    Effect.acquireUseRelease(Effect.sync(() => FiberStack.setEnabled(false)), () => effect, () =>
      Effect.sync(() => FiberStack.setEnabled(true)))
  const contenders: Array<readonly [string, () => EffectType.Effect<{ readonly opsPerSecond: number }, unknown>]> = [
    ["Pool.use", () => effectLoop(() => Pool.use(bare, body), 1, millis)],
    ["ConnectionPool.use", () => effectLoop(() => single.use(body), 1, millis)],
    ["ConnectionPool.use, no frames", () => framesOff(effectLoop(() => single.use(body), 1, millis))],
    ["IdentityPool.use", () => effectLoop(() => tagged.use(undefined, body), 1, millis)],
    ["IdentityPool.use, no frames", () => framesOff(effectLoop(() => tagged.use(undefined, body), 1, millis))]
  ]
  const { cpu, ops } = yield* rotatingRounds(contenders, { rounds, millis, baseline: "Pool.use", cpuScale: 1000 })
  const base = median(cpu["Pool.use"]!)
  console.log(`${rounds} rounds of ${millis} ms, one fiber, 10 idle connections`)
  console.log("contender                        ops/s   CPU ns/borrow   added over Pool.use")
  for (const [name] of contenders) {
    const ns = median(cpu[name]!)
    console.log(
      `${name.padEnd(30)} ${Math.round(median(ops[name]!)).toString().padStart(8)}   ${ns.toFixed(0).padStart(8)}   ${
        name === "Pool.use" ? "" : `${(ns - base).toFixed(0).padStart(8)} ns`
      }`
    )
  }
})

await Effect.runPromise(Effect.scoped(program))
