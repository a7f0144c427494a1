/**
 * Eligibility, applied before any strategy: which endpoints a pick may
 * choose from, in tiers (healthy before degraded/unknown, endpoints to avoid
 * last), or why none may be picked.
 *
 * @internal
 */
import * as Result from "effect/Result"
import { type AccessMode, type Exclusion, NoEndpointAvailable, type State } from "../../Balancer.ts"
import type { EndpointId } from "../../Endpoint.ts"
import { fencingExclusion, staleReason } from "./fencing.ts"

/** The indices of the endpoints a pick may choose from, or why there are none. @internal */
export const eligible = (
  state: State,
  mode?: AccessMode,
  avoid?: ReadonlySet<EndpointId>
): Result.Result<ReadonlyArray<number>, NoEndpointAvailable> => {
  const endpoints = state.endpoints
  if (mode === "replica-preferred") {
    // Replicas first (ones not to avoid); else any endpoint, the avoided last.
    const replicas = eligible(state, "replica-only", avoid)
    if (Result.isSuccess(replicas) && (avoid === undefined || replicas.success.some((i) => !avoid.has(endpoints[i]!.id)))) {
      return replicas
    }
    return eligible(state, "read", avoid)
  }
  const healthy: Array<number> = []
  const fallback: Array<number> = []
  let exclusions: Array<Exclusion> | undefined
  for (let i = 0; i < endpoints.length; i++) {
    const e = endpoints[i]!
    let reason: string | undefined
    if (e.fenced !== undefined) reason = staleReason(e.fenced)
    else if (e.draining === true) reason = "draining (by the operator)"
    else if (mode === "write" && e.role === "replica") reason = "replica (does not accept writes)"
    else if (mode === "replica-only" && e.role !== "replica") reason = `${e.role} (replica-only read)`
    else if (e.breakerOpen) reason = e.health === "unhealthy" ? "unhealthy, breaker open" : "breaker open"
    else if (e.health === "unhealthy") reason = "unhealthy"
    else if (mode === "write") reason = fencingExclusion(state, e)
    if (reason !== undefined) {
      ;(exclusions ??= []).push({ endpoint: e.id, reason })
    } else if (e.health === "healthy") {
      healthy.push(i)
    } else {
      fallback.push(i)
    }
  }
  if (avoid !== undefined && avoid.size > 0) {
    const keep = (i: number) => !avoid.has(endpoints[i]!.id)
    const tiers = [healthy.filter(keep), fallback.filter(keep), healthy, fallback]
    for (const tier of tiers) if (tier.length > 0) return Result.succeed(tier)
  } else {
    if (healthy.length > 0) return Result.succeed(healthy)
    if (fallback.length > 0) return Result.succeed(fallback)
  }
  return Result.fail(new NoEndpointAvailable({ mode, exclusions: exclusions ?? [] }))
}
