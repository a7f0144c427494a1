/**
 * The result cache of read-only statements, on Effect's `Cache`: LRU by
 * capacity, a time-to-live on the `Clock` (so `TestClock` drives it), and
 * single-flight — concurrent misses of one key run the statement once and
 * all wait for that run. Failures are never kept. Keys hold the statement
 * text, its parameters and the identity's digest, and never leave this
 * process (they are not logged or exported).
 */
import { Cache, Duration, Effect, Equal, Exit, Hash } from "effect"

/** A cache key: its identity is `id`; it carries the statement to run on a miss. */
class Key implements Equal.Equal {
  /** Set when this caller's lookup ran the statement (a miss). */
  missed = false
  constructor(
    readonly id: string,
    readonly text: string,
    readonly run: Effect.Effect<ReadonlyArray<unknown>, unknown>
  ) {}
  [Equal.symbol](that: unknown): boolean {
    return that instanceof Key && that.id === this.id
  }
  [Hash.symbol](): number {
    return Hash.string(this.id)
  }
}

/** @internal */
export interface QueryCache {
  /** The rows cached under `id`, or `run`'s (run once for all concurrent misses); `hit` says which. */
  readonly get: <A, E>(
    id: string,
    text: string,
    run: Effect.Effect<ReadonlyArray<A>, E>
  ) => Effect.Effect<{ readonly rows: ReadonlyArray<A>; readonly hit: boolean }, E>
  /** Drops every entry whose statement text matches (all of them without a predicate); returns how many. */
  readonly invalidate: (predicate?: (text: string) => boolean) => Effect.Effect<number>
  readonly stats: Effect.Effect<{ readonly hits: number; readonly misses: number; readonly size: number }>
}

/** @internal */
export const make = (capacity: number, ttl: Duration.Input): Effect.Effect<QueryCache> =>
  Effect.gen(function*() {
    const timeToLive = Duration.fromInputUnsafe(ttl)
    let hits = 0
    let misses = 0
    const cache = yield* Cache.makeWith(
      (key: Key) => Effect.suspend(() => {
        key.missed = true
        return key.run
      }),
      {
        capacity: Math.max(1, capacity),
        timeToLive: (exit) => (Exit.isSuccess(exit) ? timeToLive : Duration.zero)
      }
    )
    const get = <A, E>(id: string, text: string, run: Effect.Effect<ReadonlyArray<A>, E>) =>
      Effect.suspend(() => {
        const key = new Key(id, text, run)
        return Effect.map(Cache.get(cache, key), (rows) => {
          if (key.missed) misses++
          else hits++
          return { rows: rows as ReadonlyArray<A>, hit: !key.missed }
        })
      }) as Effect.Effect<{ readonly rows: ReadonlyArray<A>; readonly hit: boolean }, E>
    const invalidate = (predicate?: (text: string) => boolean) =>
      Effect.gen(function*() {
        const keys = Array.from(yield* Cache.keys(cache))
        let n = 0
        for (const key of keys) {
          if (predicate === undefined || predicate(key.text)) {
            yield* Cache.invalidate(cache, key)
            n++
          }
        }
        return n
      })
    return {
      get,
      invalidate,
      stats: Effect.map(Cache.size(cache), (size) => ({ hits, misses, size }))
    } satisfies QueryCache
  })

/** A cache key: statement, parameters (bigint- and Date-safe) and identity digest. */
export const keyOf = (text: string, values: ReadonlyArray<unknown>, identity: string): string =>
  `${identity}\u0000${text}\u0000${
    JSON.stringify(values, (_k, v) => (typeof v === "bigint" ? `${v}n` : v instanceof Uint8Array ? Array.from(v) : v))
  }`
