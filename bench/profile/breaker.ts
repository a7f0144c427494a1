/**
 * The breaker's overhead on an async no-op, for profiling and for comparing
 * variants on a busy machine:
 *
 *   npx tsx bench/profile/breaker.ts --rounds 30 --millis 100
 *   node --import tsx --cpu-prof --cpu-prof-dir=/tmp/prof bench/profile/breaker.ts --only breaker --rounds 20
 *   npx tsx bench/profile/summarize.ts /tmp/prof/*.cpuprofile --top 30
 *
 * Against an earlier breaker, in the same process (`--baseline` takes a copy
 * of an old `CircuitBreaker.ts` with its imports pointed at packages/core/src):
 *
 *   git show main:packages/core/src/CircuitBreaker.ts | sed 's#from "./#from "../packages/core/src/#' > bench/OldBreaker.ts
 *   npx tsx bench/profile/breaker.ts --baseline ../OldBreaker.ts
 *
 * "floor" is the least any breaker built on Effect can do per call: one primitive that decides
 * when it runs (as `protect` must, not when built) and pushes a frame that sees the outcome
 * and passes it on (the breaker's own mechanism, `internal/fiberStack.ts`), with no
 * bookkeeping at all. The breaker's distance to "floor" is what its state machine costs; the
 * floor's distance to `Effect.promise` is what Effect charges for one lazy, observed step.
 *
 * Runs short windows of each implementation back to back, in a rotating
 * order, and reports per implementation the median throughput, the median
 * CPU time per call, and the median of the per-round ratios to
 * `Effect.promise` alone (the windows of one round ran under the same load,
 * so their ratio is steadier than the ratio of medians).
 */
import type { Effect as EffectType } from "effect"
import { useTscTransform } from "../harness/transpile.ts"

useTscTransform()
const { Effect } = await import("effect")
const { CircuitBreaker } = await import("@tether/core")
const { circuitBreaker: cockatielBreaker, ConsecutiveBreaker, handleAll } = await import("cockatiel")
const OpossumBreaker = (await import("opossum")).default
const { effectLoop, promiseLoop } = await import("../harness/loops.ts")
const { Effectable } = await import("effect")
const FiberStack = await import("../../packages/core/src/internal/fiberStack.ts")

/** A frame that only passes the outcome on. */
class PassFrame {}
FiberStack.defineFrame(PassFrame, { onExit: () => undefined })
const passFrame = new PassFrame()
interface Floor extends EffectType.Effect<unknown> {
  effect: EffectType.Effect<unknown>
}
const FloorProto = Effectable.Prototype<Floor>({
  label: "floor",
  evaluate(fiber) {
    const internals = FiberStack.internalsOf(fiber)
    if (internals !== undefined) FiberStack.push(internals, passFrame)
    return this.effect
  }
})
const floor = (effect: EffectType.Effect<unknown>): EffectType.Effect<unknown> => {
  const f = Object.create(FloorProto) as Floor
  f.effect = effect
  return f
}

const { flag, median, rotatingRounds } = await import("../harness/profile.ts")
const rounds = Number(flag("rounds", "20"))
const millis = Number(flag("millis", "150"))
const only = flag("only", "")
const baselinePath = flag("baseline", "")

const noop = () => Promise.resolve(1)

const program = Effect.gen(function*() {
  const breaker = yield* CircuitBreaker.make({ endpoint: "bench" })
  const cockatiel = cockatielBreaker(handleAll, { halfOpenAfter: 10_000, breaker: new ConsecutiveBreaker(5) })
  const opossum = new OpossumBreaker(noop, { timeout: false, errorThresholdPercentage: 50, resetTimeout: 10_000 })
  const protectedNoop = () => breaker.protect(Effect.promise(noop))
  const rawNoop = () => Effect.promise(noop)
  const impls: Array<[string, () => EffectType.Effect<{ opsPerSecond: number }, unknown>]> = [
    ["Effect.promise alone", () => effectLoop(rawNoop, 1, millis)],
    ["breaker", () => effectLoop(protectedNoop, 1, millis)],
    ["floor", () => effectLoop(() => floor(Effect.promise(noop)), 1, millis)],
    ["opossum", () => Effect.promise(() => promiseLoop(() => opossum.fire(), 1, millis))],
    ["cockatiel", () => Effect.promise(() => promiseLoop(() => cockatiel.execute(noop), 1, millis))]
  ]
  if (baselinePath !== "") {
    const baseline = yield* Effect.promise((): Promise<typeof CircuitBreaker> => import(baselinePath))
    const old = yield* baseline.make({ endpoint: "baseline" })
    impls.push(["baseline breaker", () => effectLoop(() => old.protect(Effect.promise(noop)), 1, millis)])
  }
  const selected = only === "" ? impls : impls.filter(([name]) => name === only)
  const { cpu, ops, ratios } = yield* rotatingRounds(selected, { rounds, millis, baseline: "Effect.promise alone", cpuScale: 1000 })
  opossum.shutdown()
  console.log(`${rounds} rounds of ${millis} ms, one caller, closed breaker`)
  console.log("implementation          ops/s   CPU ns/call   ratio to Effect.promise (median of rounds)")
  for (const [name] of selected) {
    const ratio = ratios[name] === undefined ? "" : median(ratios[name]!).toFixed(2)
    console.log(
      `${name.padEnd(22)} ${Math.round(median(ops[name]!)).toString().padStart(8)}   ${
        median(cpu[name]!).toFixed(0).padStart(8)
      }      ${ratio}`
    )
  }
})

await Effect.runPromise(Effect.scoped(program))
