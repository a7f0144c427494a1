/**
 * Pipelining: single-request operations of the client's default identity
 * share connections, up to `depth` outstanding operations on each (LDAP
 * message ids tell their answers apart, RFC 4511 4.1.1.1).
 *
 * A *carrier* is one ordinary, exclusive borrow from the server set
 * (`set.as().use`: balancer, breaker, pool), held while operations run on its
 * connection and given back when it has been idle for a few milliseconds
 * (one sweep for all carriers, no timer per operation), when it is older than `maxHoldMillis` (so borrowers waiting on the
 * pool get their turn), or when its connection breaks. Operations on a
 * carrier skip the per-operation borrow; everything else stays as it was:
 *
 * - **Identity.** Only the default identity is pipelined, and a carrier's
 *   connection is borrowed exclusively, so nothing re-binds it while
 *   operations run on it (re-binding happens to idle connections only).
 * - **Never unbound.** A carrier whose socket is gone (`LdapDriver.isReady`)
 *   takes no more operations; the operation goes the ordinary way, on a
 *   connection of its own (it was never sent).
 * - **Failures.** An operation that fails because the connection broke was
 *   sent: a read (idempotent) is run again the ordinary way, with the set's
 *   retry and failover; a write fails with the driver's error, which says it
 *   may have reached the server. The carrier's borrow then fails with that
 *   error too, so the pool destroys the connection and the breaker counts it.
 * - **Connection state.** Paged searches keep the paged-results state on the
 *   connection (OpenLDAP holds one per connection): one paged search per
 *   carrier at a time; streams, extended operations and binds never use a
 *   carrier.
 *
 * @internal
 */
import { ServerSet } from "@tether/core"
import { Cause, Clock, Effect, Exit, Scope } from "effect"
import * as LdapDriver from "../LdapDriver.ts"
import type { LdapConnection } from "../LdapDriver.ts"
import { classify, isBroken } from "../LdapError.ts"
import type { LdapError } from "../LdapError.ts"

/** One held borrow, serving operations. */
interface Carrier {
  readonly connection: LdapConnection
  readonly since: number
  inFlight: number
  /** Operations started, to tell an idle carrier from a busy one between two checks. */
  served: number
  /** Takes new operations. */
  open: boolean
  /** A paged search runs on it. */
  paging: boolean
  /** `served` at the previous sweep. */
  swept: number
  corked: boolean
  failure: LdapError | undefined
  /** Gives the borrow back (the exit is the borrow's). */
  readonly finish: (exit: Exit.Exit<void, LdapError>) => void
}

/** @internal */
export interface Options {
  /** Outstanding operations per connection. */
  readonly depth: number
  /** The most carriers per access mode (the pool's size for the default identity). */
  readonly maxCarriers: number
  /** A carrier older than this takes no new operations (default 250 ms). */
  readonly maxHoldMillis?: number | undefined
}

/** @internal */
export interface RunOptions {
  readonly write: boolean
  /** A paged search: at most one per connection. */
  readonly paging?: boolean | undefined
}

/** @internal */
export interface Pipeline {
  /**
   * Runs `f` on a carrier's connection; when no carrier can take it now,
   * runs `fallback` (the ordinary borrow).
   */
  readonly run: <A, E, R>(
    operation: string,
    f: (connection: LdapConnection) => Promise<A>,
    options: RunOptions,
    fallback: Effect.Effect<A, E, R>
  ) => Effect.Effect<A, E | LdapError, R>
  /** Open carriers and the operations in flight on them (for tests and status). */
  readonly snapshot: () => { readonly carriers: number; readonly inFlight: ReadonlyArray<number> }
}

/** @internal */
export const make = (
  set: ServerSet.ServerSet<LdapConnection, LdapError>,
  options: Options
): Effect.Effect<Pipeline, never, Scope.Scope> =>
  Effect.gen(function*() {
    const scope = yield* Scope.Scope
    const clock = yield* Clock.Clock
    const maxHold = options.maxHoldMillis ?? 250
    const sweepMillis = 5
    const lanes = { read: [] as Array<Carrier>, write: [] as Array<Carrier> }
    const opening = { read: 0, write: 0 }
    let closed = false
    yield* Scope.addFinalizer(scope, Effect.sync(() => (closed = true)))

    const retire = (lane: Array<Carrier>, carrier: Carrier) => {
      carrier.open = false
      const i = lane.indexOf(carrier)
      if (i >= 0) lane.splice(i, 1)
      if (carrier.inFlight === 0) carrier.finish(carrier.failure === undefined ? Exit.void : Exit.fail(carrier.failure))
    }

    // Idle carriers are given back by one sweep every few milliseconds (no timer per operation): a
    // carrier that served nothing since the previous sweep and has nothing in flight goes back to the pool.
    let sweeping: ReturnType<typeof setTimeout> | undefined
    const sweep = () => {
      sweeping = undefined
      for (const lane of [lanes.read, lanes.write]) {
        for (const carrier of [...lane]) {
          if (carrier.inFlight === 0 && carrier.served === carrier.swept) retire(lane, carrier)
          else carrier.swept = carrier.served
        }
      }
      armSweep()
    }
    const armSweep = () => {
      if (sweeping !== undefined || closed || lanes.read.length + lanes.write.length === 0) return
      sweeping = setTimeout(sweep, sweepMillis)
      sweeping.unref?.()
    }
    yield* Scope.addFinalizer(scope, Effect.sync(() => {
      if (sweeping !== undefined) clearTimeout(sweeping)
    }))

    const openCarrier = (mode: "read" | "write") => {
      opening[mode]++
      let lent = false
      const lane = lanes[mode]
      const borrow = set.as().use(
        (connection) =>
          Effect.callback<void, LdapError>((resume) => {
            lent = true
            opening[mode]--
            const carrier: Carrier = {
              connection,
              since: clock.currentTimeMillisUnsafe(),
              inFlight: 0,
              served: 0,
              open: !closed,
              paging: false,
              swept: -1,
              corked: false,
              failure: undefined,
              finish: (exit) => resume(exit)
            }
            if (!carrier.open) return resume(Exit.void)
            lane.push(carrier)
            armSweep()
            // Interrupted (the client's scope closes): no new operations.
            return Effect.sync(() => {
              carrier.open = false
              const i = lane.indexOf(carrier)
              if (i >= 0) lane.splice(i, 1)
            })
          }),
        // Not idempotent: once lent, a failure of the borrow is never retried (no second carrier from one borrow).
        { mode, idempotent: false }
      ).pipe(
        // The carrier is not an operation: the operations on it report themselves (see `run`).
        Effect.provideService(ServerSet.OperationObserver, undefined)
      )
      return Effect.forkIn(
        // Its failures were seen by the set (breaker, pool); the operations report their own.
        Effect.ignore(Effect.ensuring(borrow, Effect.sync(() => {
          // Failed or interrupted before lending: nothing was registered.
          if (!lent) opening[mode]--
        }))),
        scope
      )
    }

    /** The least busy carrier with room, if any; retires the old and the broken on the way. */
    const pick = (lane: Array<Carrier>, paging: boolean): Carrier | undefined => {
      let best: Carrier | undefined
      const now = lane.length > 0 ? clock.currentTimeMillisUnsafe() : 0
      for (let i = 0; i < lane.length; i++) {
        const carrier = lane[i]!
        if (!LdapDriver.isReady(carrier.connection) || now - carrier.since >= maxHold) {
          retire(lane, carrier)
          i--
          continue
        }
        // A socket not open yet (an anonymous connection opens it on its first operation): one operation
        // at a time until it is, or a second one would ask ldapts for a second socket.
        const room = carrier.connection.client.isConnected ? options.depth : 1
        if (carrier.inFlight >= room || (paging && carrier.paging)) continue
        if (best === undefined || carrier.inFlight < best.inFlight) best = carrier
        if (carrier.inFlight === 0) break
      }
      return best
    }

    /** Holds the socket's writes until the current turn's ticks and microtasks have run. */
    const cork = (carrier: Carrier) => {
      const socket = carrier.connection.socket.current
      if (carrier.corked || socket === undefined) return
      carrier.corked = true
      socket.cork()
      process.nextTick(() => {
        carrier.corked = false
        socket.uncork()
      })
    }

    const run = <A, E, R>(
      operation: string,
      f: (connection: LdapConnection) => Promise<A>,
      runOptions: RunOptions,
      fallback: Effect.Effect<A, E, R>
    ): Effect.Effect<A, E | LdapError, R> =>
      Effect.withFiber((fiber) => {
        const mode = runOptions.write ? "write" : "read"
        const lane = lanes[mode]
        const paging = runOptions.paging === true
        const carrier = closed ? undefined : pick(lane, paging)
        // Every carrier busy and room for another: open one for the next operations.
        const grow = !closed && opening[mode] === 0 && lane.length < options.maxCarriers &&
          (carrier === undefined || carrier.inFlight > 0)
        if (carrier === undefined) return grow ? Effect.andThen(openCarrier(mode), fallback) : fallback
        // Others in flight: their answers wake several operations in one turn; their requests leave in one write.
        if (carrier.inFlight > 0) cork(carrier)
        carrier.inFlight++
        carrier.served++
        if (paging) carrier.paging = true
        const observer = fiber.getRef(ServerSet.OperationObserver)
        const started = observer === undefined ? 0n : clock.currentTimeNanosUnsafe()
        const onCarrier = Effect.onExitPrimitive(
          LdapDriver.attempt(carrier.connection, operation, () => f(carrier.connection)),
          (exit) => {
            if (observer !== undefined) {
              observer({
                set: set.name,
                endpoint: carrier.connection.endpoint,
                operation,
                outcome: exit._tag === "Success" ? "success" : Cause.hasInterruptsOnly(exit.cause) ? "interrupted" : "failure",
                seconds: Number(clock.currentTimeNanosUnsafe() - started) / 1e9
              })
            }
            carrier.inFlight--
            if (paging) carrier.paging = false
            if (exit._tag === "Failure") {
              const error = exit.cause.reasons.find((r) => r._tag === "Fail")
              if (error !== undefined && isBroken(error.error)) {
                carrier.failure ??= error.error as LdapError
                carrier.open = false
              }
            }
            if (!carrier.open && carrier.inFlight === 0) retire(lane, carrier)
            return undefined
          }
        )
        const guarded: Effect.Effect<A, E | LdapError, R> = runOptions.write
          ? onCarrier
          // A read that failed with its connection is run again, the ordinary way (retry, failover).
          : Effect.catch(onCarrier, (error: LdapError): Effect.Effect<A, E | LdapError, R> =>
            isBroken(error) && classify(error).kind === "connection" ? fallback : Effect.fail(error))
        return grow ? Effect.andThen(openCarrier(mode), guarded) : guarded
      })

    return {
      run,
      snapshot: () => {
        const all = [...lanes.read, ...lanes.write]
        return { carriers: all.length, inFlight: all.map((c) => c.inFlight) }
      }
    }
  })
