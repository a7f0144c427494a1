/**
 * The reference `set.as(key).use` reads to tell an observer about each finished
 * call (see `ServerSet.OperationObserver`).
 *
 * @internal
 */
import { Context } from "effect"
import type { Observation } from "../ServerSet.ts"

/** @internal */
export const OperationObserver = Context.Reference<((observation: Observation) => void) | undefined>(
  "@tether/core/ServerSet/OperationObserver",
  { defaultValue: () => undefined }
)
