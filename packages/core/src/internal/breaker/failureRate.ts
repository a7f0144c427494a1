/**
 * Open when the share of server faults among the calls in a sliding window
 * reaches `threshold`, once the window holds at least `minimumCalls` calls.
 *
 * @internal
 */
import type { SlidingWindow } from "../slidingWindow.ts"
import { checkCount, checkShare, percent, type PolicyDescription, type Tracker } from "./policy.ts"
import * as Window from "./window.ts"

/** @internal */
export interface Params {
  readonly threshold: number
  readonly minimumCalls: number
  readonly window: Window.WindowSpec
}

class FailureRateTracker implements Tracker {
  constructor(private readonly params: Params, private readonly window: SlidingWindow) {}

  record(failure: boolean, now: number): string | undefined {
    const window = this.window
    window.record(now, failure, false)
    if (window.failures === 0 || window.calls < this.params.minimumCalls) return undefined
    const observed = window.failures / window.calls
    return observed >= this.params.threshold
      ? `failure rate ${percent(observed)} ≥ ${percent(this.params.threshold)} over ${window.calls} calls`
      : undefined
  }

  reset(): void {
    this.window.reset()
  }
}

/** @internal */
export const make = (params: Params, prefix = ""): PolicyDescription => ({
  _tag: "FailureRate",
  check: () =>
    checkShare(`${prefix}failureRate.threshold`, params.threshold) ??
      checkCount(`${prefix}minimumCalls`, params.minimumCalls, false) ??
      Window.check(`${prefix}window`, params.window),
  timed: Window.isTimed(params.window),
  slowCallMillis: undefined,
  makeTracker: () => new FailureRateTracker(params, Window.make(params.window))
})
