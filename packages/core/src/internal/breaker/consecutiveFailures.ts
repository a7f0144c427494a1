/**
 * Open after `threshold` server faults in a row; any counted success resets
 * the count.
 *
 * @internal
 */
import { checkCount, type PolicyDescription, type Tracker } from "./policy.ts"

class ConsecutiveTracker implements Tracker {
  private count = 0
  constructor(private readonly threshold: number) {}

  record(failure: boolean): string | undefined {
    if (!failure) {
      this.count = 0
      return undefined
    }
    const n = ++this.count
    return n >= this.threshold ? `${n} consecutive server fault${n === 1 ? "" : "s"}` : undefined
  }

  reset(): void {
    this.count = 0
  }
}

/** @internal */
export const make = (threshold: number, option = "consecutiveFailures"): PolicyDescription => ({
  _tag: "ConsecutiveFailures",
  check: () => checkCount(option, threshold, true),
  timed: false,
  slowCallMillis: undefined,
  makeTracker: () => new ConsecutiveTracker(threshold)
})
