/**
 * Picks the endpoint for the next connection.
 *
 * The strategies are small pure functions over a {@link State} value (so they
 * are deterministic to test); {@link make} holds the current state and feeds
 * them Effect's `Random` service, and the rest of the system keeps the state
 * up to date (health, breakers, latency, connections in flight).
 *
 * Eligibility, applied before any strategy: an endpoint whose breaker is open
 * or whose health is `unhealthy` is skipped; healthy endpoints are preferred,
 * and only when none is healthy are `degraded` and `unknown` ones used; a
 * `"write"` pick only considers endpoints whose role accepts writes
 * (`primary` or `any`). When nothing is left the pick fails with
 * {@link NoEndpointAvailable}, which says why each endpoint was excluded.
 *
 * Fencing (split brain): when probes report a `timeline` (a number that
 * grows with every promotion, such as PostgreSQL's timeline id), the balancer
 * keeps the highest one seen. An endpoint claiming `primary` on an older
 * timeline — or on the same timeline as a primary that claimed it first — is
 * fenced (a *stale primary*, see {@link observe}): it gets no pick at all
 * until it reports `replica` (it rejoined) or the operator calls
 * {@link unfence}. Once any timeline is known, a write also needs the
 * endpoint's own timeline to be known and equal to the highest one, so an
 * endpoint whose claim was not checked yet never takes a write; and an
 * endpoint that comes back from `unhealthy` (or was never probed) takes
 * writes only once every other reachable endpoint has been probed after it
 * came back — another one may have been promoted while it was away, and the
 * balancer has not seen it yet. Sets whose probes report no timeline (LDAP)
 * are not affected by any of this.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { Balancer } from "@tether/core"
 *
 * const program = Effect.gen(function*() {
 *   const balancer = yield* Balancer.make({
 *     strategy: "weighted-round-robin",
 *     endpoints: [
 *       { id: "ldap://a:389", weight: 3 },
 *       { id: "ldap://b:389", weight: 1, role: "replica" }
 *     ]
 *   })
 *   yield* balancer.setHealth("ldap://b:389", "unhealthy")
 *   return yield* balancer.pick("read") // "ldap://a:389"
 * })
 * ```
 *
 * @since 0.1.0
 */
import * as Data from "effect/Data"
import * as Effect from "effect/Effect"
import * as Random from "effect/Random"
import * as Result from "effect/Result"
import type { EndpointId, Role } from "./Endpoint.ts"
import * as Ewma from "./internal/ewma.ts"
import { InvalidOptions } from "./Validation.ts"

/**
 * What an operation will do on the server, and where it may run: `"read"`
 * any endpoint; `"write"` only endpoints whose role is `primary` or `any`;
 * `"replica-only"` only replicas; `"replica-preferred"` replicas while one is
 * eligible, else any endpoint (e.g. the primary).
 *
 * @since 0.1.0
 * @category models
 */
export type AccessMode = "read" | "write" | "replica-preferred" | "replica-only"

/**
 * An endpoint's health, as the health monitor last classified it.
 * `unknown` means not probed yet (or not monitored at all).
 *
 * @since 0.1.0
 * @category models
 */
export type Health = "healthy" | "degraded" | "unhealthy" | "unknown"

/**
 * The balancing strategies.
 *
 * - `round-robin`: each eligible endpoint in turn.
 * - `weighted-round-robin`: nginx's smooth weighted round robin; an endpoint
 *   of weight 5 gets 5 picks in 7 when the others have weight 1, spread out
 *   (`a a b a c a a`), never in a burst.
 * - `least-connections`: fewest connections in flight per unit of weight;
 *   ties are broken in turn.
 * - `random`: weighted random.
 * - `priority`: failover only: the lowest `priority` value among the eligible
 *   endpoints, weighted round robin among equals.
 * - `fastest`: lowest latency EWMA. An endpoint without a latency sample
 *   counts as the slowest (no blind exploration: health probes give every
 *   monitored endpoint a sample within one interval); ties are broken in turn.
 * - `power-of-two`: two distinct endpoints at random, the one with fewer
 *   connections in flight (the first of the two on a tie).
 *
 * @since 0.1.0
 * @category models
 */
export type Strategy =
  | "round-robin"
  | "weighted-round-robin"
  | "least-connections"
  | "random"
  | "priority"
  | "fastest"
  | "power-of-two"

/**
 * The balancer's view of one endpoint.
 *
 * @since 0.1.0
 * @category models
 */
export interface EndpointState {
  readonly id: EndpointId
  readonly weight: number
  readonly priority: number
  readonly role: Role
  readonly health: Health
  readonly breakerOpen: boolean
  /** Connections (or operations) in flight, for least connections and power of two. */
  readonly inFlight: number
  /** Latency EWMA in milliseconds, `undefined` before the first sample. */
  readonly latency: number | undefined
  /** Smooth weighted round robin's running weight. */
  readonly currentWeight: number
  /** The last timeline (or term) a probe reported, `undefined` before any. */
  readonly timeline: number | undefined
  /** Set while the endpoint is fenced as a stale primary. */
  readonly fenced: Fence | undefined
  /** Drained by the operator: listed, gets no new work (see `Balancer.setDraining`). */
  readonly draining?: boolean | undefined
  /** The number of the last observation of this endpoint (see `State.observations`); 0 before any. */
  readonly observedAt: number
  /** `State.observations` when the endpoint last came back from `unhealthy` (0 at start). */
  readonly returnedAt: number
}

/**
 * Why an endpoint is fenced: it claimed the primary role on `timeline` while
 * `highest` was the newest timeline seen (`sameTimeline`: another endpoint
 * already held the primary role on that same timeline).
 *
 * @since 0.1.0
 * @category models
 */
export interface Fence {
  readonly timeline: number
  readonly highest: number
  readonly sameTimeline: boolean
}

/**
 * What a probe found about an endpoint (see `Driver.Probe`).
 *
 * @since 0.1.0
 * @category models
 */
export interface Observation {
  readonly role?: Role | undefined
  readonly timeline?: number | undefined
}

/**
 * An endpoint was just fenced as a stale primary.
 *
 * @since 0.1.0
 * @category models
 */
export interface Fenced extends Fence {
  readonly endpoint: EndpointId
}

/**
 * Everything the strategies look at.
 *
 * @since 0.1.0
 * @category models
 */
export interface State {
  readonly endpoints: ReadonlyArray<EndpointState>
  /** Index of the last endpoint picked by a rotating choice (-1 before the first). */
  readonly cursor: number
  /** The highest timeline any probe reported (never lowered, except by {@link unfence}). */
  readonly highestTimeline?: number | undefined
  /** Observations recorded so far (each {@link observe} numbers one). */
  readonly observations?: number | undefined
}

/**
 * What the balancer needs to know about an endpoint; an `Endpoint.Endpoint`
 * fits.
 *
 * @since 0.1.0
 * @category models
 */
export interface EndpointInit {
  readonly id: EndpointId
  readonly weight?: number | undefined
  readonly priority?: number | undefined
  readonly role?: Role | undefined
}

/**
 * A source of random numbers in `[0, 1)`, such as `Math.random`.
 *
 * @since 0.1.0
 * @category models
 */
export type RandomSource = () => number

/**
 * Why one endpoint could not be picked.
 *
 * @since 0.1.0
 * @category models
 */
export interface Exclusion {
  readonly endpoint: EndpointId
  readonly reason: string
  /**
   * The endpoint's last failure (an operation's or a health probe's), when
   * a server set knows one: e.g. `PgConnectionError: … ECONNREFUSED …`.
   */
  readonly lastError?: string | undefined
}

/**
 * No endpoint could be picked. `exclusions` lists why each endpoint was left
 * out; the message reads like
 * `no endpoint available for write: ldap://a: unhealthy; ldap://b: breaker open`.
 *
 * @since 0.1.0
 * @category errors
 */
export class NoEndpointAvailable extends Data.TaggedError("NoEndpointAvailable")<{
  readonly mode: AccessMode | undefined
  readonly exclusions: ReadonlyArray<Exclusion>
}> {
  override get message(): string {
    const what = this.mode === undefined ? "" : ` for ${this.mode}`
    if (this.exclusions.length === 0) {
      return `no endpoint available${what}: none is configured; add at least one endpoint`
    }
    const reasons = this.exclusions.map((e) =>
      `${e.endpoint}: ${e.reason}${e.lastError === undefined ? "" : ` (last error: ${e.lastError})`}`
    ).join("; ")
    return `no endpoint available${what}: ${reasons}. ` +
      "Wait for a health probe to succeed or a breaker to half-open, or add endpoints"
  }
}

// -----------------------------------------------------------------------------
// State
// -----------------------------------------------------------------------------

const makeEndpointState = (init: EndpointInit): EndpointState => ({
  id: init.id,
  weight: init.weight ?? 1,
  priority: init.priority ?? 0,
  role: init.role ?? "any",
  health: "unknown",
  breakerOpen: false,
  inFlight: 0,
  latency: undefined,
  currentWeight: 0,
  timeline: undefined,
  fenced: undefined,
  observedAt: 0,
  returnedAt: 0
})

/**
 * The initial state for a list of endpoints: health `unknown`, breakers
 * closed, nothing in flight, no latency sample.
 *
 * @since 0.1.0
 * @category state
 */
export const initialState = (endpoints: ReadonlyArray<EndpointInit>): State => ({
  endpoints: endpoints.map(makeEndpointState),
  cursor: -1
})

/**
 * Applies `f` to the endpoint `id` (unchanged state if there is none).
 *
 * @since 0.1.0
 * @category state
 */
export const updateEndpoint = (
  state: State,
  id: EndpointId,
  f: (endpoint: EndpointState) => EndpointState
): State => {
  const index = state.endpoints.findIndex((e) => e.id === id)
  if (index === -1) return state
  const endpoints = state.endpoints.slice()
  endpoints[index] = f(endpoints[index]!)
  return { ...state, endpoints }
}

/**
 * Adds an endpoint, or updates the weight, priority and role of an existing
 * one (keeping its health, breaker, latency and in-flight count).
 *
 * @since 0.1.0
 * @category state
 */
export const addEndpoint = (state: State, init: EndpointInit): State => {
  const exists = state.endpoints.some((e) => e.id === init.id)
  if (!exists) return { ...state, endpoints: [...state.endpoints, makeEndpointState(init)] }
  return updateEndpoint(state, init.id, (e) => ({
    ...e,
    weight: init.weight ?? e.weight,
    priority: init.priority ?? e.priority,
    role: init.role ?? e.role
  }))
}

/**
 * Removes an endpoint.
 *
 * @since 0.1.0
 * @category state
 */
export const removeEndpoint = (state: State, id: EndpointId): State => {
  const index = state.endpoints.findIndex((e) => e.id === id)
  if (index === -1) return state
  return {
    ...state,
    endpoints: state.endpoints.filter((_, i) => i !== index),
    cursor: state.cursor >= index ? state.cursor - 1 : state.cursor
  }
}

// -----------------------------------------------------------------------------
// Fencing
// -----------------------------------------------------------------------------

/**
 * Records what a probe found (role and timeline) and applies the fencing
 * rule. Returns the next state and the endpoints it just fenced.
 *
 * - The highest timeline seen rises to the reported one.
 * - An endpoint claiming `primary` on a timeline below the highest is fenced.
 * - An endpoint claiming `primary` on the highest timeline while another,
 *   unfenced endpoint already holds the primary role there is fenced too (the
 *   first claimant keeps it: a tie never makes two writable primaries).
 * - A fence is lifted when the endpoint reports `replica` (it rejoined), or
 *   when it claims `primary` on a timeline above the one it was fenced on (it
 *   was promoted again; the rule then applies afresh). {@link unfence} lifts
 *   it on the operator's word.
 *
 * @example
 * ```ts
 * import { Balancer } from "@tether/core"
 *
 * let state = Balancer.initialState([{ id: "a", role: "primary" }, { id: "b", role: "replica" }])
 * state = Balancer.observe(state, "a", { role: "primary", timeline: 1 }).state
 * // failover: b is promoted to timeline 2; a comes back outside recovery, still on 1
 * const { state: next, fenced } = Balancer.observe(state, "b", { role: "primary", timeline: 2 })
 * // fenced: [{ endpoint: "a", timeline: 1, highest: 2, sameTimeline: false }]
 * ```
 *
 * @since 0.1.0
 * @category fencing
 */
export const observe = (
  state: State,
  id: EndpointId,
  observation: Observation
): { readonly state: State; readonly fenced: ReadonlyArray<Fenced> } => {
  const { role, timeline } = observation
  const seq = (state.observations ?? 0) + 1
  let next = updateEndpoint({ ...state, observations: seq }, id, (e) => {
    let fenced = e.fenced
    if (fenced !== undefined) {
      if (role === "replica") fenced = undefined
      else if (role === "primary" && timeline !== undefined && timeline > fenced.timeline) fenced = undefined
    }
    return { ...e, role: role ?? e.role, timeline: timeline ?? e.timeline, fenced, observedAt: seq }
  })
  const highest = timeline === undefined
    ? next.highestTimeline
    : next.highestTimeline === undefined
    ? timeline
    : Math.max(next.highestTimeline, timeline)
  if (highest !== next.highestTimeline) next = { ...next, highestTimeline: highest }
  if (highest === undefined) return { state: next, fenced: [] }
  const fenced: Array<Fenced> = []
  const endpoints = next.endpoints
  let changed: Array<EndpointState> | undefined
  for (let i = 0; i < endpoints.length; i++) {
    const e = endpoints[i]!
    if (e.fenced !== undefined || e.role !== "primary" || e.timeline === undefined) continue
    let fence: Fence | undefined
    if (e.timeline < highest) {
      fence = { timeline: e.timeline, highest, sameTimeline: false }
    } else if (
      e.id === id &&
      endpoints.some((o) => o.id !== id && o.role === "primary" && o.fenced === undefined && o.timeline === highest)
    ) {
      fence = { timeline: e.timeline, highest, sameTimeline: true }
    }
    if (fence !== undefined) {
      ;(changed ??= endpoints.slice())[i] = { ...e, fenced: fence }
      fenced.push({ endpoint: e.id, ...fence })
    }
  }
  return { state: changed === undefined ? next : { ...next, endpoints: changed }, fenced }
}

/**
 * Lifts the fence of `id` on the operator's word, and takes its timeline as
 * the highest one (the operator declares it the newest). If another endpoint
 * still claims the primary role on a newer timeline, or on the same one, the
 * next probe fences again: demote or stop the other one first. `unfenced`
 * says whether there was a fence to lift.
 *
 * @since 0.1.0
 * @category fencing
 */
export const unfence = (state: State, id: EndpointId): { readonly state: State; readonly unfenced: boolean } => {
  const e = state.endpoints.find((e) => e.id === id)
  if (e === undefined || e.fenced === undefined) return { state, unfenced: false }
  const next = updateEndpoint(state, id, (e) => ({ ...e, fenced: undefined }))
  return { state: e.timeline === undefined ? next : { ...next, highestTimeline: e.timeline }, unfenced: true }
}

/**
 * Records a health classification. An endpoint coming back from `unhealthy`
 * notes when (see {@link eligible}'s re-admission rule).
 *
 * @since 0.1.0
 * @category state
 */
export const setHealth = (state: State, id: EndpointId, health: Health): State =>
  updateEndpoint(state, id, (e) => {
    if (e.health === health) return e
    return e.health === "unhealthy"
      ? { ...e, health, returnedAt: state.observations ?? 0 }
      : { ...e, health }
  })

/** Why an endpoint may not take a write under the fencing rule, if it may not. */
const fencingExclusion = (state: State, e: EndpointState): string | undefined => {
  if (e.fenced !== undefined) return staleReason(e.fenced)
  const highest = state.highestTimeline
  if (highest === undefined) return undefined
  if (e.timeline !== highest) {
    return e.timeline === undefined
      ? `timeline not checked yet (the newest is ${highest})`
      : `stale timeline ${e.timeline} (the newest is ${highest})`
  }
  // Re-admission: an endpoint back from `unhealthy` (or new) takes writes only once every other reachable
  // endpoint was probed after it came back — one of them may have been promoted meanwhile.
  for (const o of state.endpoints) {
    if (o !== e && o.health !== "unhealthy" && o.observedAt <= e.returnedAt) {
      return `waiting for ${o.id} to be probed (another endpoint may have been promoted)`
    }
  }
  return undefined
}

const staleReason = (fence: Fence) =>
  fence.sameTimeline
    ? `stale primary: fenced (another primary already holds timeline ${fence.timeline}); unfence it or let it rejoin as a replica`
    : `stale primary: fenced (timeline ${fence.timeline}, the newest is ${fence.highest}); unfence it or let it rejoin as a replica`

/**
 * Records a latency sample (milliseconds) into the endpoint's EWMA.
 *
 * @since 0.1.0
 * @category state
 */
export const recordLatency = (state: State, id: EndpointId, millis: number, alpha = Ewma.defaultAlpha): State =>
  updateEndpoint(state, id, (e) => ({ ...e, latency: Ewma.next(e.latency, millis, alpha) }))

// -----------------------------------------------------------------------------
// Eligibility
// -----------------------------------------------------------------------------

/**
 * The indices of the endpoints a pick may choose from, following the
 * eligibility rule (see the module doc), or why there are none.
 *
 * `avoid` lists endpoints to use only as a last resort (a retry avoids the
 * endpoints that just failed): eligible endpoints outside it come first,
 * healthy before degraded.
 *
 * @since 0.1.0
 * @category eligibility
 */
export const eligible = (
  state: State,
  mode?: AccessMode,
  avoid?: ReadonlySet<EndpointId>
): Result.Result<ReadonlyArray<number>, NoEndpointAvailable> => {
  const endpoints = state.endpoints
  if (mode === "replica-preferred") {
    // Replicas first (ones not to avoid); else any endpoint, the avoided last.
    const replicas = eligible(state, "replica-only", avoid)
    if (Result.isSuccess(replicas) && (avoid === undefined || replicas.success.some((i) => !avoid.has(endpoints[i]!.id)))) {
      return replicas
    }
    return eligible(state, "read", avoid)
  }
  const healthy: Array<number> = []
  const fallback: Array<number> = []
  let exclusions: Array<Exclusion> | undefined
  for (let i = 0; i < endpoints.length; i++) {
    const e = endpoints[i]!
    let reason: string | undefined
    if (e.fenced !== undefined) reason = staleReason(e.fenced)
    else if (e.draining === true) reason = "draining (by the operator)"
    else if (mode === "write" && e.role === "replica") reason = "replica (does not accept writes)"
    else if (mode === "replica-only" && e.role !== "replica") reason = `${e.role} (replica-only read)`
    else if (e.breakerOpen) reason = e.health === "unhealthy" ? "unhealthy, breaker open" : "breaker open"
    else if (e.health === "unhealthy") reason = "unhealthy"
    else if (mode === "write") reason = fencingExclusion(state, e)
    if (reason !== undefined) {
      ;(exclusions ??= []).push({ endpoint: e.id, reason })
    } else if (e.health === "healthy") {
      healthy.push(i)
    } else {
      fallback.push(i)
    }
  }
  if (avoid !== undefined && avoid.size > 0) {
    const keep = (i: number) => !avoid.has(endpoints[i]!.id)
    const tiers = [healthy.filter(keep), fallback.filter(keep), healthy, fallback]
    for (const tier of tiers) if (tier.length > 0) return Result.succeed(tier)
  } else {
    if (healthy.length > 0) return Result.succeed(healthy)
    if (fallback.length > 0) return Result.succeed(fallback)
  }
  return Result.fail(new NoEndpointAvailable({ mode, exclusions: exclusions ?? [] }))
}

// -----------------------------------------------------------------------------
// Strategies
// -----------------------------------------------------------------------------

/**
 * A strategy's choice: the index of the endpoint picked and the next state.
 *
 * @since 0.1.0
 * @category strategies
 */
export interface Selection {
  readonly index: number
  readonly state: State
}

/**
 * A strategy: chooses one of `candidates` (indices into
 * `state.endpoints`, never empty, in ascending order).
 *
 * @since 0.1.0
 * @category strategies
 */
export type Selector = (state: State, candidates: ReadonlyArray<number>, random: RandomSource) => Selection

/** The first candidate after the cursor, wrapping around; moves the cursor there. */
const rotate = (state: State, candidates: ReadonlyArray<number>): Selection => {
  let index = candidates[0]!
  for (const i of candidates) {
    if (i > state.cursor) {
      index = i
      break
    }
  }
  return { index, state: { ...state, cursor: index } }
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

/**
 * Round robin: each candidate in turn, in configuration order.
 *
 * @since 0.1.0
 * @category strategies
 */
export const roundRobin: Selector = (state, candidates) => rotate(state, candidates)

/**
 * nginx's smooth weighted round robin: every candidate's running weight grows
 * by its weight, the largest is picked (the first on a tie) and loses the sum
 * of the weights. Over any `sum(weights)` consecutive picks with a stable
 * candidate set, each endpoint is picked exactly `weight` times.
 *
 * @since 0.1.0
 * @category strategies
 */
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

/**
 * Least connections: the fewest in flight per unit of weight; ties in turn.
 *
 * @since 0.1.0
 * @category strategies
 */
export const leastConnections: Selector = (state, candidates) =>
  rotate(state, argmin(state, candidates, (e) => e.inFlight / e.weight))

/**
 * Weighted random: each candidate with probability `weight / sum(weights)`.
 *
 * @since 0.1.0
 * @category strategies
 */
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

/**
 * Priority (failover only): the candidates with the lowest `priority` value,
 * smooth weighted round robin among them.
 *
 * @since 0.1.0
 * @category strategies
 */
export const priority: Selector = (state, candidates, rng) =>
  smoothWeightedRoundRobin(state, argmin(state, candidates, (e) => e.priority), rng)

/**
 * Fastest: the lowest latency EWMA. No sample counts as the slowest; ties
 * (including "nobody has a sample") are broken in turn.
 *
 * @since 0.1.0
 * @category strategies
 */
export const fastest: Selector = (state, candidates) =>
  rotate(state, argmin(state, candidates, (e) => e.latency ?? Infinity))

/**
 * Power of two choices: two distinct candidates at random, the one with
 * fewer in flight (the first drawn on a tie).
 *
 * @since 0.1.0
 * @category strategies
 */
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

/**
 * The selector of each strategy.
 *
 * @since 0.1.0
 * @category strategies
 */
export const selectors: { readonly [S in Strategy]: Selector } = {
  "round-robin": roundRobin,
  "weighted-round-robin": smoothWeightedRoundRobin,
  "least-connections": leastConnections,
  "random": random,
  "priority": priority,
  "fastest": fastest,
  "power-of-two": powerOfTwoChoices
}

/**
 * One pure pick: eligibility, then the strategy. Returns the endpoint picked
 * and the next state.
 *
 * @example
 * ```ts
 * import { Balancer } from "@tether/core"
 *
 * let state = Balancer.initialState([{ id: "a", weight: 5 }, { id: "b" }, { id: "c" }])
 * const picks: Array<string> = []
 * for (let i = 0; i < 7; i++) {
 *   const result = Balancer.pickPure(state, "weighted-round-robin", { random: Math.random })
 *   if (result._tag === "Success") {
 *     picks.push(result.success[0])
 *     state = result.success[1]
 *   }
 * }
 * // picks: a a b a c a a
 * ```
 *
 * @since 0.1.0
 * @category picking
 */
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

// -----------------------------------------------------------------------------
// Service
// -----------------------------------------------------------------------------

/**
 * Options of a pick.
 *
 * @since 0.1.0
 * @category models
 */
export interface PickOptions {
  /** Endpoints to use only when no other is eligible (e.g. the ones that just failed). */
  readonly avoid?: ReadonlySet<EndpointId> | undefined
}

/**
 * A balancer over a {@link State}. Every method is atomic (it runs without
 * yielding).
 *
 * @since 0.1.0
 * @category models
 */
export interface Balancer {
  /** The current strategy (see `setStrategy`). */
  readonly strategy: Strategy
  /** Switches strategy from the next pick on; fails on an unknown one. */
  readonly setStrategy: (strategy: Strategy) => Effect.Effect<void, InvalidOptions>
  /** Drains (no new picks, still listed) or re-enables an endpoint. */
  readonly setDraining: (id: EndpointId, draining: boolean) => Effect.Effect<void>
  /** Completes once nothing is in flight on the endpoint (at once if nothing is, or it is gone). */
  readonly whenIdle: (id: EndpointId) => Effect.Effect<void>
  /** Picks an endpoint for an operation of the given mode (default: any endpoint). */
  readonly pick: (mode?: AccessMode, options?: PickOptions) => Effect.Effect<EndpointId, NoEndpointAvailable>
  /** The current state. */
  readonly state: Effect.Effect<State>
  readonly setHealth: (id: EndpointId, health: Health) => Effect.Effect<void>
  readonly setBreakerOpen: (id: EndpointId, open: boolean) => Effect.Effect<void>
  /** Records the role a probe discovered (e.g. a PostgreSQL replica promoted to primary). */
  readonly setRole: (id: EndpointId, role: Role) => Effect.Effect<void>
  /** Records a probe's role and timeline and applies the fencing rule (see {@link observe}); returns the endpoints it fenced. */
  readonly observe: (id: EndpointId, observation: Observation) => Effect.Effect<ReadonlyArray<Fenced>>
  /** Lifts a fence on the operator's word (see {@link unfence}); whether there was one. */
  readonly unfence: (id: EndpointId) => Effect.Effect<boolean>
  /** Records a latency sample in milliseconds. */
  readonly recordLatency: (id: EndpointId, millis: number) => Effect.Effect<void>
  /** `recordLatency`, synchronously (for code already inside an effect's callback). */
  readonly recordLatencyUnsafe: (id: EndpointId, millis: number) => void
  /** Adds `delta` (usually +1 or -1) to the endpoint's in-flight count. */
  readonly addInFlight: (id: EndpointId, delta: number) => Effect.Effect<void>
  /** `addInFlight`, synchronously. */
  readonly addInFlightUnsafe: (id: EndpointId, delta: number) => void
  /** Runs `effect` counted as in flight on `id`. */
  readonly withInFlight: (id: EndpointId) => <A, E, R>(effect: Effect.Effect<A, E, R>) => Effect.Effect<A, E, R>
  /** Adds an endpoint, or updates its weight, priority and role. */
  readonly add: (endpoint: EndpointInit) => Effect.Effect<void>
  readonly remove: (id: EndpointId) => Effect.Effect<void>
}

/**
 * Makes a {@link Balancer}. Random strategies draw from Effect's `Random`
 * service (use `Random.withSeed` for reproducible tests).
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (options: {
  readonly endpoints: ReadonlyArray<EndpointInit>
  /** Default `"weighted-round-robin"`. */
  readonly strategy?: Strategy | undefined
  /** Smoothing factor of the latency EWMA, in (0, 1] (default 0.3). */
  readonly latencyAlpha?: number | undefined
}): Effect.Effect<Balancer, InvalidOptions> =>
  Effect.suspend(() => {
    let strategy = options.strategy ?? "weighted-round-robin"
    const invalid = checkStrategy(strategy)
    if (invalid !== undefined) return Effect.fail(invalid)
    let select = selectors[strategy]
    const alpha = options.latencyAlpha ?? Ewma.defaultAlpha
    // One fiber runs at a time, so a plain variable updated synchronously is
    // as atomic as a `Ref`, and cheaper on the per-call path.
    let state = initialState(options.endpoints)
    const modifyEndpoint = (id: EndpointId, f: (e: EndpointState) => EndpointState) =>
      Effect.sync(() => {
        state = updateEndpoint(state, id, f)
      })
    // The per-call counters change in place on the current state's endpoint
    // object: every call would otherwise copy the state three times. Picks
    // copy the endpoint objects they change, so a later update still lands
    // on the current one.
    const live = (id: EndpointId) => state.endpoints.find((e) => e.id === id) as Mutable<EndpointState> | undefined
    /** Who waits for an endpoint to have nothing in flight (see `whenIdle`). */
    const idleWaiters = new Map<EndpointId, Set<() => void>>()
    const wakeIdle = (id: EndpointId) => {
      const waiters = idleWaiters.get(id)
      if (waiters === undefined) return
      idleWaiters.delete(id)
      for (const wake of waiters) wake()
    }
    const addInFlightUnsafe = (id: EndpointId, delta: number) => {
      const e = live(id)
      if (e !== undefined) {
        e.inFlight = Math.max(0, e.inFlight + delta)
        if (e.inFlight === 0 && idleWaiters.size > 0) wakeIdle(id)
      }
    }
    const recordLatencyUnsafe = (id: EndpointId, millis: number) => {
      const e = live(id)
      if (e !== undefined) e.latency = Ewma.next(e.latency, millis, alpha)
    }
    return Effect.succeed<Balancer>({
      get strategy() {
        return strategy
      },
      setStrategy: (next) =>
        Effect.suspend(() => {
          const invalid = checkStrategy(next)
          if (invalid !== undefined) return Effect.fail(invalid)
          strategy = next
          select = selectors[next]
          return Effect.void
        }),
      whenIdle: (id) =>
        Effect.callback<void>((resume) => {
          const e = live(id)
          if (e === undefined || e.inFlight === 0) return resume(Effect.void)
          const wake = () => resume(Effect.void)
          let waiters = idleWaiters.get(id)
          if (waiters === undefined) idleWaiters.set(id, waiters = new Set())
          waiters.add(wake)
          return Effect.sync(() => {
            waiters.delete(wake)
          })
        }),
      setDraining: (id, draining) =>
        modifyEndpoint(id, (e) => ((e.draining === true) === draining ? e : { ...e, draining })),
      pick: (mode, pickOptions) =>
        Effect.flatMap(Effect.service(Random.Random), (rng) =>
          Effect.suspend(() => {
            const result = pickPure(state, select, {
              random: () => rng.nextDoubleUnsafe(),
              mode,
              avoid: pickOptions?.avoid
            })
            if (Result.isFailure(result)) return Effect.fail(result.failure)
            state = result.success[1]
            return Effect.succeed(result.success[0])
          })),
      state: Effect.sync(() => state),
      setHealth: (id, health) =>
        Effect.sync(() => {
          state = setHealth(state, id, health)
        }),
      setBreakerOpen: (id, open) => modifyEndpoint(id, (e) => (e.breakerOpen === open ? e : { ...e, breakerOpen: open })),
      setRole: (id, role) => modifyEndpoint(id, (e) => (e.role === role ? e : { ...e, role })),
      observe: (id, observation) =>
        Effect.sync(() => {
          const result = observe(state, id, observation)
          state = result.state
          return result.fenced
        }),
      unfence: (id) =>
        Effect.sync(() => {
          const result = unfence(state, id)
          state = result.state
          return result.unfenced
        }),
      recordLatency: (id, millis) => Effect.sync(() => recordLatencyUnsafe(id, millis)),
      recordLatencyUnsafe,
      addInFlight: (id, delta) => Effect.sync(() => addInFlightUnsafe(id, delta)),
      addInFlightUnsafe,
      withInFlight: (id) => (effect) =>
        Effect.suspend(() => {
          addInFlightUnsafe(id, 1)
          return Effect.onExitPrimitive(effect, () => {
            addInFlightUnsafe(id, -1)
            return undefined
          })
        }),
      add: (endpoint) =>
        Effect.sync(() => {
          state = addEndpoint(state, endpoint)
        }),
      remove: (id) =>
        Effect.sync(() => {
          state = removeEndpoint(state, id)
          wakeIdle(id)
        })
    })
  })

type Mutable<T> = { -readonly [K in keyof T]: T[K] }

const checkStrategy = (strategy: unknown): InvalidOptions | undefined =>
  typeof strategy === "string" && Object.hasOwn(selectors, strategy) ? undefined : new InvalidOptions({
    component: "balancer",
    option: "strategy",
    value: strategy,
    allowed: Object.keys(selectors).map((s) => JSON.stringify(s)).join(" | ")
  })
