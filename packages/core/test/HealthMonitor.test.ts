import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Logger from "effect/Logger"
import * as Metric from "effect/Metric"
import * as Random from "effect/Random"
import * as Schedule from "effect/Schedule"
import * as Scope from "effect/Scope"
import { TestClock } from "effect/testing"
import * as HealthMonitor from "../src/HealthMonitor.ts"

type Step = { readonly latency: number } | { readonly fail: string } | "never" | "die"

/** A probe that follows a script, one step per probe (the last step repeats). */
const scripted = (steps: ReadonlyArray<Step>) => {
  let calls = 0
  const probe = Effect.suspend((): Effect.Effect<HealthMonitor.ProbeResult, Error> => {
    const step = steps[Math.min(calls++, steps.length - 1)]!
    if (step === "never") return Effect.never
    if (step === "die") return Effect.die(new Error("probe bug"))
    if ("fail" in step) return Effect.fail(new Error(step.fail))
    return Effect.succeed({ latency: step.latency })
  })
  return { probe, calls: () => calls }
}

let endpoints = 0
const endpoint = () => `ldap://health-${++endpoints}:389`

/** Lets the monitor's fiber run the probe due now. */
const settle = Effect.andThen(Effect.yieldNow, Effect.yieldNow)

const thresholds: HealthMonitor.Thresholds = {
  degradedLatency: 100,
  unhealthyAfter: 3,
  healthyAfter: 2,
  latencyAlpha: 0.5
}

describe("HealthMonitor.classify", () => {
  const ok = (latency: number): HealthMonitor.Outcome => ({ _tag: "Success", latency, at: 1 })
  const ko: HealthMonitor.Outcome = { _tag: "Failure", error: "refused", timedOut: false, at: 1 }
  const apply = (outcomes: ReadonlyArray<HealthMonitor.Outcome>) =>
    outcomes.reduce(
      (states, outcome) => [...states, HealthMonitor.classify(states[states.length - 1]!, outcome, thresholds)],
      [HealthMonitor.initialState("x")]
    )

  it("walks unknown → healthy → degraded (latency) → degraded (failures) → unhealthy → healthy", () => {
    const states = apply([ok(20), ok(300), ok(20), ko, ko, ko, ko, ok(10), ok(10)])
    assert.deepStrictEqual(states.map((s) => s.status), [
      "unknown",
      "healthy", // ewma 20
      "degraded", // ewma 160 > 100
      "healthy", // ewma 90
      "degraded", // 1 failure
      "degraded", // 2 failures
      "unhealthy", // 3 failures
      "unhealthy",
      "unhealthy", // 1 success of the 2 needed
      "healthy"
    ])
    const last = states[states.length - 1]!
    assert.deepStrictEqual(
      last,
      {
        endpoint: "x",
        status: "healthy",
        lastLatency: 10,
        latencyEwma: 30,
        consecutiveFailures: 0,
        consecutiveSuccesses: 2,
        lastError: "refused",
        lastProbeAt: 1,
        probes: 9,
        failures: 4,
        restarts: 0,
        probeAuthFailure: undefined,
        probeAuthFailures: 0
      }
    )
  })
})

describe("HealthMonitor", () => {
  it.effect("classifies probes on the schedule and publishes every change", () =>
    Effect.gen(function*() {
      const { probe, calls } = scripted([
        { latency: 10 },
        { latency: 500 },
        { latency: 10 },
        { fail: "connection refused" },
        { fail: "connection refused" },
        { fail: "connection refused" },
        { fail: "connection refused" },
        { latency: 20 }
      ])
      const unhealthy: Array<HealthMonitor.HealthState> = []
      const id = endpoint()
      const monitor = yield* HealthMonitor.make({
        endpoint: id,
        probe,
        schedule: Schedule.spaced("1 second"),
        degradedLatency: "100 millis",
        latencyAlpha: 1,
        unhealthyAfter: 3,
        onUnhealthy: (state) => Effect.sync(() => unhealthy.push(state))
      })
      assert.strictEqual((yield* monitor.get).status, "unknown")
      const seen: Array<string> = []
      yield* settle
      seen.push((yield* monitor.get).status)
      for (let i = 0; i < 7; i++) {
        yield* TestClock.adjust("1 second")
        seen.push((yield* monitor.get).status)
      }
      assert.deepStrictEqual(seen, [
        "healthy",
        "degraded", // slow
        "healthy",
        "degraded", // 1 failure
        "degraded",
        "unhealthy", // 3 in a row
        "unhealthy",
        "healthy"
      ])
      assert.strictEqual(calls(), 8)
      assert.strictEqual(unhealthy.length, 1, "onUnhealthy runs once per transition into unhealthy")
      assert.strictEqual(unhealthy[0]!.consecutiveFailures, 3)
      const state = yield* monitor.get
      assert.strictEqual(state.lastError, "connection refused")
      assert.strictEqual(state.lastProbeAt, 7000)
      assert.strictEqual(state.lastLatency, 20)
      assert.strictEqual(state.failures, 4)

      const snapshots = yield* Metric.snapshot
      const latency = snapshots.find((s) => s.id === "tether_health_probe_latency_ms" && s.attributes?.endpoint === id)
      assert.strictEqual((latency?.state as { count: number }).count, 4)
      const gauge = (status: string) =>
        (snapshots.find((s) =>
          s.id === "tether_endpoint_health" && s.attributes?.endpoint === id && s.attributes?.status === status
        )?.state as { value: number } | undefined)?.value
      assert.deepStrictEqual([gauge("healthy"), gauge("unhealthy"), gauge("unknown")], [1, 0, 0])
    }))

  it.effect("a probe that times out is a failed probe", () =>
    Effect.gen(function*() {
      const { probe } = scripted(["never"])
      const monitor = yield* HealthMonitor.make({
        endpoint: endpoint(),
        probe,
        timeout: "500 millis",
        schedule: Schedule.spaced("1 second"),
        unhealthyAfter: 2
      })
      yield* settle
      yield* TestClock.adjust("499 millis")
      assert.strictEqual((yield* monitor.get).status, "unknown")
      yield* TestClock.adjust("1 millis")
      let state = yield* monitor.get
      assert.strictEqual(state.status, "degraded")
      assert.strictEqual(state.lastError, "health probe timed out after 500ms")
      // next probe starts 1s after the previous one ended, and times out 500ms later
      yield* TestClock.adjust("1500 millis")
      state = yield* monitor.get
      assert.strictEqual(state.status, "unhealthy")
      assert.strictEqual(state.consecutiveFailures, 2)
    }))

  it.effect("a probe whose credentials are rejected: the server answered, so it stays healthy; reported in state, log and metric", () =>
    Effect.gen(function*() {
      const { probe } = scripted([{ fail: "bind rejected (49)" }, { fail: "bind rejected (49)" }, { fail: "refused" }, { latency: 5 }])
      const id = endpoint()
      const logs: Array<string> = []
      const monitor = yield* HealthMonitor.make({
        endpoint: id,
        probe,
        schedule: Schedule.spaced("1 second"),
        unhealthyAfter: 1,
        isAuthFailure: (error) => error.message.includes("bind rejected")
      }).pipe(Effect.provide(Logger.layer([Logger.make((o) => logs.push(`${o.logLevel} ${String(o.message)}`))])))
      yield* settle
      let state = yield* monitor.get
      assert.strictEqual(state.status, "healthy")
      assert.strictEqual(state.probeAuthFailure, "bind rejected (49)")
      yield* TestClock.adjust("1 second")
      state = yield* monitor.get
      assert.strictEqual(state.status, "healthy")
      assert.strictEqual(state.probeAuthFailures, 2)
      // A real failure still counts.
      yield* TestClock.adjust("1 second")
      assert.strictEqual((yield* monitor.get).status, "unhealthy")
      yield* TestClock.adjust("1 second")
      state = yield* monitor.get
      assert.strictEqual(state.status, "healthy")
      assert.isUndefined(state.probeAuthFailure)
      assert.strictEqual(logs.filter((l) => l.includes("credentials rejected")).length, 1, "one WARN, not one per probe")
      assert.isTrue(logs.some((l) => l.startsWith("Warn") && l.includes("credentials rejected")))
      const counted = (yield* Metric.snapshot).find((m) =>
        m.id === "tether_probe_auth_failures_total" && m.attributes?.["endpoint"] === id
      )
      assert.strictEqual((counted?.state as { count?: number } | undefined)?.count, 2)
    }))

  it.effect("restarts the loop after a defect, with backoff, and counts restarts", () =>
    Effect.gen(function*() {
      const { probe, calls } = scripted([{ latency: 1 }, "die", "die", { latency: 1 }])
      const monitor = yield* HealthMonitor.make({
        endpoint: endpoint(),
        probe,
        schedule: Schedule.spaced("1 second"),
        restartSchedule: Schedule.exponential("10 seconds")
      })
      yield* settle
      assert.strictEqual((yield* monitor.get).status, "healthy")
      yield* TestClock.adjust("1 second") // dies; restart in 10s
      let state = yield* monitor.get
      assert.strictEqual(state.restarts, 1)
      assert.strictEqual(state.lastError, "health probe loop crashed: probe bug")
      assert.strictEqual(state.status, "healthy", "a crash says nothing about the server")
      yield* TestClock.adjust("9999 millis")
      assert.strictEqual(calls(), 2)
      yield* TestClock.adjust("1 millis") // restarted: dies again at once; next restart in 20s
      state = yield* monitor.get
      assert.strictEqual(calls(), 3)
      assert.strictEqual(state.restarts, 2)
      yield* TestClock.adjust("19999 millis")
      assert.strictEqual(calls(), 3)
      yield* TestClock.adjust("1 millis")
      assert.strictEqual(calls(), 4)
      state = yield* monitor.get
      assert.strictEqual(state.status, "healthy")
      assert.strictEqual(state.probes, 2)
    }))

  it.effect("stops probing when its scope closes", () =>
    Effect.gen(function*() {
      const { probe, calls } = scripted([{ latency: 1 }])
      const scope = yield* Scope.make()
      yield* HealthMonitor.make({ endpoint: endpoint(), probe, schedule: Schedule.spaced("1 second") }).pipe(
        Scope.provide(scope)
      )
      yield* settle
      yield* TestClock.adjust("2 seconds")
      assert.strictEqual(calls(), 3)
      yield* Scope.close(scope, undefined as never)
      yield* TestClock.adjust("1 minute")
      assert.strictEqual(calls(), 3)
    }))

  it.effect("the default schedule is spaced 5 seconds with jitter from Effect's Random", () =>
    Effect.gen(function*() {
      const { probe, calls } = scripted([{ latency: 1 }])
      // A random source stuck at 0.5 makes the jitter factor exactly 1.
      yield* HealthMonitor.make({ endpoint: endpoint(), probe }).pipe(
        Effect.provideService(Random.Random, { nextDoubleUnsafe: () => 0.5, nextIntUnsafe: () => 0 })
      )
      yield* settle
      assert.strictEqual(calls(), 1)
      yield* TestClock.adjust("4999 millis")
      assert.strictEqual(calls(), 1)
      yield* TestClock.adjust("1 millis")
      assert.strictEqual(calls(), 2)
    }))

  it.effect("measures the latency around the probe when it does not report one", () =>
    Effect.gen(function*() {
      const monitor = yield* HealthMonitor.make({
        endpoint: endpoint(),
        probe: Effect.sleep("30 millis"),
        schedule: Schedule.spaced("1 second"),
        timeout: "1 second"
      })
      yield* settle
      yield* TestClock.adjust("30 millis")
      const state = yield* monitor.get
      assert.strictEqual(state.status, "healthy")
      assert.strictEqual(state.lastLatency, 30)
    }))
})
