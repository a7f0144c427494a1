/**
 * The live balancer: the current `State` and its published `Snapshot`.
 *
 * Two kinds of change, two paths:
 *
 * - Structural changes (health, breakers, roles, fences, drains, weights,
 *   endpoints, strategy) go through the `SubscriptionRef` of the snapshot:
 *   each runs inside the ref's permit, changes the state and publishes the
 *   new snapshot (or nothing when the view did not change), so subscribers
 *   (`changes`) see every change, in order.
 * - The per-call path (`pick`, in-flight counters, latency samples) reads
 *   and writes the current state synchronously, as a plain field, and
 *   publishes nothing: a `SubscriptionRef` update takes a permit and a
 *   publish per call, which the serverset bench would pay on every
 *   operation. The snapshot does not show these counters (status reads
 *   them from `state`).
 *
 * The state field is only ever replaced by synchronous code (one fiber runs
 * at a time), so the per-call path needs no lock; a structural change
 * recomputes from the state current inside the permit, so it never loses a
 * pick's update (nor a pick one of its).
 *
 * @internal
 */
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Random from "effect/Random"
import * as Result from "effect/Result"
import * as SubscriptionRef from "effect/SubscriptionRef"
import type { Balancer, EndpointInit, EndpointState, Snapshot, State, Strategy } from "../../Balancer.ts"
import type { EndpointId } from "../../Endpoint.ts"
import type { InvalidOptions } from "../../Validation.ts"
import * as Ewma from "../ewma.ts"
import { observe, unfence } from "./fencing.ts"
import * as View from "./snapshot.ts"
import { addEndpoint, initialState, removeEndpoint, setHealth, updateEndpoint } from "./state.ts"
import { checkStrategy, pickPure, selectors } from "./strategies.ts"

type Mutable<T> = { -readonly [K in keyof T]: T[K] }

/** @internal */
export const make = (options: {
  readonly endpoints: ReadonlyArray<EndpointInit>
  readonly strategy?: Strategy | undefined
  readonly latencyAlpha?: number | undefined
}): Effect.Effect<Balancer, InvalidOptions> =>
  Effect.suspend(() => {
    const initialStrategy = options.strategy ?? "weighted-round-robin"
    const invalid = checkStrategy(initialStrategy)
    if (invalid !== undefined) return Effect.fail(invalid)
    const state = initialState(options.endpoints)
    return Effect.map(
      SubscriptionRef.make(View.of(initialStrategy, state, undefined)),
      (published) => live(published, state, initialStrategy, options.latencyAlpha ?? Ewma.defaultAlpha)
    )
  })

const live = (
  published: SubscriptionRef.SubscriptionRef<Snapshot>,
  initial: State,
  initialStrategy: Strategy,
  alpha: number
): Balancer => {
  let state = initial
  let strategy = initialStrategy
  let select = selectors[strategy]

  /**
   * A structural change: `f` runs inside the snapshot's permit on the
   * current state; the snapshot is published when its view changed.
   */
  const structural = <A>(f: (state: State) => readonly [A, State]): Effect.Effect<A> =>
    SubscriptionRef.modifySome(published, (previous) => {
      const [a, next] = f(state)
      state = next
      const snapshot = View.of(strategy, state, previous)
      return [a, snapshot === previous ? Option.none() : Option.some(snapshot)]
    })
  const modifyEndpoint = (id: EndpointId, f: (e: EndpointState) => EndpointState) =>
    structural((s) => [undefined, updateEndpoint(s, id, f)] as const)

  // The per-call counters change in place on the current state's endpoint
  // object: every call would otherwise copy the state three times. Picks
  // copy the endpoint objects they change, so a later update still lands
  // on the current one.
  const current = (id: EndpointId) => state.endpoints.find((e) => e.id === id) as Mutable<EndpointState> | undefined
  /** Who waits for an endpoint to have nothing in flight (see `whenIdle`). */
  const idleWaiters = new Map<EndpointId, Set<() => void>>()
  const wakeIdle = (id: EndpointId) => {
    const waiters = idleWaiters.get(id)
    if (waiters === undefined) return
    idleWaiters.delete(id)
    for (const wake of waiters) wake()
  }
  const pickUnsafe: Balancer["pickUnsafe"] = (random, mode, pickOptions) => {
    const result = pickPure(state, select, { random, mode, avoid: pickOptions?.avoid })
    if (Result.isFailure(result)) return Result.fail(result.failure)
    state = result.success[1]
    return Result.succeed(result.success[0])
  }
  const addInFlightUnsafe = (id: EndpointId, delta: number) => {
    const e = current(id)
    if (e !== undefined) {
      e.inFlight = Math.max(0, e.inFlight + delta)
      if (e.inFlight === 0 && idleWaiters.size > 0) wakeIdle(id)
    }
  }
  const recordLatencyUnsafe = (id: EndpointId, millis: number) => {
    const e = current(id)
    if (e !== undefined) e.latency = Ewma.next(e.latency, millis, alpha)
  }

  return {
    get strategy() {
      return strategy
    },
    setStrategy: (next) =>
      Effect.suspend(() => {
        const invalid = checkStrategy(next)
        if (invalid !== undefined) return Effect.fail(invalid)
        return structural((s) => {
          strategy = next
          select = selectors[next]
          return [undefined, s] as const
        })
      }),
    whenIdle: (id) =>
      Effect.callback<void>((resume) => {
        const e = current(id)
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
    pickUnsafe,
    // One fiber step per pick (it runs on every call): the fiber's `Random` is read in place.
    pick: (mode, pickOptions) =>
      Effect.withFiber((fiber) => {
        const rng = fiber.getRef(Random.Random)
        const result = pickUnsafe(() => rng.nextDoubleUnsafe(), mode, pickOptions)
        return Result.isFailure(result) ? Effect.fail(result.failure) : Effect.succeed(result.success)
      }),
    state: Effect.sync(() => state),
    snapshot: SubscriptionRef.get(published),
    changes: SubscriptionRef.changes(published),
    setHealth: (id, health) => structural((s) => [undefined, setHealth(s, id, health)] as const),
    setBreakerOpen: (id, open) => modifyEndpoint(id, (e) => (e.breakerOpen === open ? e : { ...e, breakerOpen: open })),
    setRole: (id, role) => modifyEndpoint(id, (e) => (e.role === role ? e : { ...e, role })),
    observe: (id, observation) =>
      structural((s) => {
        const result = observe(s, id, observation)
        return [result.fenced, result.state] as const
      }),
    unfence: (id) =>
      structural((s) => {
        const result = unfence(s, id)
        return [result.unfenced, result.state] as const
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
    add: (endpoint) => structural((s) => [undefined, addEndpoint(s, endpoint)] as const),
    remove: (id) =>
      Effect.andThen(
        structural((s) => [undefined, removeEndpoint(s, id)] as const),
        Effect.sync(() => wakeIdle(id))
      )
  }
}
