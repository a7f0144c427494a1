import { ServerSet } from "@tether/core"
import { Clock, Context, Duration, Effect, Metric, Schedule, Semaphore, Stream, SubscriptionRef } from "effect"
import type * as Monitor from "../Monitor.ts"
import { Monitor as MonitorTag } from "../Monitor.ts"
import * as Snapshot from "../Snapshot.ts"
import { inFlight, type Observation, OperationRecorder } from "./operationMetrics.ts"
import { LatencyWindow, Ring } from "./series.ts"

const cacheEntries = Metric.gauge("tether_query_cache_entries", {
  description: "Statements held by a client's query cache",
  attributes: { unit: "{statement}" }
})
const cacheHitRatio = Metric.gauge("tether_query_cache_hit_ratio", {
  description: "Share of cached reads answered from the query cache since start (0 to 1)",
  attributes: { unit: "1" }
})

interface EndpointTrack {
  readonly latencies: LatencyWindow
  readonly ring: Ring
  lastRequests: number | undefined
  lastFailures: number | undefined
}

/** @internal */
export const make = (options: Monitor.Options) =>
  Effect.gen(function*() {
    const context = yield* Effect.context<never>()
    const interval = Duration.fromInputUnsafe(options.sampleInterval ?? "1 second")
    const historyPoints = Math.max(
      1,
      Math.ceil(Duration.toMillis(Duration.fromInputUnsafe(options.history ?? "5 minutes")) / Duration.toMillis(interval))
    )
    const intervalSeconds = Duration.toMillis(interval) / 1000
    const perSecond = (n: number) => Math.round((n / intervalSeconds) * 10) / 10
    const watched = new Map<string, Monitor.Watched>()
    const tracks = new Map<string, EndpointTrack>()
    const trackOf = (set: string, endpoint: string): EndpointTrack => {
      const key = `${set}\u0000${endpoint}`
      let track = tracks.get(key)
      if (track === undefined) {
        track = { latencies: new LatencyWindow(), ring: new Ring(historyPoints), lastRequests: undefined, lastFailures: undefined }
        tracks.set(key, track)
      }
      return track
    }
    const recorder = new OperationRecorder(context, (o: Observation) => {
      if (o.endpoint !== "none") trackOf(o.set, o.endpoint).latencies.add(o.seconds * 1000)
    })

    const viewOf = (entry: Monitor.Watched) =>
      Effect.gen(function*() {
        const status = yield* entry.target.status
        const cache = entry.target.cacheStats === undefined ? null : yield* entry.target.cacheStats
        return {
          name: entry.name,
          strategy: status.strategy,
          required: entry.required,
          cache,
          endpoints: status.endpoints.map((e) => Snapshot.endpointView(e, trackOf(status.name, e.id).ring.toArray()))
        } satisfies Snapshot.SetView
      })

    const snapshot = Effect.gen(function*() {
      const sets = yield* Effect.forEach([...watched.values()], viewOf)
      return { time: yield* Clock.currentTimeMillis, sets } satisfies Snapshot.Snapshot
    })

    const latest = yield* SubscriptionRef.make<Snapshot.Snapshot>({ time: yield* Clock.currentTimeMillis, sets: [] })
    /**
     * One publisher at a time (the sample, or a set's balancer change), so a
     * snapshot read before a change is never published after the change's.
     */
    const publishing = yield* Semaphore.make(1)
    const publish = publishing.withPermits(1)(Effect.flatMap(snapshot, (s) => SubscriptionRef.set(latest, s)))

    /** One sample: per endpoint, the operations and latencies since the last one; cache gauges. */
    const sample = Effect.gen(function*() {
      const t = Math.floor((yield* Clock.currentTimeMillis) / 1000)
      for (const entry of watched.values()) {
        const status = yield* entry.target.status
        for (const e of status.endpoints) {
          const track = trackOf(status.name, e.id)
          const { p50, p99 } = track.latencies.drain()
          const ops = track.lastRequests === undefined ? 0 : Math.max(0, e.requests - track.lastRequests)
          const failures = track.lastFailures === undefined ? 0 : Math.max(0, e.failures - track.lastFailures)
          track.lastRequests = e.requests
          track.lastFailures = e.failures
          // Per second, whatever the sample interval.
          track.ring.push({ t, ops: perSecond(ops), failures: perSecond(failures), p50, p99 })
        }
        yield* Metric.update(
          Metric.withAttributes(inFlight, { set: status.name }),
          status.endpoints.reduce((n, e) => n + e.inFlight, 0)
        )
        if (entry.target.cacheStats !== undefined) {
          const stats = yield* entry.target.cacheStats
          const total = stats.hits + stats.misses
          yield* Metric.update(Metric.withAttributes(cacheEntries, { set: entry.name }), stats.size)
          yield* Metric.update(Metric.withAttributes(cacheHitRatio, { set: entry.name }), total === 0 ? 0 : stats.hits / total)
        }
      }
      yield* SubscriptionRef.set(latest, yield* snapshot)
    }).pipe(publishing.withPermits(1))
    yield* sample.pipe(
      Effect.catchCause((cause) => Effect.logWarning("tether monitor: a sample failed", cause)),
      Effect.repeat(Schedule.spaced(interval)),
      Effect.forkScoped
    )

    const publishSafely = publish.pipe(
      Effect.catchCause((cause) => Effect.logWarning("tether monitor: publishing a snapshot failed", cause))
    )

    const service: Monitor.MonitorService = {
      watch: (name, target, watchOptions) =>
        Effect.acquireRelease(
          Effect.sync(() => {
            const reconfigure = watchOptions?.reconfigure === false
              ? undefined
              : watchOptions?.reconfigure ?? target.reconfigure
            const entry = { name, target, required: watchOptions?.required ?? true, reconfigure }
            watched.set(name, entry)
            return entry
          }),
          (entry) =>
            Effect.sync(() => {
              if (watched.get(name) === entry) watched.delete(name)
            }).pipe(Effect.andThen(publishSafely))
        ).pipe(
          // Health, breaker, drain, fence, weight and strategy changes reach
          // `changes` (and the dashboard) as the set publishes them; the
          // counters (traffic, latency, in flight) wait for the next sample.
          // A target without `balancerChanges` shows up now, then on each sample.
          Effect.andThen(
            target.balancerChanges === undefined
              ? publishSafely
              : target.balancerChanges.pipe(Stream.runForEach(() => publishSafely), Effect.forkScoped)
          ),
          Effect.asVoid
        ),
      watched: Effect.sync(() => [...watched.values()]),
      snapshot,
      changes: SubscriptionRef.changes(latest)
    }
    return Context.make(MonitorTag, service).pipe(Context.add(ServerSet.OperationObserver, recorder.record))
  })
