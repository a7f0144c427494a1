/**
 * Fencing (split brain): the highest timeline seen, stale primaries, the
 * operator's unfence, and the rule that decides whether an endpoint may take
 * a write once timelines are known (see the `Balancer` module doc).
 *
 * @internal
 */
import type { EndpointState, Fence, Fenced, Observation, State } from "../../Balancer.ts"
import type { EndpointId } from "../../Endpoint.ts"
import { updateEndpoint } from "./state.ts"

/** Records a probe's role and timeline, then fences stale primaries. @internal */
export const observe = (
  state: State,
  id: EndpointId,
  observation: Observation
): { readonly state: State; readonly fenced: ReadonlyArray<Fenced> } => {
  const { role, timeline } = observation
  const seq = (state.observations ?? 0) + 1
  let next = updateEndpoint({ ...state, observations: seq }, id, (e) => {
    let fenced = e.fenced
    if (fenced !== undefined) {
      if (role === "replica") fenced = undefined
      else if (role === "primary" && timeline !== undefined && timeline > fenced.timeline) fenced = undefined
    }
    return { ...e, role: role ?? e.role, timeline: timeline ?? e.timeline, fenced, observedAt: seq }
  })
  const highest = timeline === undefined
    ? next.highestTimeline
    : next.highestTimeline === undefined
    ? timeline
    : Math.max(next.highestTimeline, timeline)
  if (highest !== next.highestTimeline) next = { ...next, highestTimeline: highest }
  if (highest === undefined) return { state: next, fenced: [] }
  const fenced: Array<Fenced> = []
  const endpoints = next.endpoints
  let changed: Array<EndpointState> | undefined
  for (let i = 0; i < endpoints.length; i++) {
    const e = endpoints[i]!
    if (e.fenced !== undefined || e.role !== "primary" || e.timeline === undefined) continue
    let fence: Fence | undefined
    if (e.timeline < highest) {
      fence = { timeline: e.timeline, highest, sameTimeline: false }
    } else if (
      e.id === id &&
      endpoints.some((o) => o.id !== id && o.role === "primary" && o.fenced === undefined && o.timeline === highest)
    ) {
      fence = { timeline: e.timeline, highest, sameTimeline: true }
    }
    if (fence !== undefined) {
      ;(changed ??= endpoints.slice())[i] = { ...e, fenced: fence }
      fenced.push({ endpoint: e.id, ...fence })
    }
  }
  return { state: changed === undefined ? next : { ...next, endpoints: changed }, fenced }
}

/** Lifts a fence on the operator's word; its timeline becomes the highest. @internal */
export const unfence = (state: State, id: EndpointId): { readonly state: State; readonly unfenced: boolean } => {
  const e = state.endpoints.find((e) => e.id === id)
  if (e === undefined || e.fenced === undefined) return { state, unfenced: false }
  const next = updateEndpoint(state, id, (e) => ({ ...e, fenced: undefined }))
  return { state: e.timeline === undefined ? next : { ...next, highestTimeline: e.timeline }, unfenced: true }
}

/** Why a fenced endpoint gets no pick. @internal */
export const staleReason = (fence: Fence): string =>
  fence.sameTimeline
    ? `stale primary: fenced (another primary already holds timeline ${fence.timeline}); unfence it or let it rejoin as a replica`
    : `stale primary: fenced (timeline ${fence.timeline}, the newest is ${fence.highest}); unfence it or let it rejoin as a replica`

/** Why an endpoint may not take a write under the fencing rule, if it may not. @internal */
export const fencingExclusion = (state: State, e: EndpointState): string | undefined => {
  if (e.fenced !== undefined) return staleReason(e.fenced)
  const highest = state.highestTimeline
  if (highest === undefined) return undefined
  if (e.timeline !== highest) {
    return e.timeline === undefined
      ? `timeline not checked yet (the newest is ${highest})`
      : `stale timeline ${e.timeline} (the newest is ${highest})`
  }
  // Re-admission: an endpoint back from `unhealthy` (or new) takes writes only once every other reachable
  // endpoint was probed after it came back — one of them may have been promoted meanwhile.
  for (const o of state.endpoints) {
    if (o !== e && o.health !== "unhealthy" && o.observedAt <= e.returnedAt) {
      return `waiting for ${o.id} to be probed (another endpoint may have been promoted)`
    }
  }
  return undefined
}
