/**
 * One probe: runs the user's probe under the timeout, measures its latency
 * (or takes the one it reports) and turns its result into an `Outcome` —
 * success, auth failure (`isAuthFailure`: the server answered), failure or
 * timeout — which it records.
 */
import * as Cause from "effect/Cause"
import type * as Clock from "effect/Clock"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import type { Options, Outcome } from "../../HealthMonitor.ts"
import { describeError, formatMillis } from "../format.ts"
import { millisOf } from "./options.ts"

export const make = <E, R>(
  options: Options<E, R>,
  timeout: Duration.Duration,
  clock: Clock.Clock,
  record: (outcome: Outcome) => Effect.Effect<void>
): Effect.Effect<void, never, R> => {
  const timeoutMessage = `health probe timed out after ${formatMillis(Duration.toMillis(timeout))}`
  return Effect.suspend(() => {
    const start = clock.currentTimeMillisUnsafe()
    return Effect.flatMap(Effect.result(Effect.timeout(options.probe, timeout)), (result) => {
      const at = clock.currentTimeMillisUnsafe()
      if (result._tag === "Success") {
        const reported = result.success?.latency
        const latency = reported === undefined ? at - start : millisOf(reported)
        return record({ _tag: "Success", latency, at })
      }
      const timedOut = Cause.isTimeoutError(result.failure)
      if (!timedOut && options.isAuthFailure !== undefined && options.isAuthFailure(result.failure as E)) {
        return record({ _tag: "AuthFailure", error: describeError(result.failure), latency: at - start, at })
      }
      return record({
        _tag: "Failure",
        error: timedOut ? timeoutMessage : describeError(result.failure),
        timedOut,
        at
      })
    })
  })
}
