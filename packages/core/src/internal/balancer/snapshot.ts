/**
 * The balancer's published view: what status and the dashboard read (health,
 * role, breaker, drain, fence, weights, strategy), without the per-call
 * counters (in flight, latency, smooth weighted round robin's running
 * weights, the cursor), which change on every call and stay on the hot path.
 *
 * @internal
 */
import type { EndpointSnapshot, EndpointState, Snapshot, State, Strategy } from "../../Balancer.ts"

const endpointOf = (e: EndpointState, previous: EndpointSnapshot | undefined): EndpointSnapshot => {
  const draining = e.draining === true
  if (
    previous !== undefined && previous.id === e.id && previous.weight === e.weight &&
    previous.priority === e.priority && previous.role === e.role && previous.health === e.health &&
    previous.breakerOpen === e.breakerOpen && previous.draining === draining &&
    previous.timeline === e.timeline && previous.fenced === e.fenced
  ) return previous
  return {
    id: e.id,
    weight: e.weight,
    priority: e.priority,
    role: e.role,
    health: e.health,
    breakerOpen: e.breakerOpen,
    draining,
    timeline: e.timeline,
    fenced: e.fenced
  }
}

/**
 * The view of `state`; `previous` itself when nothing it shows changed
 * (so a probe that confirms what was known publishes nothing).
 *
 * @internal
 */
export const of = (strategy: Strategy, state: State, previous: Snapshot | undefined): Snapshot => {
  const endpoints = state.endpoints.map((e, i) => endpointOf(e, previous?.endpoints[i]))
  if (
    previous !== undefined && previous.strategy === strategy &&
    previous.highestTimeline === state.highestTimeline &&
    previous.endpoints.length === endpoints.length &&
    endpoints.every((e, i) => e === previous.endpoints[i])
  ) return previous
  return { strategy, highestTimeline: state.highestTimeline, endpoints }
}
