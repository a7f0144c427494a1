/**
 * A small seeded PRNG (mulberry32): the fault schedule and every worker's choice of operations
 * are functions of the seed, so a run can be repeated with `--seed`.
 */
export interface Prng {
  /** A float in [0, 1). */
  readonly next: () => number
  /** An integer in [min, max]. */
  readonly int: (min: number, max: number) => number
  /** A float in [min, max). */
  readonly between: (min: number, max: number) => number
  /** One of `items`. */
  readonly pick: <A>(items: ReadonlyArray<A>) => A
  /** One of `choices`, with probability proportional to its weight. */
  readonly weighted: <A>(choices: ReadonlyArray<readonly [A, number]>) => A
}

/** mulberry32 over a 32-bit state; `stream` derives independent generators from one seed. */
export const make = (seed: number, stream = 0): Prng => {
  let state = (Math.imul(seed >>> 0, 0x9e3779b1) ^ Math.imul(stream + 1, 0x85ebca6b)) >>> 0
  const next = () => {
    state = (state + 0x6d2b79f5) >>> 0
    let t = state
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
  const between = (min: number, max: number) => min + next() * (max - min)
  const int = (min: number, max: number) => Math.floor(between(min, max + 1))
  return {
    next,
    int,
    between,
    pick: (items) => items[Math.floor(next() * items.length)]!,
    weighted: (choices) => {
      const total = choices.reduce((sum, [, w]) => sum + w, 0)
      let x = next() * total
      for (const [value, w] of choices) {
        if ((x -= w) < 0) return value
      }
      return choices[choices.length - 1]![0]
    }
  }
}
