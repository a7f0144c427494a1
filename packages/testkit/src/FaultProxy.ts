/**
 * A loopback TCP proxy that sits between a client and a real server and injects network faults
 * on demand: latency, a black hole (a hung network), connection resets, refused connections and
 * connections cut after a number of bytes.
 *
 * The proxy listens on a free loopback port and forwards every connection it accepts to its
 * target, which must be a loopback address too (127.0.0.0/8, ::1 or `localhost`): the fixture
 * never touches anything off the machine. Closing the scope closes the listener and every
 * connection and clears every timer.
 *
 * It runs past 400 lines because it documents each fault it injects, with an example: nearly
 * half of it is doc comments; the proxy's socket work is `internal/faultProxy.ts`.
 *
 * @example
 * ```ts
 * import { Duration, Effect } from "effect"
 * import postgres from "postgres"
 * import { FaultProxy, PostgresCluster } from "@tether/testkit"
 *
 * const program = Effect.gen(function*() {
 *   const cluster = yield* PostgresCluster.PostgresCluster
 *   const proxy = yield* FaultProxy.make({ target: cluster.primary })
 *   const sql = postgres(yield* proxy.rewrite(cluster.primary.url), { max: 1 })
 *   yield* proxy.setLatency(Duration.millis(50)) // every query now takes >= 100 ms
 *   yield* proxy.resetAll                        // the open connection breaks (ECONNRESET)
 *   yield* proxy.heal
 * }).pipe(Effect.scoped, Effect.provide(PostgresCluster.layer({ replicas: 0 })))
 * ```
 *
 * @since 0.1.0
 */
import { Context, Duration, Effect, Layer, Semaphore } from "effect"
import type { Scope } from "effect"
import { FixtureError } from "./FixtureError.ts"
import { Core, formatAddress, isLoopback } from "./internal/faultProxy.ts"
import type { RefuseMode as RefuseModeInternal } from "./internal/faultProxy.ts"

/**
 * Where the proxy forwards to: a loopback host and a port. A `PostgresCluster` node or a `Slapd`
 * server fits as it is.
 *
 * @example
 * ```ts
 * import { FaultProxy, PostgresCluster } from "@tether/testkit"
 *
 * declare const cluster: PostgresCluster.Cluster
 *
 * const target: FaultProxy.Target = { host: "127.0.0.1", port: 5432 }
 * const toPrimary = FaultProxy.make({ target: cluster.primary }) // a Node is a Target
 * ```
 *
 * @since 0.1.0
 */
export interface Target {
  /** `127.x.y.z`, `::1` or `localhost`; anything else is refused. */
  readonly host: string
  readonly port: number
}

/**
 * Options of {@link make} and {@link layer}.
 *
 * @example
 * ```ts
 * import { FaultProxy, Slapd } from "@tether/testkit"
 *
 * declare const ldap: Slapd.Directory
 *
 * const options: FaultProxy.Options = { target: ldap.server, listenHost: "127.0.0.1" }
 * ```
 *
 * @since 0.1.0
 */
export interface Options {
  readonly target: Target
  /** The loopback address to listen on: `127.x.y.z` or `::1`. Default `127.0.0.1`. */
  readonly listenHost?: string
}

/**
 * How {@link Proxy.refuseNew} refuses new connections:
 * - `reset` (default): the proxy accepts the TCP connection and resets it (RST) at once. The
 *   client's connect may succeed and its first read or write then fails with `ECONNRESET`.
 *   The port stays the proxy's, so turning it off cannot fail.
 * - `unlisten`: the proxy closes its listening socket, so the kernel refuses the handshake and
 *   the client's connect fails with `ECONNREFUSED`, like a server that is down. Turning it off
 *   listens again on the same port; that fails (with a `FixtureError`) in the rare case another
 *   process took the port meanwhile.
 *
 * Either way, connections that are already open are not touched (see {@link Proxy.resetAll}).
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import type { FaultProxy } from "@tether/testkit"
 *
 * declare const proxy: FaultProxy.Proxy
 *
 * const program = Effect.gen(function*() {
 *   yield* proxy.refuseNew(true, "unlisten") // new connects: ECONNREFUSED
 * })
 * ```
 *
 * @since 0.1.0
 */
export type RefuseMode = RefuseModeInternal

/**
 * Counters since the proxy started.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import type { FaultProxy } from "@tether/testkit"
 *
 * declare const proxy: FaultProxy.Proxy
 *
 * const program = Effect.gen(function*() {
 *   const { accepted, active, bytesToServer } = yield* proxy.stats
 * })
 * ```
 *
 * @since 0.1.0
 */
export interface Stats {
  /** Connections accepted and forwarded (not counting refused ones). */
  readonly accepted: number
  /** Connections reset on accept while `refuseNew(true, "reset")` was on. */
  readonly refused: number
  /** Connections open now. */
  readonly active: number
  /** Bytes forwarded from clients to the target. */
  readonly bytesToServer: number
  /** Bytes forwarded from the target to clients. */
  readonly bytesToClient: number
}

/**
 * The faults in force.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import type { FaultProxy } from "@tether/testkit"
 *
 * declare const proxy: FaultProxy.Proxy
 *
 * const program = Effect.gen(function*() {
 *   yield* proxy.heal
 *   const faults = yield* proxy.faults
 *   return faults.blackholed // false after `heal`
 * })
 * ```
 *
 * @since 0.1.0
 */
export interface Faults {
  readonly latency: Duration.Duration
  readonly blackholed: boolean
  /** How new connections are refused, or `undefined` when they are not. */
  readonly refusing: RefuseMode | undefined
  readonly closeAfterBytes: number | undefined
}

/**
 * A running proxy and its fault controls. Every control takes effect at once, on open
 * connections too, except `closeAfterBytes`, which applies to connections accepted afterwards.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { Client } from "ldapts"
 * import { FaultProxy, Slapd } from "@tether/testkit"
 *
 * const program = Effect.gen(function*() {
 *   const ldap = yield* Slapd.Slapd
 *   const proxy = yield* FaultProxy.make({ target: ldap.server })
 *   const client = new Client({ url: proxy.url("ldap") }) // ldap://127.0.0.1:PROXY_PORT
 *   yield* proxy.blackhole(true)
 * }).pipe(Effect.scoped, Effect.provide(Slapd.layer()))
 * ```
 *
 * @since 0.1.0
 */
export interface Proxy {
  /** The address the proxy listens on (`127.0.0.1` by default). */
  readonly host: string
  /** The proxy's port (chosen free at start; kept across `refuseNew(…, "unlisten")`). */
  readonly port: number
  /** `host:port`, with brackets for IPv6: `127.0.0.1:PORT`, `[::1]:PORT`. */
  readonly address: string
  /** Where connections are forwarded. */
  readonly target: Target
  /** `scheme://address`, for example `proxy.url("ldap")` → `ldap://127.0.0.1:PORT`. */
  readonly url: (scheme: string) => string
  /**
   * The same URL with its host and port replaced by the proxy's, keeping user, path and query:
   * `postgres://postgres@127.0.0.1:5432/postgres` → `postgres://postgres@127.0.0.1:PROXY/postgres`.
   * Fails on a URL that does not parse (the error does not repeat the URL, which may hold a
   * password).
   */
  readonly rewrite: (url: string) => Effect.Effect<string, FixtureError>
  readonly stats: Effect.Effect<Stats>
  readonly faults: Effect.Effect<Faults>
  /**
   * Delays every chunk, each way, by `latency` (a round trip takes at least twice as long) and
   * never reorders them. The TCP handshake with the proxy is not delayed. `0` turns it off.
   * Chunks already queued keep their delay. Fails on a negative or infinite duration.
   */
  readonly setLatency: (latency: Duration.Input) => Effect.Effect<void, FixtureError>
  /**
   * A hung network: while on, nothing is forwarded either way and connections stay open. New
   * connections are accepted by the proxy (the client's connect succeeds) but the target sees
   * nothing until the black hole ends. Data is held back, not dropped (reading from the sockets
   * pauses, so TCP backpressure stops the senders): when turned off everything held is
   * delivered in order, as TCP would after a healed partition.
   */
  readonly blackhole: (on: boolean) => Effect.Effect<void>
  /** Resets (RST) both sides of every open connection; returns how many there were. */
  readonly resetAll: Effect.Effect<number>
  /** Refuses new connections while on (see {@link RefuseMode}); open ones are untouched. */
  readonly refuseNew: (on: boolean, mode?: RefuseMode) => Effect.Effect<void, FixtureError>
  /**
   * Each connection accepted from now on is cut once `bytes` bytes went from the server to the
   * client: the client gets exactly those bytes and then a FIN (end of stream), the server side is
   * closed. `undefined` turns it off for new connections. Fails unless `bytes` is a non-negative
   * integer.
   */
  readonly closeAfterBytes: (bytes: number | undefined) => Effect.Effect<void, FixtureError>
  /** Clears every fault: no latency, no black hole, new connections accepted, no cut. */
  readonly heal: Effect.Effect<void, FixtureError>
}

/**
 * The service: a running {@link Proxy}, from {@link layer}.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { FaultProxy } from "@tether/testkit"
 *
 * const program = Effect.gen(function*() {
 *   const proxy = yield* FaultProxy.FaultProxy
 * }).pipe(Effect.provide(FaultProxy.layer({ target: { host: "127.0.0.1", port: 5432 } })))
 * ```
 *
 * @since 0.1.0
 */
export class FaultProxy extends Context.Service<FaultProxy, Proxy>()("@tether/testkit/FaultProxy") {}

/**
 * A layer that starts a proxy and closes it (and every connection through it) when released.
 * The options may come from an effect, to point the proxy at a server another layer started.
 *
 * @example
 * ```ts
 * import { Layer } from "effect"
 * import { FaultProxy, PostgresCluster } from "@tether/testkit"
 *
 * const PgBehindProxy = FaultProxy.layer(
 *   PostgresCluster.PostgresCluster.useSync((cluster) => ({ target: cluster.primary }))
 * ).pipe(Layer.provideMerge(PostgresCluster.layer({ replicas: 0 })))
 * ```
 *
 * @since 0.1.0
 */
export const layer: {
  (options: Options): Layer.Layer<FaultProxy, FixtureError>
  <E, R>(options: Effect.Effect<Options, E, R>): Layer.Layer<FaultProxy, FixtureError | E, R>
} = (<E, R>(options: Options | Effect.Effect<Options, E, R>): Layer.Layer<FaultProxy, FixtureError | E, R> =>
  Layer.effect(
    FaultProxy,
    Effect.isEffect(options) ? Effect.flatMap(options, (o) => make(o)) : make(options)
  )) as typeof layer

// ---------------------------------------------------------------------------------------------

const CLOSE_TIMEOUT = Duration.seconds(5)

const fail = (message: string, cause?: unknown) => Effect.fail(new FixtureError({ message, cause }))

const validate = (options: Options): Effect.Effect<void, FixtureError> => {
  const target = options.target as Target | undefined
  if (target === undefined || typeof target.host !== "string") {
    return fail("FaultProxy needs a target: { host, port } of a loopback server")
  }
  if (!isLoopback(target.host, true)) {
    return fail(
      `FaultProxy only forwards to loopback addresses (127.0.0.0/8, ::1, localhost), got target host "${target.host}"`
    )
  }
  if (!Number.isInteger(target.port) || target.port < 1 || target.port > 65535) {
    return fail(`FaultProxy target port must be an integer from 1 to 65535, got ${String(target.port)}`)
  }
  const listenHost = options.listenHost
  if (listenHost !== undefined && !isLoopback(listenHost, false)) {
    return fail(`FaultProxy listenHost must be a loopback IP address (127.x.y.z or ::1), got "${listenHost}"`)
  }
  return Effect.void
}

/**
 * Starts a proxy to `options.target` on a free loopback port; the scope owns it.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { FaultProxy } from "@tether/testkit"
 *
 * const program = Effect.gen(function*() {
 *   const proxy = yield* FaultProxy.make({ target: { host: "127.0.0.1", port: 5432 } })
 *   proxy.address // "127.0.0.1:40123"
 *   yield* proxy.refuseNew(true)
 * }).pipe(Effect.scoped)
 * ```
 *
 * @since 0.1.0
 */
export const make = (options: Options): Effect.Effect<Proxy, FixtureError, Scope.Scope> =>
  Effect.gen(function*() {
    yield* validate(options)
    const host = options.listenHost ?? "127.0.0.1"
    const target: Target = { host: options.target.host, port: options.target.port }
    const core = yield* Effect.acquireRelease(
      Effect.tryPromise({
        try: async () => {
          const core = new Core(target, host)
          await core.listen(0)
          return core
        },
        catch: (cause) => new FixtureError({ message: `FaultProxy cannot listen on ${host}: ${String(cause)}`, cause })
      }),
      (core) =>
        Effect.promise(() => core.close()).pipe(
          Effect.timeoutOption(CLOSE_TIMEOUT),
          Effect.flatMap((closed) =>
            closed._tag === "None"
              ? Effect.logWarning(`FaultProxy ${formatAddress(host, core.port)}: listener not closed in time`)
              : Effect.void
          )
        )
    )
    const port = core.port
    const address = formatAddress(host, port)
    yield* Effect.logDebug(`FaultProxy: ${address} -> ${formatAddress(target.host, target.port)}`)

    // Serialises the controls that (un)listen.
    const lock = yield* Semaphore.make(1)

    const setRefusing = (mode: RefuseMode | undefined): Effect.Effect<void, FixtureError> =>
      lock.withPermits(1)(
        Effect.gen(function*() {
          if (core.closed) return
          core.faults.refusing = mode
          if (mode === "unlisten") {
            core.unlisten()
          } else if (!core.listening) {
            yield* Effect.tryPromise({
              try: () => core.listen(port),
              catch: (cause) =>
                new FixtureError({
                  message: `FaultProxy cannot listen again on ${address} (${String(cause)}): another process ` +
                    "took the port while the proxy refused connections with \"unlisten\"; use the \"reset\" mode, " +
                    "which keeps the port",
                  cause
                })
            })
          }
        })
      )

    const setLatency = (latency: Duration.Input): Effect.Effect<void, FixtureError> =>
      Effect.suspend(() => {
        let ms: number
        try {
          ms = Duration.toMillis(latency)
        } catch (cause) {
          return fail(`FaultProxy latency is not a duration: ${String(latency)}`, cause)
        }
        if (!Number.isFinite(ms) || ms < 0) {
          return fail(`FaultProxy latency must be a finite, non-negative duration, got ${String(latency)}`)
        }
        core.faults.latencyMs = ms
        return Effect.void
      })

    const blackhole = (on: boolean): Effect.Effect<void> =>
      Effect.sync(() => {
        core.faults.blackholed = on
        core.kick()
      })

    const closeAfterBytes = (bytes: number | undefined): Effect.Effect<void, FixtureError> =>
      Effect.suspend(() => {
        if (bytes !== undefined && (!Number.isSafeInteger(bytes) || bytes < 0)) {
          return fail(`FaultProxy closeAfterBytes must be a non-negative integer or undefined, got ${String(bytes)}`)
        }
        core.faults.closeAfterBytes = bytes
        return Effect.void
      })

    const proxy: Proxy = {
      host,
      port,
      address,
      target,
      url: (scheme) => `${scheme}://${address}`,
      rewrite: (url) =>
        Effect.try({
          try: () => {
            const parsed = new URL(url)
            parsed.host = address
            if (parsed.host !== address) throw new Error(`cannot set the host of ${parsed.protocol} URLs`)
            return parsed.toString()
          },
          catch: (cause) =>
            new FixtureError({
              // Not echoing the URL: it may hold a password.
              message: `FaultProxy cannot rewrite the URL (${cause instanceof Error ? cause.message : String(cause)}): ` +
                "pass a URL with a host, like postgres://user@127.0.0.1:5432/db",
              cause
            })
        }),
      stats: Effect.sync(() => ({
        accepted: core.counters.accepted,
        refused: core.counters.refused,
        active: core.connections.size,
        bytesToServer: core.counters.bytesToServer,
        bytesToClient: core.counters.bytesToClient
      })),
      faults: Effect.sync(() => ({
        latency: Duration.millis(core.faults.latencyMs),
        blackholed: core.faults.blackholed,
        refusing: core.faults.refusing,
        closeAfterBytes: core.faults.closeAfterBytes
      })),
      setLatency,
      blackhole,
      resetAll: Effect.sync(() => core.resetAll()),
      refuseNew: (on, mode = "reset") =>
        mode === "reset" || mode === "unlisten"
          ? setRefusing(on ? mode : undefined)
          : fail(`FaultProxy refuseNew mode must be "reset" or "unlisten", got ${String(mode)}`),
      closeAfterBytes,
      heal: Effect.gen(function*() {
        core.faults.latencyMs = 0
        core.faults.closeAfterBytes = undefined
        yield* blackhole(false)
        yield* setRefusing(undefined)
      })
    }
    return proxy
  })
