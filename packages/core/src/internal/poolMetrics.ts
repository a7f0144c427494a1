import { Metric } from "effect"

const connections = Metric.gauge("tether_pool_connections", {
  description: "Open connections of a pool, by state (idle, in_use) and pending borrowers"
})

/** The statistics counters every pool keeps as plain numbers (its housekeeping flushes them to the metrics). */
export interface Counters {
  created: number
  destroyed: number
  acquireFailures: number
  timeouts: number
  validationFailures: number
  leaksDetected: number
  borrows: number
}

/** A pool's counters, all zero. */
export const makeCounters = (): Counters => ({
  created: 0,
  destroyed: 0,
  acquireFailures: 0,
  timeouts: 0,
  validationFailures: 0,
  leaksDetected: 0,
  borrows: 0
})

/** The metrics of one pool, each tagged with the pool's name. */
export type PoolMetrics = ReturnType<typeof forPool>

/** The metrics of one pool, each tagged with the pool's name. */
export const forPool = (pool: string) => {
  const attributes = { pool }
  return {
    idle: Metric.withAttributes(connections, { ...attributes, state: "idle" }),
    inUse: Metric.withAttributes(connections, { ...attributes, state: "in_use" }),
    pending: Metric.withAttributes(connections, { ...attributes, state: "pending" }),
    created: Metric.withAttributes(created, attributes),
    destroyed: Metric.withAttributes(destroyed, attributes),
    acquireFailures: Metric.withAttributes(acquireFailures, attributes),
    timeouts: Metric.withAttributes(timeouts, attributes),
    validationFailures: Metric.withAttributes(validationFailures, attributes),
    leaks: Metric.withAttributes(leaks, attributes),
    acquireTime: Metric.withAttributes(acquireTime, attributes),
    immediateBorrows: Metric.withAttributes(immediateBorrows, attributes)
  }
}

const counter = (name: string, description: string) => Metric.counter(name, { description, incremental: true })

const created = counter("tether_pool_connections_created_total", "Connections opened by a pool")
const destroyed = counter("tether_pool_connections_destroyed_total", "Connections closed by a pool")
const acquireFailures = counter("tether_pool_connect_failures_total", "Failed attempts to open a connection")
const timeouts = counter("tether_pool_timeouts_total", "Borrowers that gave up waiting (acquireTimeout)")
const validationFailures = counter(
  "tether_pool_validation_failures_total",
  "Connections that failed validation on borrow or keep-alive"
)
const leaks = counter("tether_pool_leaks_detected_total", "Borrows held longer than leakDetectionThreshold")
const immediateBorrows = counter(
  "tether_pool_immediate_borrows_total",
  "Borrows served at once by an idle connection (not timed in tether_pool_acquire_time_ms)"
)
const acquireTime = Metric.histogram("tether_pool_acquire_time_ms", {
  description: "For borrows that had to wait: time from asking for a connection to getting one, in milliseconds",
  boundaries: Metric.exponentialBoundaries({ start: 0.05, factor: 2, count: 16 })
})
