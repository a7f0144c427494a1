/**
 * Open when the share of calls at least `slowerThan` long among the calls in
 * a sliding window reaches `threshold`, once the window holds at least
 * `minimumCalls` calls. A slow half-open trial counts as a failed trial.
 *
 * @internal
 */
import type * as Duration from "effect/Duration"
import { formatMillis } from "../format.ts"
import type { SlidingWindow } from "../slidingWindow.ts"
import { checkCount, checkShare, percent, type PolicyDescription, type Tracker } from "./policy.ts"
import * as Window from "./window.ts"

/** @internal */
export interface Params {
  readonly slowerThan: Duration.Input
  readonly threshold: number
  readonly minimumCalls: number
  readonly window: Window.WindowSpec
}

class SlowCallTracker implements Tracker {
  constructor(
    private readonly params: Params,
    private readonly slowMillis: number,
    private readonly window: SlidingWindow
  ) {}

  record(failure: boolean, now: number, elapsed: number): string | undefined {
    const window = this.window
    const slow = elapsed >= this.slowMillis
    window.record(now, failure, slow)
    if (window.slow === 0 || window.calls < this.params.minimumCalls) return undefined
    const observed = window.slow / window.calls
    return observed >= this.params.threshold
      ? `slow-call rate ${percent(observed)} ≥ ${percent(this.params.threshold)} over ${window.calls} calls ` +
        `(slower than ${formatMillis(this.slowMillis)})`
      : undefined
  }

  reset(): void {
    this.window.reset()
  }
}

/** @internal */
export const make = (params: Params, prefix = ""): PolicyDescription => {
  const slowMillis = Window.millisOf(params.slowerThan)
  return {
    _tag: "SlowCallRate",
    check: () =>
      (slowMillis !== undefined && slowMillis > 0 && Number.isFinite(slowMillis)
        ? undefined
        : { option: `${prefix}slowCalls.slowerThan`, value: params.slowerThan, allowed: "a positive finite duration" }) ??
        checkShare(`${prefix}slowCalls.threshold`, params.threshold) ??
        checkCount(`${prefix}minimumCalls`, params.minimumCalls, false) ??
        Window.check(`${prefix}window`, params.window),
    timed: true,
    slowCallMillis: slowMillis,
    makeTracker: () => new SlowCallTracker(params, slowMillis!, Window.make(params.window))
  }
}
