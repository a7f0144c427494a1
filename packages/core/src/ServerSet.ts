/**
 * One manager over several servers: a {@link ConnectionPool} per endpoint, a
 * {@link Balancer} to pick among them, a {@link HealthMonitor} and a
 * {@link CircuitBreaker} per endpoint, and failover with retries — composed
 * into one service that keeps working while servers fail, slow down and
 * come back. Backend-agnostic: a {@link Driver} says how to connect, probe
 * and classify errors.
 *
 * Work runs only through the identity-bound view `set.as(key)` (`set.as()` for the driver's default identity).
 *
 * This module holds the public types, constructors and docs (two thirds of
 * it is doc comments, which is why it runs past 400 lines); the
 * implementation is `internal/serverSet.ts`, `internal/reconfigure.ts` and
 * the pool, balancer, breaker and health modules.
 *
 * @example
 * ```ts
 * import { Driver, ServerSet } from "@tether/core"
 * import { Effect } from "effect"
 *
 * // What the backend provides (e.g. `LdapDriver.make(…)` from @tether/ldap):
 * interface Client { readonly url: string }
 * declare const ldapDriver: Driver.Driver<Client, Error>
 * declare const search: (client: Client, base: string) => Effect.Effect<ReadonlyArray<string>, Error>
 *
 * const program = Effect.gen(function*() {
 *   const directory = yield* ServerSet.make({
 *     name: "directory",
 *     endpoints: ["ldap://ldap1:389", "ldap://ldap2:389", { url: "ldap://ldap3:389", weight: 2 }],
 *     driver: ldapDriver,
 *     strategy: "least-connections",
 *     pool: { min: 1, max: 10 },
 *     health: { interval: "1 second" }
 *   })
 *   const entries = yield* directory.as().use((client) => search(client, "ou=people,dc=example,dc=com"), {
 *     mode: "read",
 *     idempotent: true
 *   })
 *   console.log(yield* directory.status)
 * }).pipe(Effect.scoped)
 * ```
 *
 * @since 0.1.0
 */
import type { Duration, Effect, Redacted, Schedule, Scope, Stream, SubscriptionRef } from "effect"
import type { Context } from "effect"
import { Data, Layer } from "effect"
import type { AccessMode, Fence, Health, NoEndpointAvailable, Snapshot, Strategy } from "./Balancer.ts"
import type { BreakerOpen, BreakerState } from "./CircuitBreaker.ts"
import type * as CircuitBreaker from "./CircuitBreaker.ts"
import type * as ConnectionPool from "./ConnectionPool.ts"
import type { Driver } from "./Driver.ts"
import type { Endpoint, EndpointId, EndpointInput, InvalidEndpoint, Role } from "./Endpoint.ts"
import type { HealthState } from "./HealthMonitor.ts"
import type { Credentials } from "./Identity.ts"
import type * as IdentityPool from "./IdentityPool.ts"
import * as configFile from "./internal/configFile.ts"
import * as operationObserver from "./internal/operationObserver.ts"
import * as reconfigure from "./internal/reconfigure.ts"
import * as reconfigureWatch from "./internal/reconfigureWatch.ts"
import * as internal from "./internal/serverSet.ts"
import type { InvalidBreakerOptions, InvalidPoolOptions } from "./PoolError.ts"
import type { InvalidOptions } from "./Validation.ts"

/**
 * Options of {@link make}.
 *
 * @since 0.1.0
 * @category models
 */
export interface Options<C, E> {
  /** Names the set in logs, metrics and spans. */
  readonly name: string
  /** The servers: URLs or endpoint definitions (see `Endpoint`). */
  readonly endpoints: ReadonlyArray<EndpointInput | string>
  readonly driver: Driver<C, E>
  /** How to pick an endpoint. Default `"weighted-round-robin"`. */
  readonly strategy?: Strategy | undefined
  /** Options of every endpoint's pool (its name and acquire come from the set). */
  readonly pool?:
    | (Omit<ConnectionPool.Options<C, E, never>, "name" | "acquire" | "validate" | "isBroken"> & {
      /** Connections of one identity per endpoint (default `max`). */
      readonly maxPerIdentity?: number | undefined
    })
    | undefined
  /** Health monitoring of every endpoint; `false` turns it off (every endpoint counts as healthy). */
  readonly health?:
    | false
    | {
      /** Time between probes (jittered ±20%). Default 5 seconds. */
      readonly interval?: Duration.Input | undefined
      /** A probe slower than this fails. Default 2 seconds. */
      readonly timeout?: Duration.Input | undefined
      /** Latency EWMA above which an endpoint is degraded. Default: never. */
      readonly degradedLatency?: Duration.Input | undefined
      /** Failed probes in a row that make an endpoint unhealthy. Default 1. */
      readonly unhealthyAfter?: number | undefined
      /** Successful probes in a row that bring it back. Default 1. */
      readonly healthyAfter?: number | undefined
    }
    | undefined
  /** Circuit breaker of every endpoint; `false` turns it off. */
  readonly breaker?: false | Omit<CircuitBreaker.Options, "endpoint" | "classify"> | undefined
  /**
   * Failover and retry: a `Schedule` fed each failure (default: 4 attempts,
   * exponential backoff from 100 ms with jitter, none after 10 s); `false`
   * turns retries off.
   */
  readonly retry?: false | { readonly schedule?: Schedule.Schedule<unknown, unknown> | undefined } | undefined
  /**
   * Hedged reads: when an idempotent read has no answer after `delay`, send
   * it to a second endpoint too, take the first answer and interrupt the other.
   */
  readonly hedge?: { readonly delay: Duration.Input } | undefined
}

/**
 * How an operation may be run.
 *
 * @since 0.1.0
 * @category models
 */
export interface UseOptions {
  /**
   * `"read"` (any endpoint), `"write"` (only endpoints whose role accepts
   * writes), `"replica-only"` or `"replica-preferred"` (see `Balancer.AccessMode`).
   * Default `"read"`.
   */
  readonly mode?: AccessMode | undefined
  /**
   * Whether running the operation twice is harmless. An operation that
   * failed after it may have reached the server is only retried when this is
   * `true`. Default `false`.
   */
  readonly idempotent?: boolean | undefined
  /**
   * Names the operation for the {@link OperationObserver} (e.g. `"query"`,
   * `"search"`). Default `"use"`.
   */
  readonly operation?: string | undefined
}

/**
 * One finished `use`, as an {@link OperationObserver} hears it: the endpoint
 * that ran its last attempt (`"none"` when none could), and how long the
 * whole call took, failovers included.
 *
 * @since 0.2.0
 * @category models
 */
export interface Observation {
  readonly set: string
  readonly endpoint: string
  readonly operation: string
  readonly outcome: "success" | "failure" | "interrupted"
  readonly seconds: number
}

/**
 * Hears every finished `use` of every set, synchronously, when provided
 * (`@tether/observe`'s monitor records its latency histogram with it). Unset,
 * `use` reads no clock for it. Cheaper than a span per call: no span is built.
 *
 * @example
 * ```ts
 * import { ServerSet } from "@tether/core"
 * import { Effect } from "effect"
 *
 * declare const program: Effect.Effect<void>
 * const counted = program.pipe(
 *   Effect.provideService(ServerSet.OperationObserver, (o) => console.log(o.set, o.endpoint, o.outcome, o.seconds))
 * )
 * ```
 *
 * @since 0.2.0
 * @category observability
 */
export const OperationObserver: Context.Reference<((observation: Observation) => void) | undefined> =
  operationObserver.OperationObserver

/**
 * The status of one endpoint.
 *
 * @since 0.1.0
 * @category models
 */
export interface EndpointStatus {
  readonly id: EndpointId
  readonly url: string
  /**
   * The role the probes found (else the declared one); `stale-primary` while
   * the endpoint is fenced: it claimed the primary role on an old timeline
   * (split brain) and gets no work until it rejoins as a replica or is
   * unfenced (see {@link ServerSet.unfence}).
   */
  readonly role: Role | "stale-primary"
  /** The last timeline (term) a probe reported, when the driver reports one. */
  readonly timeline: number | undefined
  /** Why the endpoint is fenced, while it is. */
  readonly fenced: Fence | undefined
  readonly weight: number
  readonly priority: number
  /** Drained by the operator (see {@link Reconfigure.drain}): listed, gets no new work. */
  readonly draining?: boolean | undefined
  readonly health: Health
  /** The monitor's view; `undefined` when health monitoring is off. */
  readonly monitor: HealthState | undefined
  /**
   * Set while the health probe's own credentials (the driver's default
   * identity, e.g. a service account) are rejected: the server answers and
   * stays usable for identities that can bind. Fix the probe's credentials.
   */
  readonly probeAuthFailure?: string | undefined
  /** The breaker's state; `undefined` when the breaker is off. */
  readonly breaker: BreakerState | undefined
  /** The endpoint's pool, across identities (per identity in `pool.identities`). */
  readonly pool: IdentityPool.Stats
  /** Latency EWMA of probes and calls, in milliseconds. */
  readonly latencyMillis: number | undefined
  readonly inFlight: number
  readonly requests: number
  readonly failures: number
}

/**
 * A snapshot of a whole set. Holds no secret.
 *
 * @since 0.1.0
 * @category models
 */
export interface Status {
  readonly name: string
  readonly strategy: Strategy
  readonly endpoints: ReadonlyArray<EndpointStatus>
}

/**
 * Everything `use` can fail with besides the operation's own errors.
 *
 * @since 0.1.0
 * @category models
 */
export type UseError<E> = E | ConnectionPool.BorrowError | BreakerOpen | NoEndpointAvailable

/**
 * A {@link ServerSet} as one identity, from {@link ServerSet.as}: every
 * connection it borrows is bound as the identity its key holds (`I` in the
 * requirements), or as the driver's default identity when it has no key
 * (`I` is `never`).
 *
 * @example
 * ```ts
 * import { Identity, ServerSet } from "@tether/core"
 * import { Effect, Redacted, Stream } from "effect"
 *
 * interface Client { readonly searchPaginated: (base: string) => AsyncIterable<ReadonlyArray<string>> }
 * declare const directory: ServerSet.ServerSet<Client, Error>
 *
 * class EndUser extends Identity.Service<EndUser>()("app/EndUser") {}
 *
 * const toError = (cause: unknown) => new Error("search failed", { cause })
 * const base = "ou=people,dc=example,dc=com"
 * const asEndUser: ServerSet.View<Client, Error, EndUser> = directory.as(EndUser)
 *
 * // One connection, bound as the end user, held until the last page has been read:
 * const pages = asEndUser.useStream((client) => Stream.fromAsyncIterable(client.searchPaginated(base), toError))
 * const program = Stream.runCollect(pages).pipe(
 *   Effect.provideService(EndUser, Identity.make("uid=alice,ou=people", Redacted.make("secret"), { label: "alice" }))
 * )
 * ```
 *
 * @since 0.3.0
 * @category models
 */
export interface View<C, E, I> {
  /** The identity's key; `undefined` for the driver's default identity. */
  readonly key: Context.Key<I, Credentials> | undefined
  /**
   * Borrows a connection bound as this view's identity from the endpoint the
   * balancer picks, runs `f` on it, and fails over and retries on the
   * retryable faults the driver classifies (see {@link UseOptions}).
   */
  readonly use: <A, E2, R>(
    f: (connection: C, endpoint: Endpoint) => Effect.Effect<A, E2, R>,
    options?: UseOptions
  ) => Effect.Effect<A, UseError<E> | E2, R | I>
  /**
   * Like `use`, for a stream: one connection is held from the stream's start
   * until it ends (or is interrupted), then returned. Failover covers getting
   * the connection, not elements already emitted.
   */
  readonly useStream: <A, E2, R>(
    f: (connection: C, endpoint: Endpoint) => Stream.Stream<A, E2, R>,
    options?: UseOptions
  ) => Stream.Stream<A, UseError<E> | E2, R | I>
}

/**
 * A running set of servers.
 *
 * @since 0.1.0
 * @category models
 */
export interface ServerSet<C, E> {
  readonly name: string
  /**
   * The set as one identity, and the only way to run work on it:
   * `set.as(EndUser)` runs every operation on a connection bound as the
   * identity `EndUser` holds (so `EndUser` appears in the effects'
   * requirements and running one without it does not compile), `set.as()` or
   * `set.as(undefined)` as the driver's default identity. A client that
   * serves several identities keeps one code path: it holds a key that may be
   * `undefined` and calls `set.as(key).use(…)` or `set.as(key).useStream(…)`.
   * Connections are pooled per identity under one limit per endpoint (see
   * `IdentityPool`).
   *
   * Views are cached per key (weakly): the same key gives the same view, so
   * `set.as(key)` per call allocates nothing once the key's view exists.
   *
   * @example
   * ```ts
   * import { Identity, ServerSet } from "@tether/core"
   * import type { Context, Effect } from "effect"
   *
   * interface Client { readonly url: string }
   * declare const directory: ServerSet.ServerSet<Client, Error>
   * declare const whoami: (client: Client) => Effect.Effect<string, Error>
   *
   * class EndUser extends Identity.Service<EndUser>()("app/EndUser") {}
   *
   * // As the identity the EndUser service holds: Effect<string, …, EndUser>
   * const mine = directory.as(EndUser).use(whoami)
   * // As the driver's default identity: Effect<string, …, never>
   * const service = directory.as().use(whoami)
   *
   * // One code path for both, in a client generic over the identity:
   * const whoamiAs = <R>(key: Context.Key<R, Identity.Credentials> | undefined) =>
   *   directory.as(key).use(whoami, { mode: "read", idempotent: true }) // Effect<string, …, R>
   * ```
   */
  readonly as: <I = never>(key?: Context.Key<I, Credentials> | undefined) => View<C, E, I>
  /** A snapshot of every endpoint: health, breaker, pool, traffic. */
  readonly status: Effect.Effect<Status>
  /** The endpoints now in the set. */
  readonly endpoints: Effect.Effect<ReadonlyArray<Endpoint>>
  /**
   * The balancer's published state (see `Balancer.Snapshot`): the current
   * one, then each change of an endpoint's health, role, breaker, drain,
   * fence or weights, or of the strategy. `status` reads the same state.
   */
  readonly balancerChanges: Stream.Stream<Snapshot>
  /** Adds an endpoint at run time: builds its pool, monitor and breaker. */
  readonly add: (endpoint: EndpointInput | string) => Effect.Effect<void, InvalidEndpoint | InvalidPoolOptions>
  /**
   * Removes an endpoint at run time: no new work goes to it, work in flight
   * finishes (its pool drains), then its connections close.
   */
  readonly remove: (id: EndpointId) => Effect.Effect<void>
  /**
   * Lifts the fence of an endpoint fenced as a stale primary, on the
   * operator's word (its timeline becomes the newest); logged at WARN.
   * Answers whether it was fenced. While another endpoint still claims the
   * primary role on a newer or the same timeline, the next probe fences it
   * again: demote or stop the other one first.
   *
   * @example
   * ```ts
   * import type { ServerSet } from "@tether/core"
   * import { Effect } from "effect"
   *
   * declare const set: ServerSet.ServerSet<unknown, Error>
   *
   * const program = Effect.gen(function*() {
   *   const status = yield* set.status
   *   const stale = status.endpoints.filter((e) => e.role === "stale-primary")
   *   // after rebuilding the cluster around it:
   *   if (stale.length > 0) yield* set.unfence(stale[0]!.id)
   * })
   * ```
   */
  readonly unfence: (id: EndpointId) => Effect.Effect<boolean>
  /** Changes the running set: endpoints, weights, pools, breakers, strategy (see {@link Reconfigure}). */
  readonly reconfigure: Reconfigure
}

/**
 * Breaker thresholds of every endpoint (see `CircuitBreaker.Options`).
 *
 * @since 0.1.0
 * @category models
 */
export type BreakerThresholds = Omit<CircuitBreaker.Options, "endpoint" | "classify">

/**
 * A whole new configuration for {@link Reconfigure.apply}: what is left out
 * stays as it is. `ServerSet.Options` fit (their other fields are ignored).
 *
 * @since 0.1.0
 * @category models
 */
export interface Reconfiguration {
  readonly endpoints?: ReadonlyArray<EndpointInput | string> | undefined
  readonly strategy?: Strategy | undefined
  readonly pool?: IdentityPool.Limits | undefined
  /** `false` only where the breakers were off from the start (they cannot be turned on or off while running). */
  readonly breaker?: false | BreakerThresholds | undefined
}

/**
 * One change {@link Reconfigure.apply} made.
 *
 * @since 0.1.0
 * @category models
 */
export type Change =
  | { readonly _tag: "EndpointAdded"; readonly endpoint: EndpointId }
  | { readonly _tag: "EndpointRemoved"; readonly endpoint: EndpointId }
  | { readonly _tag: "EndpointReplaced"; readonly endpoint: EndpointId }
  | {
    readonly _tag: "EndpointUpdated"
    readonly endpoint: EndpointId
    readonly weight: number
    readonly priority: number
    readonly role: Role
  }
  | { readonly _tag: "PoolResized"; readonly limits: IdentityPool.Limits }
  | { readonly _tag: "BreakerChanged" }
  | { readonly _tag: "StrategyChanged"; readonly from: Strategy; readonly to: Strategy }

/**
 * Everything {@link Reconfigure.apply} can fail with; nothing is changed then.
 *
 * @since 0.1.0
 * @category models
 */
export type ApplyError = InvalidEndpoint | InvalidPoolOptions | InvalidBreakerOptions | InvalidOptions

/**
 * The endpoint named is not in the set. List the set's endpoints with
 * `status` and use one of their ids.
 *
 * @since 0.1.0
 * @category errors
 */
export class UnknownEndpoint extends Data.TaggedError("UnknownEndpoint")<{
  readonly set: string
  readonly endpoint: string
  readonly known: ReadonlyArray<string>
}> {
  override get message(): string {
    return `server set "${this.set}" has no endpoint ${JSON.stringify(this.endpoint)}; ` +
      `its endpoints are ${this.known.map((k) => JSON.stringify(k)).join(", ") || "none"}`
  }
}

/**
 * Run-time reconfiguration of a running set, or of a client's sets (e.g.
 * `PgClient.reconfigure`). No change fails or interrupts work in flight;
 * every change is logged at INFO.
 *
 * @example
 * ```ts
 * import type { ServerSet } from "@tether/core"
 * import { Effect } from "effect"
 *
 * declare const handle: ServerSet.Reconfigure
 *
 * const maintenance = Effect.gen(function*() {
 *   yield* handle.drain("postgres://db2:5432/app") // no new work; in-flight work finishes
 *   // … patch and restart db2 …
 *   yield* handle.enable("postgres://db2:5432/app")
 *   yield* handle.setWeight("postgres://db2:5432/app", 3)
 *   yield* handle.resizePool({ max: 20 })
 *   yield* handle.setBreaker({ consecutiveFailures: 10 })
 *   yield* handle.setStrategy("least-connections")
 * })
 * ```
 *
 * @since 0.1.0
 * @category models
 */
export interface Reconfigure {
  readonly name: string
  readonly status: Effect.Effect<Status>
  /** Adds an endpoint (see {@link ServerSet.add}). */
  readonly add: (endpoint: EndpointInput | string) => Effect.Effect<void, InvalidEndpoint | InvalidPoolOptions>
  /** Removes an endpoint once its work in flight is done (see {@link ServerSet.remove}). */
  readonly remove: (id: EndpointId) => Effect.Effect<void>
  /** No new work goes to the endpoint; work in flight finishes; it stays listed as draining, its pool open. */
  readonly drain: (id: EndpointId) => Effect.Effect<void, UnknownEndpoint>
  /** Lets a drained endpoint take work again. */
  readonly enable: (id: EndpointId) => Effect.Effect<void, UnknownEndpoint>
  /** Changes an endpoint's weight (a positive integer) from the next pick on. */
  readonly setWeight: (id: EndpointId, weight: number) => Effect.Effect<void, UnknownEndpoint | InvalidEndpoint>
  /**
   * Resizes the pool of one endpoint, or of every endpoint (and of those
   * added later) when `id` is left out (see `IdentityPool.resize`).
   */
  readonly resizePool: (
    limits: IdentityPool.Limits,
    id?: EndpointId
  ) => Effect.Effect<void, UnknownEndpoint | InvalidPoolOptions>
  /** New breaker thresholds for every endpoint (see `CircuitBreaker.reconfigure`). */
  readonly setBreaker: (thresholds: BreakerThresholds) => Effect.Effect<void, InvalidBreakerOptions>
  /** Switches the balancing strategy from the next pick on. */
  readonly setStrategy: (strategy: Strategy) => Effect.Effect<void, InvalidOptions>
  /**
   * Diffs a whole new configuration against the running one and applies the
   * difference: endpoints added, removed, re-weighted (or replaced when
   * their connection settings changed), pool limits, breaker thresholds,
   * strategy. Everything is checked first: a bad configuration fails and
   * changes nothing. Answers the changes made.
   */
  readonly apply: (config: Reconfiguration) => Effect.Effect<ReadonlyArray<Change>, ApplyError>
}

/**
 * Starts a set in the current scope; closing the scope stops its monitors and
 * drains its pools.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make: <C, E>(
  options: Options<C, E>
) => Effect.Effect<ServerSet<C, E>, InvalidEndpoint | InvalidPoolOptions, Scope.Scope> = internal.make

/**
 * A `Layer` providing a set under your own service key.
 *
 * @example
 * ```ts
 * import { Driver, ServerSet } from "@tether/core"
 * import { Context } from "effect"
 *
 * interface Client { readonly url: string }
 * class LdapError extends Error {}
 * declare const driver: Driver.Driver<Client, LdapError>
 * const endpoints = ["ldap://ldap1:389", "ldap://ldap2:389"]
 *
 * class Directory extends Context.Service<Directory, ServerSet.ServerSet<Client, LdapError>>()("app/Directory") {}
 * const DirectoryLive = ServerSet.layer(Directory, { name: "directory", endpoints, driver })
 * ```
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = <I, C, E>(
  key: Context.Key<I, ServerSet<C, E>>,
  options: Options<C, E>
): Layer.Layer<I, InvalidEndpoint | InvalidPoolOptions> => Layer.effect(key, make(options))

/**
 * One {@link Reconfigure} handle over several sets serving the same servers
 * (e.g. a client's exclusive and multiplexed sets): each change goes to every
 * set in turn; `status` is the first set's.
 *
 * @since 0.1.0
 * @category combinators
 */
export const combineReconfigure: (
  first: Reconfigure,
  ...rest: ReadonlyArray<Reconfigure>
) => Reconfigure = reconfigure.combine

/**
 * The {@link Reconfigure} handle of a client with no servers to steer (an
 * in-process database such as PGlite): adding an endpoint fails, naming one
 * fails with {@link UnknownEndpoint}, the rest changes nothing.
 *
 * @since 0.1.0
 * @category constructors
 */
export const serverlessReconfigure: (name: string, status: Effect.Effect<Status>) => Reconfigure = reconfigure.serverless

/**
 * Options of {@link watchConfig}.
 *
 * @since 0.1.0
 * @category models
 */
export interface WatchConfigOptions<A, E> {
  /** Reads the source's text (e.g. a file). */
  readonly read: Effect.Effect<string, E>
  /** Parses and checks it. */
  readonly decode: (text: string) => Effect.Effect<A, E>
  /** The part `apply` understands (endpoints, strategy, pool, breaker). */
  readonly toReconfiguration: (config: A) => Reconfiguration
  readonly target: Reconfigure
  /** Time between two reads. Default 5 seconds. */
  readonly interval?: Duration.Input | undefined
  /** Names the source in logs, e.g. the file's path. Default `configuration`. */
  readonly label?: string | undefined
}

/**
 * A running watch (see {@link watchConfig}).
 *
 * @since 0.1.0
 * @category models
 */
export interface ConfigWatch<A, E> {
  /** The last configuration applied: its current value and a stream of changes. */
  readonly config: SubscriptionRef.SubscriptionRef<A>
  /**
   * Reads and applies the source now (e.g. on SIGHUP); answers the changes
   * made. A bad source fails (typed, logged) and changes nothing.
   */
  readonly reload: Effect.Effect<ReadonlyArray<Change>, E | ApplyError>
}

/**
 * Watches a configuration source until the scope closes: reads it now and
 * every `interval`, and applies each change through `target.apply` (logged at
 * INFO). A source that cannot be read, parsed or applied is logged at ERROR
 * and changes nothing; the last good configuration stays. Fails at start when
 * the source is bad then. Polls rather than using `fs.watch`, which misses
 * files replaced by a rename (editors, Kubernetes ConfigMaps); `TestClock`
 * drives the polls in tests. `LdapConfig.watch` and `PgConfig.watch` watch
 * their JSON files with it.
 *
 * @since 0.1.0
 * @category reconfiguration
 */
export const watchConfig: <A, E>(
  options: WatchConfigOptions<A, E>
) => Effect.Effect<ConfigWatch<A, E>, E | ApplyError, Scope.Scope> = reconfigureWatch.make

/**
 * What a user sets when watching a configuration file (see {@link watchJsonFile}).
 *
 * @since 0.1.0
 * @category models
 */
export interface WatchFileOptions {
  /** Time between two reads of the file. Default 5 seconds. */
  readonly interval?: Duration.Input | undefined
  /** The password, when the file leaves it out (e.g. read from the environment). */
  readonly password?: Redacted.Redacted<string> | undefined
}

/**
 * Options of {@link watchJsonFile}: the file, what the client reads in it, and where changes go.
 *
 * @since 0.1.0
 * @category models
 */
export interface WatchJsonFileOptions<A, E> extends WatchFileOptions {
  readonly file: string
  /** The section the client reads when the document has one (e.g. `"ldap"`); else the whole document. */
  readonly section: string
  /** The typed error for a file that cannot be read or is not JSON; `problem` never quotes the file. */
  readonly invalid: (problem: string) => E
  /** Decodes and checks the section (the password filled in). */
  readonly decode: (section: unknown) => Effect.Effect<A, E>
  /** The part `apply` understands (endpoints, strategy, pool, breaker). */
  readonly toReconfiguration: (config: A) => Reconfiguration
  readonly target: Reconfigure
  /** Names the file in logs. Default: its path. */
  readonly label?: string | undefined
}

/**
 * {@link watchConfig} over a JSON file: `LdapConfig.watch` and `PgConfig.watch`
 * each read their section of one file with it. A file that cannot be read or
 * parsed is the caller's typed error, which never quotes the file (it may hold
 * a password).
 *
 * @example
 * ```ts
 * import { ServerSet } from "@tether/core"
 * import { Data, Effect } from "effect"
 *
 * class BadFile extends Data.TaggedError("BadFile")<{ readonly problem: string }> {}
 * declare const target: ServerSet.Reconfigure
 *
 * const watching = ServerSet.watchJsonFile({
 *   file: "/etc/app/db.json",
 *   section: "db",
 *   invalid: (problem) => new BadFile({ problem }),
 *   decode: (section) => Effect.succeed(section as ServerSet.Reconfiguration),
 *   toReconfiguration: (config) => config,
 *   target
 * })
 * ```
 *
 * @since 0.1.0
 * @category reconfiguration
 */
export const watchJsonFile: <A, E>(
  options: WatchJsonFileOptions<A, E>
) => Effect.Effect<ConfigWatch<A, E>, E | ApplyError, Scope.Scope> = configFile.watch
