/**
 * A pool's limits as run-time reconfiguration tracks them: what a resize
 * leaves them at, and whether they are valid (the same rules as the pool's
 * constructor).
 *
 * @internal
 */
import type * as IdentityPool from "../IdentityPool.ts"
import { InvalidPoolOptions } from "../PoolError.ts"

export interface Limits {
  readonly max: number
  readonly maxPerIdentity: number
  readonly min: number
  readonly perIdentityFollowsMax: boolean
}

/** The limits after a resize: `maxPerIdentity` follows `max` unless it was ever given. @internal */
export const resized = (current: Limits, change: IdentityPool.Limits): Limits => {
  const max = change.max ?? current.max
  const follows = change.maxPerIdentity === undefined && current.perIdentityFollowsMax
  return {
    max,
    maxPerIdentity: change.maxPerIdentity ?? (follows ? max : Math.min(current.maxPerIdentity, max)),
    min: change.min ?? current.min,
    perIdentityFollowsMax: follows
  }
}

/** The first invalid limit, as the pool's constructor would report it. @internal */
export const checkLimits = (pool: string, limits: Limits): InvalidPoolOptions | undefined => {
  const { max, maxPerIdentity, min } = limits
  if (!Number.isInteger(max) || max < 1) {
    return new InvalidPoolOptions({ pool, option: "max", reason: `must be an integer >= 1, got ${max}` })
  }
  if (!Number.isInteger(maxPerIdentity) || maxPerIdentity < 1 || maxPerIdentity > max) {
    return new InvalidPoolOptions({
      pool,
      option: "maxPerIdentity",
      reason: `must be an integer from 1 to max (${max}), got ${maxPerIdentity}`
    })
  }
  if (!Number.isInteger(min) || min < 0 || min > maxPerIdentity) {
    return new InvalidPoolOptions({
      pool,
      option: "min",
      reason: `must be an integer from 0 to maxPerIdentity (${maxPerIdentity}), got ${min}`
    })
  }
  return undefined
}
