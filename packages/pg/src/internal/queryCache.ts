/**
 * A small LRU with a time-to-live for read-only query results. Keys hold the
 * statement text, its parameters and the identity's digest, and never leave
 * this process (they are not logged or exported).
 */
interface Slot {
  readonly value: ReadonlyArray<unknown>
  readonly expiresAt: number
  readonly text: string
}

/** @internal */
export class QueryCache {
  private readonly slots = new Map<string, Slot>()
  hits = 0
  misses = 0

  constructor(readonly capacity: number, readonly ttlMillis: number) {}

  get(key: string, now: number): ReadonlyArray<unknown> | undefined {
    const slot = this.slots.get(key)
    if (slot === undefined || slot.expiresAt <= now) {
      if (slot !== undefined) this.slots.delete(key)
      this.misses++
      return undefined
    }
    // Most recently used last.
    this.slots.delete(key)
    this.slots.set(key, slot)
    this.hits++
    return slot.value
  }

  set(key: string, text: string, value: ReadonlyArray<unknown>, now: number, ttlMillis = this.ttlMillis): void {
    this.slots.delete(key)
    this.slots.set(key, { value, text, expiresAt: now + ttlMillis })
    while (this.slots.size > this.capacity) this.slots.delete(this.slots.keys().next().value!)
  }

  /** Drops every entry whose statement text matches (all of them without a predicate); returns how many. */
  invalidate(predicate?: (text: string) => boolean): number {
    if (predicate === undefined) {
      const n = this.slots.size
      this.slots.clear()
      return n
    }
    let n = 0
    for (const [key, slot] of this.slots) {
      if (predicate(slot.text)) {
        this.slots.delete(key)
        n++
      }
    }
    return n
  }

  get size(): number {
    return this.slots.size
  }
}

/** A cache key: statement, parameters (bigint- and Date-safe) and identity digest. */
export const keyOf = (text: string, values: ReadonlyArray<unknown>, identity: string): string =>
  `${identity}\u0000${text}\u0000${
    JSON.stringify(values, (_k, v) => (typeof v === "bigint" ? `${v}n` : v instanceof Uint8Array ? Array.from(v) : v))
  }`
