/**
 * Exponentially weighted moving average, used for latencies.
 *
 * @internal
 */

/**
 * The next value of an EWMA with smoothing factor `alpha` (0 < alpha ≤ 1; a
 * larger alpha follows new samples faster). The first sample is taken as is.
 *
 * @internal
 */
export const next = (previous: number | undefined, sample: number, alpha: number): number =>
  previous === undefined ? sample : previous + alpha * (sample - previous)

/**
 * The default smoothing factor: a sample's weight halves after about two
 * further samples.
 *
 * @internal
 */
export const defaultAlpha = 0.3
