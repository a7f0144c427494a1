/**
 * Picks the endpoint for the next connection.
 *
 * The strategies are small pure functions over a {@link State} value (so they
 * are deterministic to test); {@link make} holds the current state and feeds
 * them Effect's `Random` service, and the rest of the system keeps the state
 * up to date (health, breakers, latency, connections in flight).
 *
 * The live balancer publishes its structural state — each endpoint's health,
 * role, breaker, drain, fence and weights, and the strategy — as a
 * {@link Snapshot} in a `SubscriptionRef`: `balancer.changes` streams the
 * current snapshot and then every change, `balancer.snapshot` reads it. The
 * per-call counters (connections in flight, latency, the rotation cursor and
 * running weights) stay out of it: picks and in-flight counts read and write
 * the state synchronously, so the per-call path pays no permit and no
 * publish (`balancer.state` shows them).
 *
 * This module holds the types, constructors and docs; the implementation is
 * under `internal/balancer/` (`state.ts`, `fencing.ts`, `eligibility.ts`,
 * `strategies.ts`, `snapshot.ts`, `live.ts`). It runs past 400 lines only
 * because it documents some thirty public names: two thirds of it is doc
 * comments, and it holds no logic.
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
import type * as Effect from "effect/Effect"
import type * as Result from "effect/Result"
import type * as Stream from "effect/Stream"
import type { EndpointId, Role } from "./Endpoint.ts"
import * as Eligibility from "./internal/balancer/eligibility.ts"
import * as Fencing from "./internal/balancer/fencing.ts"
import * as Live from "./internal/balancer/live.ts"
import * as InternalState from "./internal/balancer/state.ts"
import * as Strategies from "./internal/balancer/strategies.ts"
import type { InvalidOptions } from "./Validation.ts"

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

/**
 * The initial state for a list of endpoints: health `unknown`, breakers
 * closed, nothing in flight, no latency sample.
 *
 * @since 0.1.0
 * @category state
 */
export const initialState: (endpoints: ReadonlyArray<EndpointInit>) => State = InternalState.initialState

/**
 * Applies `f` to the endpoint `id` (unchanged state if there is none).
 *
 * @since 0.1.0
 * @category state
 */
export const updateEndpoint: (
  state: State,
  id: EndpointId,
  f: (endpoint: EndpointState) => EndpointState
) => State = InternalState.updateEndpoint

/**
 * Adds an endpoint, or updates the weight, priority and role of an existing
 * one (keeping its health, breaker, latency and in-flight count).
 *
 * @since 0.1.0
 * @category state
 */
export const addEndpoint: (state: State, init: EndpointInit) => State = InternalState.addEndpoint

/**
 * Removes an endpoint.
 *
 * @since 0.1.0
 * @category state
 */
export const removeEndpoint: (state: State, id: EndpointId) => State = InternalState.removeEndpoint

/**
 * Records a health classification. An endpoint coming back from `unhealthy`
 * notes when (see {@link eligible}'s re-admission rule).
 *
 * @since 0.1.0
 * @category state
 */
export const setHealth: (state: State, id: EndpointId, health: Health) => State = InternalState.setHealth

/**
 * Records a latency sample (milliseconds) into the endpoint's EWMA.
 *
 * @since 0.1.0
 * @category state
 */
export const recordLatency: (state: State, id: EndpointId, millis: number, alpha?: number) => State =
  InternalState.recordLatency

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
export const observe: (
  state: State,
  id: EndpointId,
  observation: Observation
) => { readonly state: State; readonly fenced: ReadonlyArray<Fenced> } = Fencing.observe

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
export const unfence: (
  state: State,
  id: EndpointId
) => { readonly state: State; readonly unfenced: boolean } = Fencing.unfence

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
export const eligible: (
  state: State,
  mode?: AccessMode,
  avoid?: ReadonlySet<EndpointId>
) => Result.Result<ReadonlyArray<number>, NoEndpointAvailable> = Eligibility.eligible

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

/**
 * Round robin: each candidate in turn, in configuration order.
 *
 * @since 0.1.0
 * @category strategies
 */
export const roundRobin: Selector = Strategies.roundRobin

/**
 * nginx's smooth weighted round robin: every candidate's running weight grows
 * by its weight, the largest is picked (the first on a tie) and loses the sum
 * of the weights. Over any `sum(weights)` consecutive picks with a stable
 * candidate set, each endpoint is picked exactly `weight` times.
 *
 * @since 0.1.0
 * @category strategies
 */
export const smoothWeightedRoundRobin: Selector = Strategies.smoothWeightedRoundRobin

/**
 * Least connections: the fewest in flight per unit of weight; ties in turn.
 *
 * @since 0.1.0
 * @category strategies
 */
export const leastConnections: Selector = Strategies.leastConnections

/**
 * Weighted random: each candidate with probability `weight / sum(weights)`.
 *
 * @since 0.1.0
 * @category strategies
 */
export const random: Selector = Strategies.random

/**
 * Priority (failover only): the candidates with the lowest `priority` value,
 * smooth weighted round robin among them.
 *
 * @since 0.1.0
 * @category strategies
 */
export const priority: Selector = Strategies.priority

/**
 * Fastest: the lowest latency EWMA. No sample counts as the slowest; ties
 * (including "nobody has a sample") are broken in turn.
 *
 * @since 0.1.0
 * @category strategies
 */
export const fastest: Selector = Strategies.fastest

/**
 * Power of two choices: two distinct candidates at random, the one with
 * fewer in flight (the first drawn on a tie).
 *
 * @since 0.1.0
 * @category strategies
 */
export const powerOfTwoChoices: Selector = Strategies.powerOfTwoChoices

/**
 * The selector of each strategy.
 *
 * @since 0.1.0
 * @category strategies
 */
export const selectors: { readonly [S in Strategy]: Selector } = Strategies.selectors

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
export const pickPure: (
  state: State,
  strategy: Strategy | Selector,
  options: {
    readonly random: RandomSource
    readonly mode?: AccessMode | undefined
    readonly avoid?: ReadonlySet<EndpointId> | undefined
  }
) => Result.Result<readonly [EndpointId, State], NoEndpointAvailable> = Strategies.pickPure

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
 * What the balancer publishes about one endpoint (see {@link Snapshot}).
 *
 * @since 0.1.0
 * @category models
 */
export interface EndpointSnapshot {
  readonly id: EndpointId
  readonly weight: number
  readonly priority: number
  readonly role: Role
  readonly health: Health
  readonly breakerOpen: boolean
  readonly draining: boolean
  /** The last timeline (or term) a probe reported, `undefined` before any. */
  readonly timeline: number | undefined
  /** Set while the endpoint is fenced as a stale primary. */
  readonly fenced: Fence | undefined
}

/**
 * The balancer's structural state, as status and the dashboard see it: the
 * strategy and each endpoint's health, role, breaker, drain, fence and
 * weights, without the per-call counters. A new snapshot is published on
 * every change of any of these (and only then: a probe that confirms what was
 * known publishes nothing).
 *
 * @since 0.1.0
 * @category models
 */
export interface Snapshot {
  readonly strategy: Strategy
  /** The highest timeline any probe reported. */
  readonly highestTimeline: number | undefined
  readonly endpoints: ReadonlyArray<EndpointSnapshot>
}

/**
 * A balancer over a {@link State}. Every method is atomic: structural
 * changes run one at a time inside the snapshot's `SubscriptionRef`, and the
 * per-call methods (`pick`, the in-flight and latency counters) change the
 * state synchronously.
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
  /**
   * `pick`, synchronously, drawing from `random` (for code already inside an effect's callback); it
   * moves the same cursor as `pick`.
   *
   * @example
   * ```ts
   * import { Effect, Result } from "effect"
   * import { Balancer } from "@tether/core"
   *
   * const program = Effect.gen(function*() {
   *   const balancer = yield* Balancer.make({ endpoints: [{ id: "ldap://a:389" }, { id: "ldap://b:389" }] })
   *   const picked = balancer.pickUnsafe(Math.random, "read")
   *   return Result.isSuccess(picked) ? picked.success : picked.failure.message
   * })
   * ```
   */
  readonly pickUnsafe: (
    random: () => number,
    mode?: AccessMode,
    options?: PickOptions
  ) => Result.Result<EndpointId, NoEndpointAvailable>
  /** The current state, per-call counters included. */
  readonly state: Effect.Effect<State>
  /** The current published {@link Snapshot}. */
  readonly snapshot: Effect.Effect<Snapshot>
  /**
   * The current {@link Snapshot}, then each new one (from the balancer's
   * `SubscriptionRef`); for status pages and dashboards.
   */
  readonly changes: Stream.Stream<Snapshot>
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
export const make: (options: {
  readonly endpoints: ReadonlyArray<EndpointInit>
  /** Default `"weighted-round-robin"`. */
  readonly strategy?: Strategy | undefined
  /** Smoothing factor of the latency EWMA, in (0, 1] (default 0.3). */
  readonly latencyAlpha?: number | undefined
}) => Effect.Effect<Balancer, InvalidOptions> = Live.make
