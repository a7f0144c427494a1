/**
 * The supervisor of the probe loop: runs the loop; when a defect kills it
 * (the probe or `onUnhealthy` threw), counts a restart in the state and the
 * metric, logs it with the cause, and restarts it after the next delay of
 * the restart schedule (started over once a restarted loop ran a probe).
 * Ends when the loop's schedule ends; an interruption (the scope closing)
 * propagates.
 */
import * as Cause from "effect/Cause"
import type * as Clock from "effect/Clock"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Metric from "effect/Metric"
import * as Schedule from "effect/Schedule"
import * as SubscriptionRef from "effect/SubscriptionRef"
import type { EndpointId } from "../../Endpoint.ts"
import type { HealthState } from "../../HealthMonitor.ts"
import { describeError, formatMillis } from "../format.ts"
import type { EndpointMetrics } from "./metrics.ts"

export const supervise = <R>(
  loop: Effect.Effect<unknown, never, R>,
  options: {
    readonly endpoint: EndpointId
    readonly state: SubscriptionRef.SubscriptionRef<HealthState>
    readonly restartSchedule: Schedule.Schedule<unknown, unknown>
    readonly clock: Clock.Clock
    readonly metrics: EndpointMetrics
  }
): Effect.Effect<void, never, R> =>
  Effect.gen(function*() {
    const { clock, endpoint, state } = options
    let restartStep: ((now: number, input: unknown) => Effect.Effect<readonly [unknown, Duration.Duration], unknown>) | undefined
    let lastDelay = 1000
    while (true) {
      const probesBefore = (yield* SubscriptionRef.get(state)).probes
      const cause = yield* Effect.matchCause(loop, { onSuccess: () => undefined, onFailure: (cause) => cause })
      // The schedule ended: monitoring is over.
      if (cause === undefined) return
      if (Cause.hasInterruptsOnly(cause)) return yield* Effect.interrupt
      const restarted = yield* SubscriptionRef.updateAndGet(state, (s) => ({
        ...s,
        restarts: s.restarts + 1,
        lastError: `health probe loop crashed: ${describeError(Cause.squash(cause))}`
      }))
      yield* Metric.update(options.metrics.restarts, 1)
      // A loop that ran at least one probe since the last restart starts the backoff over.
      if (restarted.probes > probesBefore) restartStep = undefined
      if (restartStep === undefined) {
        restartStep = yield* Schedule.toStep(options.restartSchedule)
      }
      const step = yield* Effect.result(restartStep(clock.currentTimeMillisUnsafe(), cause))
      if (step._tag === "Success") lastDelay = Duration.toMillis(step.success[1])
      yield* Effect.logError(
        `health probe loop crashed (restart #${restarted.restarts}); restarting in ${formatMillis(lastDelay)}`,
        cause
      ).pipe(Effect.annotateLogs({ endpoint }))
      yield* Effect.sleep(Duration.millis(lastDelay))
    }
  })
