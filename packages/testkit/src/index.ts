/**
 * @tether/testkit — real-server fixtures for integration tests.
 *
 * @since 0.1.0
 */

/**
 * A PostgreSQL primary with streaming replicas on loopback ports, with fault controls.
 *
 * @example
 * ```ts
 * import { PostgresCluster } from "@tether/testkit"
 * const TestCluster = PostgresCluster.layer({ replicas: 1 })
 * ```
 *
 * @since 0.1.0
 */
export * as PostgresCluster from "./PostgresCluster.ts"

/**
 * OpenLDAP `slapd` servers (optionally replicating, optionally with TLS) seeded with users.
 *
 * @example
 * ```ts
 * import { Slapd } from "@tether/testkit"
 * const TestLdap = Slapd.layer({ servers: 2, tls: true })
 * ```
 *
 * @since 0.1.0
 */
export * as Slapd from "./Slapd.ts"

/**
 * The typed error of every fixture.
 *
 * @since 0.1.0
 */
export { FixtureError } from "./FixtureError.ts"

/**
 * A loopback TCP proxy that injects faults between a client and a real server: latency, a black
 * hole, resets, refused connections, connections cut after N bytes.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { FaultProxy, PostgresCluster } from "@tether/testkit"
 *
 * const program = Effect.gen(function*() {
 *   const cluster = yield* PostgresCluster.PostgresCluster
 *   const proxy = yield* FaultProxy.make({ target: cluster.primary })
 *   yield* proxy.blackhole(true)
 * }).pipe(Effect.scoped, Effect.provide(PostgresCluster.layer({ replicas: 0 })))
 * ```
 *
 * @since 0.1.0
 */
export * as FaultProxy from "./FaultProxy.ts"

/**
 * A real PgBouncer (Debian's `pgbouncer`) in front of a PostgreSQL server, in a temp dir on a
 * loopback port, SCRAM users, pooling mode of your choice.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { PgBouncer, PostgresCluster } from "@tether/testkit"
 *
 * const program = Effect.gen(function*() {
 *   const cluster = yield* PostgresCluster.PostgresCluster
 *   const bouncer = yield* PgBouncer.make({ target: cluster.primary, poolMode: "transaction" })
 * }).pipe(Effect.scoped, Effect.provide(PostgresCluster.layer({ replicas: 0 })))
 * ```
 *
 * @since 0.2.0
 */
export * as PgBouncer from "./PgBouncer.ts"

/**
 * A real Prometheus server on a loopback port (temp dir, scoped) scraping the targets you give it,
 * with its HTTP API for queries.
 *
 * @example
 * ```ts
 * import { Prometheus } from "@tether/testkit"
 * const TestPrometheus = Prometheus.layer({ targets: ["127.0.0.1:9464"] })
 * ```
 *
 * @since 0.1.0
 */
export * as Prometheus from "./Prometheus.ts"

/**
 * A steady load for tests that change something while work runs: every outcome counted, progress
 * waited for by count, never by time.
 *
 * @example
 * ```ts
 * import { SteadyLoad } from "@tether/testkit"
 * import { Effect } from "effect"
 *
 * declare const read: Effect.Effect<number, Error>
 * const load = SteadyLoad.start(read, { fibers: 4 })
 * ```
 *
 * @since 0.2.0
 */
export * as SteadyLoad from "./SteadyLoad.ts"
