/**
 * The balancing strategies: pure selectors over a `State` and a list of
 * eligible candidates (see `Balancer.Strategy` for what each one does), and
 * the one pure pick that chains eligibility and a selector.
 *
 * @internal
 */
import * as Result from "effect/Result"
import type {
  AccessMode,
  EndpointState,
  NoEndpointAvailable,
  RandomSource,
  Selection,
  Selector,
  State,
  Strategy
} from "../../Balancer.ts"
import type { EndpointId } from "../../Endpoint.ts"
import { InvalidOptions } from "../../Validation.ts"
import { eligible } from "./eligibility.ts"

/** The first candidate after the cursor, wrapping around; moves the cursor there. */
const rotate = (state: State, candidates: ReadonlyArray<number>): Selection => {
  let index = candidates[0]!
  for (const i of candidates) {
    if (i > state.cursor) {
      index = i
      break
    }
  }
  // The cursor already there (one candidate, the common case): nothing to copy.
  return { index, state: index === state.cursor ? state : { ...state, cursor: index } }
}

/** Candidates whose key is minimal. */
const argmin = (
  state: State,
  candidates: ReadonlyArray<number>,
  key: (e: EndpointState) => number
): ReadonlyArray<number> => {
  let best = Infinity
  let tied: Array<number> = []
  for (const i of candidates) {
    const k = key(state.endpoints[i]!)
    if (k < best) {
      best = k
      tied = [i]
    } else if (k === best) {
      tied.push(i)
    }
  }
  return tied.length > 0 ? tied : candidates
}

/** @internal */
export const roundRobin: Selector = (state, candidates) => rotate(state, candidates)

/** @internal */
export const smoothWeightedRoundRobin: Selector = (state, candidates) => {
  // One candidate: its current weight would gain and lose its own weight, i.e. not change.
  if (candidates.length === 1) return { index: candidates[0]!, state }
  const endpoints = state.endpoints.slice()
  let total = 0
  let best = -1
  let bestWeight = -Infinity
  for (const i of candidates) {
    const e = endpoints[i]!
    const current = e.currentWeight + e.weight
    endpoints[i] = { ...e, currentWeight: current }
    total += e.weight
    if (current > bestWeight) {
      bestWeight = current
      best = i
    }
  }
  const chosen = endpoints[best]!
  endpoints[best] = { ...chosen, currentWeight: chosen.currentWeight - total }
  return { index: best, state: { ...state, endpoints } }
}

/** @internal */
export const leastConnections: Selector = (state, candidates) =>
  rotate(state, argmin(state, candidates, (e) => e.inFlight / e.weight))

/** @internal */
export const random: Selector = (state, candidates, random) => {
  let total = 0
  for (const i of candidates) total += state.endpoints[i]!.weight
  let r = random() * total
  for (const i of candidates) {
    r -= state.endpoints[i]!.weight
    if (r < 0) return { index: i, state }
  }
  return { index: candidates[candidates.length - 1]!, state }
}

/** @internal */
export const priority: Selector = (state, candidates, rng) =>
  smoothWeightedRoundRobin(state, argmin(state, candidates, (e) => e.priority), rng)

/** @internal */
export const fastest: Selector = (state, candidates) =>
  rotate(state, argmin(state, candidates, (e) => e.latency ?? Infinity))

/** @internal */
export const powerOfTwoChoices: Selector = (state, candidates, random) => {
  const n = candidates.length
  if (n === 1) return { index: candidates[0]!, state }
  const a = Math.min(n - 1, Math.floor(random() * n))
  let b = Math.min(n - 2, Math.floor(random() * (n - 1)))
  if (b >= a) b++
  const first = candidates[a]!
  const second = candidates[b]!
  const index = state.endpoints[second]!.inFlight < state.endpoints[first]!.inFlight ? second : first
  return { index, state }
}

/** @internal */
export const selectors: { readonly [S in Strategy]: Selector } = {
  "round-robin": roundRobin,
  "weighted-round-robin": smoothWeightedRoundRobin,
  "least-connections": leastConnections,
  "random": random,
  "priority": priority,
  "fastest": fastest,
  "power-of-two": powerOfTwoChoices
}

/** Eligibility, then the strategy. @internal */
export const pickPure = (
  state: State,
  strategy: Strategy | Selector,
  options: {
    readonly random: RandomSource
    readonly mode?: AccessMode | undefined
    readonly avoid?: ReadonlySet<EndpointId> | undefined
  }
): Result.Result<readonly [EndpointId, State], NoEndpointAvailable> => {
  const candidates = eligible(state, options.mode, options.avoid)
  if (Result.isFailure(candidates)) return Result.fail(candidates.failure)
  const select = typeof strategy === "function" ? strategy : selectors[strategy]
  const selection = select(state, candidates.success, options.random)
  return Result.succeed([selection.state.endpoints[selection.index]!.id, selection.state] as const)
}

/** An `InvalidOptions` unless `strategy` names a strategy. @internal */
export const checkStrategy = (strategy: unknown): InvalidOptions | undefined =>
  typeof strategy === "string" && Object.hasOwn(selectors, strategy) ? undefined : new InvalidOptions({
    component: "balancer",
    option: "strategy",
    value: strategy,
    allowed: Object.keys(selectors).map((s) => JSON.stringify(s)).join(" | ")
  })
