/**
 * The windows of the rate policies, as given in the options, checked and
 * turned into a {@link SlidingWindow}.
 *
 * @internal
 */
import type * as Duration from "effect/Duration"
import * as Millis from "../millis.ts"
import { CountWindow, type SlidingWindow, TimeWindow } from "../slidingWindow.ts"
import { checkCount, type Invalid } from "./policy.ts"

/** @internal */
export type WindowSpec =
  | { readonly _tag: "Count"; readonly size: number }
  | { readonly _tag: "Time"; readonly duration: Duration.Input }

/** The default window: the last 100 calls. @internal */
export const defaultWindow: WindowSpec = { _tag: "Count", size: 100 }

/** @internal */
export const millisOf: (input: Duration.Input) => number | undefined = Millis.optional

/** @internal */
export const check = (option: string, window: WindowSpec): Invalid | undefined => {
  if (window._tag === "Count") return checkCount(`${option}.size`, window.size, false)
  const millis = millisOf(window.duration)
  return millis !== undefined && millis >= 1000 && Number.isFinite(millis)
    ? undefined
    : { option: `${option}.duration`, value: window.duration, allowed: "a finite duration of at least 1 second" }
}

/** Whether recording into the window needs the time. @internal */
export const isTimed = (window: WindowSpec): boolean => window._tag === "Time"

/** @internal */
export const make = (window: WindowSpec): SlidingWindow =>
  window._tag === "Count" ? new CountWindow(window.size) : new TimeWindow(millisOf(window.duration)!)
