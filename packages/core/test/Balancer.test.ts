import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Random from "effect/Random"
import * as Result from "effect/Result"
import * as fc from "fast-check"
import * as Balancer from "../src/Balancer.ts"

type Strategy = Balancer.Strategy | Balancer.Selector

/** A random source replaying `values` in a loop. */
const sequence = (...values: ReadonlyArray<number>): Balancer.RandomSource => {
  let i = 0
  return () => values[i++ % values.length]!
}

const picks = (
  state: Balancer.State,
  strategy: Strategy,
  n: number,
  options: { random?: Balancer.RandomSource; mode?: Balancer.AccessMode } = {}
): { readonly ids: Array<string>; readonly state: Balancer.State } => {
  const ids: Array<string> = []
  for (let i = 0; i < n; i++) {
    const result = Balancer.pickPure(state, strategy, { random: options.random ?? Math.random, mode: options.mode })
    if (Result.isFailure(result)) throw result.failure
    ids.push(result.success[0])
    state = result.success[1]
  }
  return { ids, state }
}

const withHealth = (state: Balancer.State, health: Record<string, Balancer.Health>): Balancer.State =>
  Object.entries(health).reduce((s, [id, h]) => Balancer.updateEndpoint(s, id, (e) => ({ ...e, health: h })), state)

const abc = Balancer.initialState([{ id: "a" }, { id: "b" }, { id: "c" }])

describe("Balancer strategies", () => {
  it("round robin takes each endpoint in turn and skips ineligible ones", () => {
    assert.deepStrictEqual(picks(abc, "round-robin", 7).ids, ["a", "b", "c", "a", "b", "c", "a"])
    const bDown = withHealth(abc, { a: "healthy", b: "unhealthy", c: "healthy" })
    assert.deepStrictEqual(picks(bDown, "round-robin", 4).ids, ["a", "c", "a", "c"])
  })

  it("round robin resumes after the last pick when the eligible set changes", () => {
    let { state } = picks(abc, "round-robin", 1) // picked a
    state = Balancer.updateEndpoint(state, "b", (e) => ({ ...e, breakerOpen: true }))
    assert.deepStrictEqual(picks(state, "round-robin", 3).ids, ["c", "a", "c"])
  })

  it("smooth weighted round robin spreads picks like nginx (5,1,1 → a a b a c a a)", () => {
    const state = Balancer.initialState([{ id: "a", weight: 5 }, { id: "b" }, { id: "c" }])
    const { ids, state: after } = picks(state, "weighted-round-robin", 7)
    assert.deepStrictEqual(ids, ["a", "a", "b", "a", "c", "a", "a"])
    // After a full cycle the running weights are back to zero.
    assert.deepStrictEqual(after.endpoints.map((e) => e.currentWeight), [0, 0, 0])
  })

  it("smooth weighted round robin matches weights 5,3,1,1 within 1% over 10,000 picks", () => {
    const weights = { a: 5, b: 3, c: 1, d: 1 }
    const state = Balancer.initialState(Object.entries(weights).map(([id, weight]) => ({ id, weight })))
    const { ids } = picks(state, "weighted-round-robin", 10_000)
    const counts = new Map<string, number>()
    for (const id of ids) counts.set(id, (counts.get(id) ?? 0) + 1)
    for (const [id, weight] of Object.entries(weights)) {
      const expected = 10_000 * weight / 10
      assert.isAtMost(Math.abs(counts.get(id)! - expected), expected * 0.01, `${id}: ${counts.get(id)}`)
    }
  })

  it("smooth weighted round robin: any weights, every full cycle gives each endpoint exactly its weight", () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 1, max: 20 }), { minLength: 1, maxLength: 6 }), (weights) => {
        const state = Balancer.initialState(weights.map((weight, i) => ({ id: `e${i}`, weight })))
        const total = weights.reduce((a, b) => a + b, 0)
        const { ids } = picks(state, "weighted-round-robin", total * 2)
        for (let cycle = 0; cycle < 2; cycle++) {
          const slice = ids.slice(cycle * total, (cycle + 1) * total)
          weights.forEach((weight, i) => {
            if (slice.filter((id) => id === `e${i}`).length !== weight) throw new Error(`cycle ${cycle}: e${i}`)
          })
        }
      })
    )
  })

  it("least connections picks the fewest in flight per weight, ties in turn", () => {
    let state = Balancer.initialState([{ id: "a" }, { id: "b", weight: 2 }, { id: "c" }])
    state = Balancer.updateEndpoint(state, "a", (e) => ({ ...e, inFlight: 3 }))
    state = Balancer.updateEndpoint(state, "b", (e) => ({ ...e, inFlight: 4 })) // 2 per unit of weight
    state = Balancer.updateEndpoint(state, "c", (e) => ({ ...e, inFlight: 2 }))
    // b (4/2 = 2) ties with c (2/1 = 2): in turn
    assert.deepStrictEqual(picks(state, "least-connections", 3).ids, ["b", "c", "b"])
    assert.deepStrictEqual(picks(abc, "least-connections", 4).ids, ["a", "b", "c", "a"])
  })

  it("random is weighted and driven by the random source", () => {
    const state = Balancer.initialState([{ id: "a", weight: 2 }, { id: "b" }, { id: "c" }])
    // total weight 4: [0, 0.5) → a, [0.5, 0.75) → b, [0.75, 1) → c
    assert.deepStrictEqual(
      picks(state, "random", 5, { random: sequence(0, 0.49, 0.5, 0.74, 0.99) }).ids,
      ["a", "a", "b", "b", "c"]
    )
  })

  it("priority uses the lowest priority value that is usable, weighted among equals", () => {
    const state = Balancer.initialState([
      { id: "backup", priority: 1 },
      { id: "main1", priority: 0, weight: 2 },
      { id: "main2", priority: 0 }
    ])
    assert.deepStrictEqual(picks(state, "priority", 3).ids, ["main1", "main2", "main1"])
    const mainsDown = withHealth(state, { main1: "unhealthy", main2: "unhealthy" })
    assert.deepStrictEqual(picks(mainsDown, "priority", 2).ids, ["backup", "backup"])
  })

  it("replica-preferred reads go to replicas while one is usable, then to the primary; replica-only never", () => {
    const state = Balancer.initialState([
      { id: "pg0", role: "primary" },
      { id: "pg1", role: "replica" },
      { id: "pg2", role: "replica" }
    ])
    assert.deepStrictEqual(picks(state, "round-robin", 4, { mode: "replica-preferred" }).ids, ["pg1", "pg2", "pg1", "pg2"])
    const replicasDown = withHealth(state, { pg1: "unhealthy", pg2: "unhealthy" })
    assert.deepStrictEqual(picks(replicasDown, "round-robin", 2, { mode: "replica-preferred" }).ids, ["pg0", "pg0"])
    const none = Balancer.pickPure(replicasDown, "round-robin", { random: Math.random, mode: "replica-only" })
    assert.isTrue(Result.isFailure(none))
    // A retry that avoids the replica that just failed prefers the primary to that replica.
    const oneReplica = Balancer.initialState([{ id: "pg0", role: "primary" }, { id: "pg1", role: "replica" }])
    const retry = Balancer.eligible(oneReplica, "replica-preferred", new Set(["pg1"]))
    assert.deepStrictEqual(Result.isSuccess(retry) ? retry.success : [], [0])
  })

  it("fastest picks the lowest latency EWMA; no sample counts as slowest", () => {
    let state = Balancer.recordLatency(abc, "b", 20)
    state = Balancer.recordLatency(state, "c", 5)
    assert.deepStrictEqual(picks(state, "fastest", 2).ids, ["c", "c"])
    // EWMA: c gets slower (5 → 5 + 0.3·(105 − 5) = 35) and b becomes the fastest
    state = Balancer.recordLatency(state, "c", 105)
    assert.strictEqual(state.endpoints[2]!.latency, 35)
    assert.deepStrictEqual(picks(state, "fastest", 1).ids, ["b"])
    // Nobody measured: in turn
    assert.deepStrictEqual(picks(abc, "fastest", 3).ids, ["a", "b", "c"])
  })

  it("power of two choices draws two distinct endpoints and takes the less loaded", () => {
    let state = Balancer.initialState([{ id: "a" }, { id: "b" }, { id: "c" }, { id: "d" }])
    state = Balancer.updateEndpoint(state, "a", (e) => ({ ...e, inFlight: 5 }))
    state = Balancer.updateEndpoint(state, "c", (e) => ({ ...e, inFlight: 1 }))
    // first draw: index floor(0·4) = 0 (a); second: floor(0.5·3) = 1, ≥ 0 so shifted to 2 (c) → c (1 < 5)
    assert.deepStrictEqual(picks(state, "power-of-two", 1, { random: sequence(0, 0.5) }).ids, ["c"])
    // a vs b: b has 0 in flight
    assert.deepStrictEqual(picks(state, "power-of-two", 1, { random: sequence(0, 0) }).ids, ["b"])
    // tie (b vs d, both 0): the first drawn
    assert.deepStrictEqual(picks(state, "power-of-two", 1, { random: sequence(0.99, 0.4) }).ids, ["d"])
    // never the same endpoint twice, even with the largest draws
    const single = Balancer.initialState([{ id: "x" }])
    assert.deepStrictEqual(picks(single, "power-of-two", 2, { random: sequence(0.99) }).ids, ["x", "x"])
  })
})

describe("Balancer eligibility", () => {
  it("prefers healthy endpoints, then degraded and unknown ones", () => {
    const state = withHealth(abc, { a: "degraded", b: "healthy", c: "unknown" })
    assert.deepStrictEqual(picks(state, "round-robin", 3).ids, ["b", "b", "b"])
    const noneHealthy = withHealth(abc, { a: "degraded", b: "unhealthy", c: "unknown" })
    assert.deepStrictEqual(picks(noneHealthy, "round-robin", 3).ids, ["a", "c", "a"])
  })

  it("skips open breakers even on healthy endpoints", () => {
    let state = withHealth(abc, { a: "healthy", b: "healthy", c: "degraded" })
    state = Balancer.updateEndpoint(state, "a", (e) => ({ ...e, breakerOpen: true }))
    state = Balancer.updateEndpoint(state, "b", (e) => ({ ...e, breakerOpen: true }))
    assert.deepStrictEqual(picks(state, "round-robin", 2).ids, ["c", "c"])
  })

  it("a write pick only considers primary and any endpoints", () => {
    const state = Balancer.initialState([
      { id: "r1", role: "replica" },
      { id: "p", role: "primary" },
      { id: "r2", role: "replica" }
    ])
    assert.deepStrictEqual(picks(state, "round-robin", 2, { mode: "write" }).ids, ["p", "p"])
    assert.deepStrictEqual(picks(state, "round-robin", 3, { mode: "read" }).ids, ["r1", "p", "r2"])
  })

  it("avoid is a preference: other eligible endpoints first, the avoided ones as a last resort", () => {
    const state = withHealth(abc, { a: "healthy", b: "degraded", c: "unhealthy" })
    const pick = (avoid: ReadonlyArray<string>) =>
      Balancer.pickPure(state, "round-robin", { random: Math.random, avoid: new Set(avoid) })
    assert.deepStrictEqual(Result.map(pick(["a"]), ([id]) => id), Result.succeed("b"))
    assert.deepStrictEqual(Result.map(pick(["a", "b"]), ([id]) => id), Result.succeed("a"))
  })

  it("fails with NoEndpointAvailable saying why each endpoint was excluded", () => {
    let state = Balancer.initialState([
      { id: "ldap://a", role: "primary" },
      { id: "ldap://b", role: "any" },
      { id: "ldap://c", role: "replica" }
    ])
    state = withHealth(state, { "ldap://a": "unhealthy", "ldap://b": "healthy", "ldap://c": "healthy" })
    state = Balancer.updateEndpoint(state, "ldap://b", (e) => ({ ...e, breakerOpen: true }))
    const result = Balancer.pickPure(state, "round-robin", { random: Math.random, mode: "write" })
    assert.isTrue(Result.isFailure(result))
    const error = (result as Result.Failure<never, Balancer.NoEndpointAvailable>).failure
    assert.strictEqual(error._tag, "NoEndpointAvailable")
    assert.deepStrictEqual(error.exclusions, [
      { endpoint: "ldap://a", reason: "unhealthy" },
      { endpoint: "ldap://b", reason: "breaker open" },
      { endpoint: "ldap://c", reason: "replica (does not accept writes)" }
    ])
    assert.strictEqual(
      error.message,
      "no endpoint available for write: ldap://a: unhealthy; ldap://b: breaker open; " +
        "ldap://c: replica (does not accept writes). " +
        "Wait for a health probe to succeed or a breaker to half-open, or add endpoints"
    )
  })

  it("with no endpoints at all, says so", () => {
    const result = Balancer.pickPure(Balancer.initialState([]), "round-robin", { random: Math.random })
    assert.isTrue(Result.isFailure(result))
    assert.strictEqual(
      (result as Result.Failure<never, Balancer.NoEndpointAvailable>).failure.message,
      "no endpoint available: none is configured; add at least one endpoint"
    )
  })

  it("no strategy ever picks an excluded endpoint (property)", () => {
    const strategies = Object.keys(Balancer.selectors) as Array<Balancer.Strategy>
    const endpoint = fc.record({
      health: fc.constantFrom<Balancer.Health>("healthy", "degraded", "unhealthy", "unknown"),
      breakerOpen: fc.boolean(),
      role: fc.constantFrom("primary" as const, "replica" as const, "any" as const),
      weight: fc.integer({ min: 1, max: 5 }),
      inFlight: fc.nat(5)
    })
    fc.assert(
      fc.property(
        fc.array(endpoint, { minLength: 1, maxLength: 6 }),
        fc.constantFrom(...strategies),
        fc.constantFrom<Balancer.AccessMode>("read", "write"),
        fc.double({ min: 0, max: 0.999, noNaN: true }),
        (specs, strategy, mode, r) => {
          let state = Balancer.initialState(specs.map((s, i) => ({ id: `e${i}`, weight: s.weight, role: s.role })))
          specs.forEach((s, i) => {
            state = Balancer.updateEndpoint(state, `e${i}`, (e) => ({ ...e, ...s }))
          })
          const usable = specs.filter((s) => !s.breakerOpen && s.health !== "unhealthy" && (mode === "read" || s.role !== "replica"))
          const anyHealthy = usable.some((s) => s.health === "healthy")
          for (let i = 0; i < 10; i++) {
            const result = Balancer.pickPure(state, strategy, { random: () => r, mode })
            if (Result.isFailure(result)) {
              if (usable.length > 0) throw new Error("failed although an endpoint was usable")
              return
            }
            const picked = specs[Number(result.success[0].slice(1))]!
            if (!usable.includes(picked)) throw new Error(`picked an excluded endpoint with ${strategy}`)
            if (anyHealthy && picked.health !== "healthy") throw new Error("picked a non-healthy endpoint")
            state = result.success[1]
          }
        }
      )
    )
  })
})

describe("Balancer service", () => {
  it.effect("picks through a Ref and tracks health, breakers and roles", () =>
    Effect.gen(function*() {
      const balancer = yield* Balancer.make({
        strategy: "round-robin",
        endpoints: [{ id: "a", role: "primary" }, { id: "b", role: "replica" }, { id: "c" }]
      })
      assert.strictEqual(balancer.strategy, "round-robin")
      assert.deepStrictEqual(
        [yield* balancer.pick(), yield* balancer.pick(), yield* balancer.pick()],
        ["a", "b", "c"]
      )
      yield* balancer.setHealth("a", "unhealthy")
      yield* balancer.setBreakerOpen("c", true)
      const error = yield* Effect.flip(balancer.pick("write"))
      assert.strictEqual(
        error.message,
        "no endpoint available for write: a: unhealthy; b: replica (does not accept writes); c: breaker open. " +
          "Wait for a health probe to succeed or a breaker to half-open, or add endpoints"
      )
      // b is promoted
      yield* balancer.setRole("b", "primary")
      assert.strictEqual(yield* balancer.pick("write"), "b")
      yield* balancer.setBreakerOpen("c", false)
      yield* balancer.remove("b")
      assert.strictEqual(yield* balancer.pick("write"), "c")
      yield* balancer.add({ id: "d", weight: 2 })
      const state = yield* balancer.state
      assert.deepStrictEqual(state.endpoints.map((e) => [e.id, e.weight]), [["a", 1], ["c", 1], ["d", 2]])
    }))

  it.effect("pickUnsafe shares pick's cursor and draws from the random source it is given", () =>
    Effect.gen(function*() {
      const balancer = yield* Balancer.make({ strategy: "round-robin", endpoints: [{ id: "a" }, { id: "b" }, { id: "c" }] })
      const unsafe = () => {
        const result = balancer.pickUnsafe(Math.random)
        return Result.isSuccess(result) ? result.success : `failed: ${result.failure._tag}`
      }
      // One cursor: the two ways of picking take turns without repeating or skipping an endpoint.
      assert.deepStrictEqual([unsafe(), yield* balancer.pick(), unsafe(), yield* balancer.pick()], ["a", "b", "c", "a"])
      const weighted = yield* Balancer.make({ strategy: "random", endpoints: [{ id: "x", weight: 1 }, { id: "y", weight: 3 }] })
      const draw = (r: number) => Result.getOrThrow(weighted.pickUnsafe(() => r))
      assert.deepStrictEqual([draw(0.1), draw(0.3), draw(0.9)], ["x", "y", "y"])
      yield* balancer.setHealth("a", "unhealthy")
      yield* balancer.setHealth("b", "unhealthy")
      yield* balancer.setHealth("c", "unhealthy")
      const refused = balancer.pickUnsafe(Math.random, "read")
      assert.isTrue(Result.isFailure(refused) && refused.failure._tag === "NoEndpointAvailable")
    }))

  it.effect("least connections follows in-flight counts maintained by withInFlight", () =>
    Effect.gen(function*() {
      const balancer = yield* Balancer.make({ strategy: "least-connections", endpoints: [{ id: "a" }, { id: "b" }] })
      const inside = yield* balancer.withInFlight("a")(
        Effect.gen(function*() {
          const state = yield* balancer.state
          return [state.endpoints[0]!.inFlight, yield* balancer.pick(), yield* balancer.pick()] as const
        })
      )
      assert.deepStrictEqual(inside, [1, "b", "b"])
      assert.strictEqual((yield* balancer.state).endpoints[0]!.inFlight, 0)
      // released even on failure
      yield* Effect.exit(balancer.withInFlight("b")(Effect.fail("boom")))
      assert.strictEqual((yield* balancer.state).endpoints[1]!.inFlight, 0)
    }))

  it.effect("fastest uses recorded latencies with the configured EWMA factor", () =>
    Effect.gen(function*() {
      const balancer = yield* Balancer.make({ strategy: "fastest", latencyAlpha: 1, endpoints: [{ id: "a" }, { id: "b" }] })
      yield* balancer.recordLatency("a", 10)
      yield* balancer.recordLatency("b", 50)
      assert.strictEqual(yield* balancer.pick(), "a")
      yield* balancer.recordLatency("a", 100) // alpha 1: the EWMA is the last sample
      assert.strictEqual(yield* balancer.pick(), "b")
    }))

  it.effect("random strategies use Effect's Random service (seeded: reproducible)", () =>
    Effect.gen(function*() {
      const run = Effect.gen(function*() {
        const balancer = yield* Balancer.make({
          strategy: "random",
          endpoints: [{ id: "a" }, { id: "b" }, { id: "c" }, { id: "d" }]
        })
        const ids: Array<string> = []
        for (let i = 0; i < 20; i++) ids.push(yield* balancer.pick())
        return ids
      })
      const first = yield* Random.withSeed(run, "tether")
      const second = yield* Random.withSeed(run, "tether")
      assert.deepStrictEqual(first, second)
      assert.isAbove(new Set(first).size, 1)
    }))
})

describe("Balancer fencing (split brain)", () => {
  const healthy = (state: Balancer.State) =>
    withHealth(state, Object.fromEntries(state.endpoints.map((e) => [e.id, "healthy" as const])))
  const writes = (state: Balancer.State, n = 6) => {
    const ids: Array<string> = []
    for (let i = 0; i < n; i++) {
      const result = Balancer.pickPure(state, "round-robin", { random: Math.random, mode: "write" })
      if (Result.isFailure(result)) return { ids, error: result.failure }
      ids.push(result.success[0])
      state = result.success[1]
    }
    return { ids, error: undefined }
  }
  const ab = () => healthy(Balancer.initialState([{ id: "a", role: "primary" }, { id: "b", role: "replica" }]))

  it("the old primary on an older timeline is fenced when the promoted one reports a newer timeline", () => {
    let state = Balancer.observe(ab(), "a", { role: "primary", timeline: 1 }).state
    state = Balancer.observe(state, "b", { role: "replica", timeline: 1 }).state
    assert.deepStrictEqual(writes(state).ids, ["a", "a", "a", "a", "a", "a"])
    // Failover: b is promoted to timeline 2 (a may be down or not: it is fenced either way).
    const promoted = Balancer.observe(state, "b", { role: "primary", timeline: 2 })
    assert.deepStrictEqual(promoted.fenced, [{ endpoint: "a", timeline: 1, highest: 2, sameTimeline: false }])
    state = promoted.state
    assert.deepStrictEqual(writes(state).ids, ["b", "b", "b", "b", "b", "b"])
    // a comes back outside recovery, still claiming primary on timeline 1: still fenced, not announced again.
    const back = Balancer.observe(state, "a", { role: "primary", timeline: 1 })
    assert.deepStrictEqual(back.fenced, [])
    state = back.state
    assert.deepStrictEqual(writes(state).ids, ["b", "b", "b", "b", "b", "b"])
    // A fenced endpoint gets no reads either.
    assert.deepStrictEqual(picks(state, "round-robin", 4).ids, ["b", "b", "b", "b"])
  })

  it("the order of the probes does not matter: the stale claim is fenced when it is seen after the new one", () => {
    let state = Balancer.observe(ab(), "b", { role: "primary", timeline: 2 }).state
    const stale = Balancer.observe(state, "a", { role: "primary", timeline: 1 })
    assert.deepStrictEqual(stale.fenced.map((f) => f.endpoint), ["a"])
    state = stale.state
    assert.deepStrictEqual(writes(state).ids, ["b", "b", "b", "b", "b", "b"])
  })

  it("a fenced endpoint that rejoins as a replica is no longer fenced (and takes reads, not writes)", () => {
    let state = Balancer.observe(ab(), "a", { role: "primary", timeline: 1 }).state
    state = Balancer.observe(state, "b", { role: "primary", timeline: 2 }).state
    state = Balancer.observe(state, "a", { role: "replica", timeline: 2 }).state
    const a = state.endpoints.find((e) => e.id === "a")!
    assert.strictEqual(a.fenced, undefined)
    assert.deepStrictEqual(writes(state).ids, ["b", "b", "b", "b", "b", "b"])
    assert.deepStrictEqual(picks(state, "round-robin", 4).ids, ["a", "b", "a", "b"])
  })

  it("two primaries on the same timeline: the first claimant keeps the writes, the second is fenced", () => {
    let state = Balancer.observe(ab(), "b", { role: "primary", timeline: 3 }).state
    const second = Balancer.observe(state, "a", { role: "primary", timeline: 3 })
    assert.deepStrictEqual(second.fenced, [{ endpoint: "a", timeline: 3, highest: 3, sameTimeline: true }])
    state = second.state
    // Re-probing either does not flip the winner.
    state = Balancer.observe(state, "b", { role: "primary", timeline: 3 }).state
    state = Balancer.observe(state, "a", { role: "primary", timeline: 3 }).state
    assert.deepStrictEqual(writes(state).ids, ["b", "b", "b", "b", "b", "b"])
  })

  it("a fenced endpoint promoted again to a newer timeline wins, and fences the other", () => {
    let state = Balancer.observe(ab(), "a", { role: "primary", timeline: 1 }).state
    state = Balancer.observe(state, "b", { role: "primary", timeline: 2 }).state
    const again = Balancer.observe(state, "a", { role: "primary", timeline: 3 })
    assert.deepStrictEqual(again.fenced.map((f) => f.endpoint), ["b"])
    assert.deepStrictEqual(writes(again.state).ids, ["a", "a", "a", "a", "a", "a"])
  })

  it("once timelines are known, a write needs the endpoint's own timeline to be the newest", () => {
    // Three endpoints; c was declared primary but never probed yet.
    let state = healthy(Balancer.initialState([{ id: "a", role: "primary" }, { id: "b" }, { id: "c", role: "primary" }]))
    // No timeline reported anywhere (e.g. LDAP): the fencing rule is inert.
    assert.deepStrictEqual(writes(state, 3).ids, ["a", "b", "c"])
    state = Balancer.observe(state, "a", { role: "primary", timeline: 4 }).state
    // b and c were not probed yet: one of them may be a newer primary, so a waits too.
    const waiting = writes(state, 1).error!
    assert.match(waiting.message, /a: waiting for b to be probed/)
    assert.match(waiting.message, /c: timeline not checked yet \(the newest is 4\)/)
    assert.match(waiting.message, /b: timeline not checked yet/)
    state = Balancer.observe(state, "b", { role: "replica", timeline: 4 }).state
    state = Balancer.observe(state, "c", { role: "replica", timeline: 3 }).state
    assert.deepStrictEqual(writes(state, 3).ids, ["a", "a", "a"])
  })

  it("an endpoint back from unhealthy takes writes only once every other reachable endpoint was probed again", () => {
    let state = Balancer.observe(ab(), "a", { role: "primary", timeline: 1 }).state
    state = Balancer.observe(state, "b", { role: "replica", timeline: 1 }).state
    assert.deepStrictEqual(writes(state, 2).ids, ["a", "a"])
    // a goes down; meanwhile b is promoted, but its next probe has not run yet when a comes back.
    state = Balancer.setHealth(state, "a", "unhealthy")
    state = Balancer.observe(state, "a", { role: "primary", timeline: 1 }).state
    state = Balancer.setHealth(state, "a", "healthy")
    const held = writes(state, 1).error!
    assert.match(held.message, /a: waiting for b to be probed \(another endpoint may have been promoted\)/)
    // b's probe shows the promotion: a is fenced, b takes the writes.
    const promoted = Balancer.observe(state, "b", { role: "primary", timeline: 2 })
    assert.deepStrictEqual(promoted.fenced.map((f) => f.endpoint), ["a"])
    assert.deepStrictEqual(writes(promoted.state, 2).ids, ["b", "b"])
    // Had b not been promoted, its probe would have released a.
    const notPromoted = Balancer.observe(state, "b", { role: "replica", timeline: 1 }).state
    assert.deepStrictEqual(writes(notPromoted, 2).ids, ["a", "a"])
    // An unreachable endpoint does not hold the others back.
    const bDown = Balancer.setHealth(state, "b", "unhealthy")
    assert.deepStrictEqual(writes(bDown, 2).ids, ["a", "a"])
  })

  it("unfence lifts the fence on the operator's word; a conflicting claim fences again on the next probe", () => {
    let state = Balancer.observe(ab(), "a", { role: "primary", timeline: 1 }).state
    state = Balancer.observe(state, "b", { role: "primary", timeline: 2 }).state
    // b still claims timeline 2: unfencing a is undone by b's next probe.
    let lifted = Balancer.unfence(state, "a")
    assert.isTrue(lifted.unfenced)
    state = Balancer.observe(lifted.state, "b", { role: "primary", timeline: 2 }).state
    assert.deepStrictEqual(state.endpoints.find((e) => e.id === "a")!.fenced?.timeline, 1)
    // The cluster is rebuilt around a: b is now a replica; the operator unfences a.
    state = Balancer.observe(state, "b", { role: "replica", timeline: 1 }).state
    assert.deepStrictEqual(writes(state, 1).ids, [])
    lifted = Balancer.unfence(state, "a")
    assert.isTrue(lifted.unfenced)
    assert.isFalse(Balancer.unfence(lifted.state, "a").unfenced)
    state = Balancer.observe(lifted.state, "a", { role: "primary", timeline: 1 }).state
    state = Balancer.observe(state, "b", { role: "replica", timeline: 1 }).state
    assert.deepStrictEqual(writes(state, 3).ids, ["a", "a", "a"])
  })

  it("whatever the probes report, in any order, at most one endpoint is writable: the first to claim the newest timeline (property)", () => {
    const ids = ["a", "b", "c", "d"]
    const event = fc.record({
      id: fc.constantFrom(...ids),
      role: fc.constantFrom("primary" as const, "replica" as const),
      timeline: fc.integer({ min: 1, max: 5 })
    })
    fc.assert(
      fc.property(fc.array(event, { maxLength: 40 }), (events) => {
        let state = healthy(Balancer.initialState(ids.map((id) => ({ id, role: "replica" as const }))))
        for (const e of events) {
          state = Balancer.observe(state, e.id, { role: e.role, timeline: e.timeline }).state
          const writable = state.endpoints.filter((x) => {
            const r = Balancer.eligible(state, "write")
            return Result.isSuccess(r) && r.success.some((i) => state.endpoints[i]!.id === x.id)
          })
          if (writable.length > 1) return false
          const highest = Math.max(...state.endpoints.map((x) => x.timeline ?? 0))
          for (const w of writable) {
            // The writable one claims primary on the highest timeline reported so far.
            if (w.role !== "primary" || w.timeline !== highest || w.fenced !== undefined) return false
          }
          // A primary that claimed an older timeline is never writable, fenced or not.
          for (const x of state.endpoints) {
            if (x.role === "primary" && x.timeline !== undefined && x.timeline < state.highestTimeline! && x.fenced === undefined) return false
          }
        }
        return true
      }),
      { numRuns: 2_000 }
    )
  })
})
