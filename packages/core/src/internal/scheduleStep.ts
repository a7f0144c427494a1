/**
 * Stepping a `Schedule` by hand, shared by the circuit breaker (how long to
 * stay open) and `Retry.failover` (how long to wait before the next attempt).
 *
 * @internal
 */
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Pull from "effect/Pull"
import * as Schedule from "effect/Schedule"

/**
 * One step of a schedule: the delay in milliseconds before the next
 * recurrence, or `undefined` once the schedule is done.
 *
 * @internal
 */
export type Stepper<In, E = never, R = never> = (now: number, input: In) => Effect.Effect<number | undefined, E, R>

/**
 * Starts a schedule: the returned stepper keeps its state (attempt, elapsed
 * time, the last delay of `exponential`, …) from one call to the next.
 *
 * @internal
 */
export const start = <Out, In, E, R>(schedule: Schedule.Schedule<Out, In, E, R>): Effect.Effect<Stepper<In, E, R>, never, R> =>
  Effect.map(
    Schedule.toStep(schedule),
    (step) => (now, input) =>
      Pull.catchDone(
        Effect.map(step(now, input), ([, delay]) => Math.max(0, Duration.toMillis(delay))),
        () => Effect.succeed(undefined)
      )
  )
