import { Effect } from "effect"

/**
 * What a pool lends to a {@link Capacity}: a way to close its least recently
 * used idle connection, so another pool sharing the limit can open one.
 */
export interface Evictable {
  /** When its least recently used idle connection was last used, or `undefined` if none is idle. */
  readonly oldestIdleAt: () => number | undefined
  /** Closes that connection (its permit comes back when it is closed). */
  readonly evictOldestIdle: () => Effect.Effect<boolean>
}

interface Waiter {
  readonly requester: Evictable | undefined
  readonly resume: () => void
}

/**
 * A limit on open connections shared by several pools (one per identity, for
 * one server). A pool takes a permit before it opens a connection and gives
 * it back once the connection is closed, so no more than `max` are ever open.
 * When none is free, the least recently used idle connection of another pool
 * is closed to make room; if none is idle, the requester waits (FIFO) until a
 * connection is closed or becomes idle somewhere.
 */
export class Capacity {
  /** Changed at run time by {@link resize}. */
  max: number
  open = 0
  evictions = 0
  private readonly members = new Set<Evictable>()
  private readonly waiters: Array<Waiter> = []

  constructor(max: number) {
    this.max = max
  }

  register(member: Evictable): () => void {
    this.members.add(member)
    return () => {
      this.members.delete(member)
    }
  }

  /** Takes a permit, evicting another pool's idle connection or waiting when none is free. */
  take(requester: Evictable | undefined): Effect.Effect<void> {
    return Effect.suspend(() => {
      if (this.open < this.max && this.waiters.length === 0) {
        this.open++
        return Effect.void
      }
      return Effect.andThen(this.evictFor(requester), this.wait(requester))
    })
  }

  /** Whether more connections are open than the (shrunk) limit allows. */
  overLimit(): boolean {
    return this.open > this.max
  }

  /**
   * Changes the limit. Growing wakes as many waiters as there are new permits;
   * shrinking closes idle connections above the new limit now (the others
   * close as they are given back: see `overLimit`).
   */
  resize(max: number): Effect.Effect<void> {
    return Effect.suspend(() => {
      this.max = max
      for (let free = this.max - this.open; free > 0 && this.waiters.length > 0; free--) this.wakeFirst()
      return this.trim(this.members.size * 4 + this.open)
    })
  }

  /** Evicts idle connections while over the limit (bounded: a pool may have none idle yet). */
  private trim(budget: number): Effect.Effect<void> {
    return Effect.suspend(() => {
      if (this.open <= this.max || budget <= 0) return Effect.void
      return Effect.flatMap(this.evictOnce(undefined), (outcome) =>
        outcome === "none" ? Effect.void : Effect.andThen(Effect.yieldNow, this.trim(budget - 1)))
    })
  }

  /** Gives a permit back (a connection was closed). */
  release(): void {
    this.open--
    this.wakeFirst()
  }

  /** Says that a connection became idle somewhere: a waiter may evict it. */
  idleAppeared(): void {
    if (this.waiters.length > 0) this.wakeFirst()
  }

  private wakeFirst(): void {
    const waiter = this.waiters.shift()
    if (waiter !== undefined) waiter.resume()
  }

  private wait(requester: Evictable | undefined): Effect.Effect<void> {
    const attempt: Effect.Effect<void> = Effect.flatMap(
      Effect.callback<void>((resume) => {
        if (this.open < this.max) return resume(Effect.void)
        const waiter: Waiter = { requester, resume: () => resume(Effect.void) }
        this.waiters.push(waiter)
        return Effect.sync(() => {
          const index = this.waiters.indexOf(waiter)
          if (index >= 0) this.waiters.splice(index, 1)
          // A wake given to a waiter that left is passed on.
          else if (this.open < this.max) this.wakeFirst()
        })
      }),
      () => {
        if (this.open < this.max) {
          this.open++
          return Effect.void
        }
        // Woken because a connection became idle: evict it, then wait again.
        return Effect.andThen(this.evictFor(requester), attempt)
      }
    )
    return attempt
  }

  /**
   * Closes the least recently used idle connection of a pool other than the
   * requester. A connection just opened may not be in its pool yet: then the
   * eviction is retried after a few scheduler turns.
   */
  private evictFor(requester: Evictable | undefined, retries = 10): Effect.Effect<void> {
    return Effect.flatMap(this.evictOnce(requester), (outcome) =>
      outcome === "not-yet" && retries > 0
        ? Effect.andThen(Effect.yieldNow, this.evictFor(requester, retries - 1))
        : Effect.void)
  }

  private evictOnce(requester: Evictable | undefined): Effect.Effect<"evicted" | "none" | "not-yet"> {
    return Effect.suspend(() => {
      let victim: Evictable | undefined
      let oldest = Infinity
      for (const member of this.members) {
        if (member === requester) continue
        const at = member.oldestIdleAt()
        if (at !== undefined && at < oldest) {
          oldest = at
          victim = member
        }
      }
      if (victim === undefined) return Effect.succeed("none" as const)
      return Effect.map(victim.evictOldestIdle(), (evicted) => {
        if (!evicted) return "not-yet" as const
        this.evictions++
        return "evicted" as const
      })
    })
  }
}
