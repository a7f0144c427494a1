/**
 * Counters flushed to metrics: updating an Effect `Metric` costs about as
 * much as routing a call, so hot paths count in plain numbers and a periodic
 * fiber (the pool's housekeeper, the set's reporter) hands the metrics'
 * counters the growth since the last flush.
 *
 * @internal
 */
import * as Effect from "effect/Effect"
import * as Metric from "effect/Metric"

/**
 * Tells each counter how much its running total grew since the last call
 * (nothing when it did not grow).
 *
 * @internal
 */
export type Flush<K extends string> = (totals: { readonly [key in K]: number }) => Effect.Effect<void>

/**
 * A {@link Flush} over `counters`, one Effect counter per running total.
 *
 * @internal
 */
export const make = <K extends string>(counters: { readonly [key in K]: Metric.Metric<number, unknown> }): Flush<K> => {
  const keys = Object.keys(counters) as Array<K>
  const told = {} as Record<K, number>
  for (const key of keys) told[key] = 0
  return (totals) =>
    Effect.suspend(() => {
      let updates: Array<Effect.Effect<void>> | undefined
      for (const key of keys) {
        const delta = totals[key] - told[key]
        told[key] = totals[key]
        if (delta > 0) (updates ??= []).push(Metric.update(counters[key], delta))
      }
      return updates === undefined ? Effect.void : Effect.all(updates, { discard: true })
    })
}
