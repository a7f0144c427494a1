/**
 * Sliding windows of call outcomes for the circuit breaker's rate policies.
 * Mutable and allocation-free on `record`: they sit on the breaker's hot path.
 *
 * @internal
 */

/** @internal */
export interface SlidingWindow {
  /** Records one call's outcome at time `now` (epoch milliseconds). */
  record(now: number, failure: boolean, slow: boolean): void
  /** Drops outcomes that have left the window at time `now`. */
  advance(now: number): void
  /** Calls in the window (after the last `record` or `advance`). */
  calls: number
  failures: number
  slow: number
  reset(): void
}

const FAILURE = 1
const SLOW = 2

/**
 * The last `size` calls.
 *
 * @internal
 */
export class CountWindow implements SlidingWindow {
  calls = 0
  failures = 0
  slow = 0
  private readonly outcomes: Uint8Array
  private next = 0

  constructor(readonly size: number) {
    this.outcomes = new Uint8Array(size)
  }

  record(_now: number, failure: boolean, slow: boolean): void {
    const i = this.next
    if (this.calls === this.size) {
      const old = this.outcomes[i]!
      if (old & FAILURE) this.failures--
      if (old & SLOW) this.slow--
    } else {
      this.calls++
    }
    const outcome = (failure ? FAILURE : 0) | (slow ? SLOW : 0)
    this.outcomes[i] = outcome
    if (failure) this.failures++
    if (slow) this.slow++
    this.next = i + 1 === this.size ? 0 : i + 1
  }

  advance(_now: number): void {}

  reset(): void {
    this.calls = 0
    this.failures = 0
    this.slow = 0
    this.next = 0
    this.outcomes.fill(0)
  }
}

/**
 * The calls of the last `duration` milliseconds, in buckets of
 * `bucketMillis` (default one second): a call leaves the window between
 * `duration - bucketMillis` and `duration` after it was recorded.
 *
 * @internal
 */
export class TimeWindow implements SlidingWindow {
  calls = 0
  failures = 0
  slow = 0
  private readonly buckets: number
  private readonly bucketCalls: Uint32Array
  private readonly bucketFailures: Uint32Array
  private readonly bucketSlow: Uint32Array
  /** The absolute bucket number of the newest bucket. */
  private current = -Infinity

  constructor(duration: number, readonly bucketMillis = 1000) {
    this.buckets = Math.max(1, Math.ceil(duration / bucketMillis))
    this.bucketCalls = new Uint32Array(this.buckets)
    this.bucketFailures = new Uint32Array(this.buckets)
    this.bucketSlow = new Uint32Array(this.buckets)
  }

  advance(now: number): void {
    const bucket = Math.floor(now / this.bucketMillis)
    if (bucket <= this.current) return
    if (bucket - this.current >= this.buckets) {
      this.clear()
    } else {
      for (let b = this.current + 1; b <= bucket; b++) this.clearSlot(b % this.buckets)
    }
    this.current = bucket
  }

  record(now: number, failure: boolean, slow: boolean): void {
    this.advance(now)
    // A clock that went backwards records into the newest bucket.
    const slot = this.current % this.buckets
    this.bucketCalls[slot]!++
    this.calls++
    if (failure) {
      this.bucketFailures[slot]!++
      this.failures++
    }
    if (slow) {
      this.bucketSlow[slot]!++
      this.slow++
    }
  }

  reset(): void {
    this.clear()
    this.current = -Infinity
  }

  private clearSlot(slot: number): void {
    this.calls -= this.bucketCalls[slot]!
    this.failures -= this.bucketFailures[slot]!
    this.slow -= this.bucketSlow[slot]!
    this.bucketCalls[slot] = 0
    this.bucketFailures[slot] = 0
    this.bucketSlow[slot] = 0
  }

  private clear(): void {
    this.calls = 0
    this.failures = 0
    this.slow = 0
    this.bucketCalls.fill(0)
    this.bucketFailures.fill(0)
    this.bucketSlow.fill(0)
  }
}
