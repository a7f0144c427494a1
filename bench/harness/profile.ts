/**
 * What the profile scripts (bench/profile/*.ts) share: their `--name value`
 * flags, their median, and the rounds that run each implementation's window
 * back to back in a rotating order, on a busy machine.
 */
import { Effect } from "effect"

const args = process.argv.slice(2)

/** The value after `--name` on the command line, or `fallback`. */
export const flag = (name: string, fallback: string): string => {
  const i = args.indexOf(`--${name}`)
  return i >= 0 && args[i + 1] !== undefined ? args[i + 1]! : fallback
}

/** The middle value (the upper one of an even count). */
export const median = (xs: ReadonlyArray<number>): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!

/** What the rounds measured, per implementation: ops/s, CPU per operation, ratio to the baseline (same round). */
export interface Rounds {
  readonly ops: Readonly<Record<string, ReadonlyArray<number>>>
  readonly cpu: Readonly<Record<string, ReadonlyArray<number>>>
  readonly ratios: Readonly<Record<string, ReadonlyArray<number>>>
}

/**
 * `rounds` rounds; in each, every implementation's window once, the order
 * rotated by one a round. CPU per operation is this process's user + system
 * time (µs) times `cpuScale` (1: µs, 1000: ns) over the window's operations.
 */
export const rotatingRounds = <E, R>(
  selected: ReadonlyArray<readonly [string, () => Effect.Effect<{ readonly opsPerSecond: number }, E, R>]>,
  options: { readonly rounds: number; readonly millis: number; readonly baseline: string; readonly cpuScale: number }
): Effect.Effect<Rounds, E, R> =>
  Effect.gen(function*() {
    const ops: Record<string, Array<number>> = {}
    const cpu: Record<string, Array<number>> = {}
    const ratios: Record<string, Array<number>> = {}
    for (let round = 0; round < options.rounds; round++) {
      const thisRound: Record<string, number> = {}
      for (let i = 0; i < selected.length; i++) {
        const [name, run] = selected[(i + round) % selected.length]!
        const before = process.cpuUsage()
        const { opsPerSecond } = yield* run()
        const used = process.cpuUsage(before)
        thisRound[name] = opsPerSecond
        ;(ops[name] ??= []).push(opsPerSecond)
        ;(cpu[name] ??= []).push(((used.user + used.system) * options.cpuScale) / (opsPerSecond * options.millis / 1000))
      }
      const base = thisRound[options.baseline]
      if (base !== undefined) for (const [name, value] of Object.entries(thisRound)) (ratios[name] ??= []).push(value / base)
    }
    return { ops, cpu, ratios }
  })
