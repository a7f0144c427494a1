/**
 * The balancer's state as a value: building it and changing one endpoint
 * (pure functions; the live balancer in `live.ts` holds the current one).
 *
 * @internal
 */
import type { EndpointInit, EndpointState, Health, State } from "../../Balancer.ts"
import type { EndpointId } from "../../Endpoint.ts"
import * as Ewma from "../ewma.ts"

const makeEndpointState = (init: EndpointInit): EndpointState => ({
  id: init.id,
  weight: init.weight ?? 1,
  priority: init.priority ?? 0,
  role: init.role ?? "any",
  health: "unknown",
  breakerOpen: false,
  inFlight: 0,
  latency: undefined,
  currentWeight: 0,
  timeline: undefined,
  fenced: undefined,
  observedAt: 0,
  returnedAt: 0
})

/** @internal */
export const initialState = (endpoints: ReadonlyArray<EndpointInit>): State => ({
  endpoints: endpoints.map(makeEndpointState),
  cursor: -1
})

/** @internal */
export const updateEndpoint = (
  state: State,
  id: EndpointId,
  f: (endpoint: EndpointState) => EndpointState
): State => {
  const index = state.endpoints.findIndex((e) => e.id === id)
  if (index === -1) return state
  const endpoints = state.endpoints.slice()
  endpoints[index] = f(endpoints[index]!)
  return { ...state, endpoints }
}

/** @internal */
export const addEndpoint = (state: State, init: EndpointInit): State => {
  const exists = state.endpoints.some((e) => e.id === init.id)
  if (!exists) return { ...state, endpoints: [...state.endpoints, makeEndpointState(init)] }
  return updateEndpoint(state, init.id, (e) => ({
    ...e,
    weight: init.weight ?? e.weight,
    priority: init.priority ?? e.priority,
    role: init.role ?? e.role
  }))
}

/** @internal */
export const removeEndpoint = (state: State, id: EndpointId): State => {
  const index = state.endpoints.findIndex((e) => e.id === id)
  if (index === -1) return state
  return {
    ...state,
    endpoints: state.endpoints.filter((_, i) => i !== index),
    cursor: state.cursor >= index ? state.cursor - 1 : state.cursor
  }
}

/** @internal */
export const setHealth = (state: State, id: EndpointId, health: Health): State =>
  updateEndpoint(state, id, (e) => {
    if (e.health === health) return e
    return e.health === "unhealthy"
      ? { ...e, health, returnedAt: state.observations ?? 0 }
      : { ...e, health }
  })

/** @internal */
export const recordLatency = (state: State, id: EndpointId, millis: number, alpha = Ewma.defaultAlpha): State =>
  updateEndpoint(state, id, (e) => ({ ...e, latency: Ewma.next(e.latency, millis, alpha) }))
