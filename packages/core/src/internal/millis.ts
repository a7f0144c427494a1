/**
 * Milliseconds of a `Duration.Input`: the one conversion every module uses
 * for its duration options (`Validation.millis` is its public face).
 *
 * @internal
 */
import * as Duration from "effect/Duration"

/**
 * The milliseconds of `input` (a number of milliseconds, `"5 seconds"`, a
 * `Duration`, …), or `undefined` when it is absent or not a duration. Never
 * throws.
 *
 * @internal
 */
export const optional = (input: unknown): number | undefined => {
  if (input === undefined || input === null) return undefined
  if (typeof input === "number") return Number.isNaN(input) ? undefined : input
  try {
    const decoded = Duration.fromInput(input as Duration.Input)
    return decoded._tag === "Some" ? Duration.toMillis(decoded.value) : undefined
  } catch {
    return undefined
  }
}

/**
 * The milliseconds of `input`, or of `fallback` when `input` is absent or
 * not a duration. Never throws.
 *
 * @internal
 */
export const withFallback = (input: unknown, fallback: Duration.Input): number =>
  optional(input) ?? optional(fallback) ?? 0
