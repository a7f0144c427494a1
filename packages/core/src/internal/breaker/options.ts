/**
 * Turns the breaker's options into checked settings and policies, or the
 * first invalid option as an `InvalidBreakerOptions`.
 *
 * @internal
 */
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Schedule from "effect/Schedule"
import type { Options } from "../../CircuitBreaker.ts"
import { type Classifier } from "../../Fault.ts"
import { InvalidBreakerOptions } from "../../PoolError.ts"
import * as ConsecutiveFailures from "./consecutiveFailures.ts"
import * as FailureRate from "./failureRate.ts"
import { checkCount, type Invalid, type PolicyDescription } from "./policy.ts"
import * as SlowCallRate from "./slowCallRate.ts"
import { defaultWindow } from "./window.ts"

/** @internal */
export interface Settings {
  readonly endpoint: string
  readonly policies: ReadonlyArray<PolicyDescription>
  readonly halfOpenTrials: number
  readonly successesToClose: number
  readonly classify: Classifier
  readonly openDuration: Schedule.Schedule<unknown, unknown>
}

const unknownFault: Classifier = () => ({ kind: "unknown", mayHaveReachedServer: true })

/** Exponential from 5 seconds, doubling, at most 2 minutes, jittered. @internal */
export const defaultOpenDuration: Schedule.Schedule<unknown, unknown> = Schedule.exponential("5 seconds").pipe(
  Schedule.modifyDelay(({ duration }) => Effect.succeed(Duration.min(duration, Duration.minutes(2)))),
  Schedule.jittered
)

const shorthands = ["consecutiveFailures", "failureRate", "slowCalls", "window", "minimumCalls"] as const

/** The policies the options ask for (shorthand options, or `policies`). @internal */
const policiesOf = (options: Options): ReadonlyArray<PolicyDescription> | Invalid => {
  if (options.policies !== undefined) {
    const mixed = shorthands.find((name) => options[name] !== undefined)
    if (mixed !== undefined) {
      return {
        option: mixed,
        value: options[mixed],
        allowed: "nothing when `policies` is given (give either `policies` or the shorthand options)"
      }
    }
    return options.policies
  }
  const window = options.window ?? defaultWindow
  const minimumCalls = options.minimumCalls ?? 20
  const policies: Array<PolicyDescription> = []
  const consecutive = options.consecutiveFailures ?? 5
  if (consecutive !== Infinity) policies.push(ConsecutiveFailures.make(consecutive))
  else if (options.consecutiveFailures !== undefined) {
    const invalid = checkCount("consecutiveFailures", consecutive, true)
    if (invalid !== undefined) return invalid
  }
  if (options.failureRate !== undefined) {
    policies.push(FailureRate.make({ threshold: options.failureRate.threshold, minimumCalls, window }))
  }
  if (options.slowCalls !== undefined) {
    policies.push(SlowCallRate.make({ ...options.slowCalls, minimumCalls, window }))
  }
  if (options.failureRate === undefined && options.slowCalls === undefined) {
    // Unused, but still wrong: say so rather than ignore it.
    const invalid = checkCount("minimumCalls", minimumCalls, false)
    if (invalid !== undefined) return invalid
  }
  return policies
}

/** @internal */
export const check = (options: Options): Effect.Effect<Settings, InvalidBreakerOptions> => {
  const fail = (invalid: Invalid) => Effect.fail(new InvalidBreakerOptions({ endpoint: options.endpoint, ...invalid }))
  const policies = policiesOf(options)
  if ("option" in policies) return fail(policies)
  for (const policy of policies) {
    const invalid = policy.check()
    if (invalid !== undefined) return fail(invalid)
  }
  const halfOpenTrials = options.halfOpenTrials ?? 1
  const successesToClose = options.successesToClose ?? 1
  const invalid = checkCount("halfOpenTrials", halfOpenTrials, true) ??
    checkCount("successesToClose", successesToClose, false)
  if (invalid !== undefined) return fail(invalid)
  return Effect.succeed({
    endpoint: options.endpoint,
    policies,
    halfOpenTrials,
    successesToClose,
    classify: options.classify ?? unknownFault,
    openDuration: options.openDuration ?? defaultOpenDuration
  })
}
