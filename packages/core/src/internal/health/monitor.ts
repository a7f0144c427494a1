/**
 * `HealthMonitor.make`, assembled from the one-job modules beside it:
 * `options` (schema, defaults, thresholds), `metrics`, `classify` (the pure
 * step), `record` (state, metrics, logs, `onUnhealthy`), `probe` (one probe
 * with its timeout) and `supervisor` (restarts after a defect). The
 * supervised loop is forked into the caller's scope.
 */
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import * as Metric from "effect/Metric"
import type * as Scope from "effect/Scope"
import * as SubscriptionRef from "effect/SubscriptionRef"
import type { HealthMonitor, Options } from "../../HealthMonitor.ts"
import type { InvalidPoolOptions } from "../../PoolError.ts"
import { initialState } from "./classify.ts"
import * as Metrics from "./metrics.ts"
import * as HealthOptions from "./options.ts"
import * as Probe from "./probe.ts"
import * as Record from "./record.ts"
import { supervise } from "./supervisor.ts"

export const make = <E, R>(options: Options<E, R>): Effect.Effect<HealthMonitor, InvalidPoolOptions, R | Scope.Scope> =>
  Effect.gen(function*() {
    yield* HealthOptions.validate(options)
    const endpoint = options.endpoint
    const thresholds = HealthOptions.thresholdsOf(options)
    const timeout = HealthOptions.timeoutOf(options)
    const clock = yield* Clock.Clock
    const state = yield* SubscriptionRef.make(initialState(endpoint))
    const metrics = Metrics.forEndpoint(endpoint)
    yield* Metric.update(metrics.health("unknown"), 1)

    const record = Record.make(endpoint, state, thresholds, metrics, options.onUnhealthy)
    const probeOnce = Probe.make(options, timeout, clock, record)
    const loop = Effect.repeat(probeOnce, options.schedule ?? HealthOptions.defaultSchedule)

    yield* Effect.forkScoped(supervise(loop, {
      endpoint,
      state,
      restartSchedule: options.restartSchedule ?? HealthOptions.defaultRestartSchedule,
      clock,
      metrics
    }))
    return { endpoint, state, get: SubscriptionRef.get(state) }
  })
