/**
 * Opening, re-binding and closing connections, and the secret each
 * principal has proven: a connection of a new secret that binds retires the
 * old secret's connections (idle ones close now, the others once returned).
 * A slot (a place under `max` and `maxPerIdentity`) is taken before a
 * connection opens and given back only once it is closed, so the server
 * never sees more than `max` connections of this pool.
 */
import { Clock, Effect, Exit, Scope } from "effect"
import type { Credentials } from "../../Identity.ts"
import { ConnectTimeout } from "../../PoolError.ts"
import type { Conn, Group, PoolState } from "./state.ts"

export interface Connector<C, E> {
  /** Opens a connection bound as `group` in a slot already taken; gives the slot back if it fails. */
  readonly open: (group: Group<C>, restore: <A, E2, R>(e: Effect.Effect<A, E2, R>) => Effect.Effect<A, E2, R>) => Effect.Effect<Conn<C>, E | ConnectTimeout>
  /** Re-binds an evicted connection as `group`; `false` (and the connection closed, its slot kept) if that failed. */
  readonly rebind: (conn: Conn<C>, group: Group<C>, restore: <A, E2, R>(e: Effect.Effect<A, E2, R>) => Effect.Effect<A, E2, R>) => Effect.Effect<boolean>
  /** Starts closing a connection (in the background); its slot is given back once it is closed. */
  readonly close: (conn: Conn<C>) => Effect.Effect<void>
  /** Gives back a slot taken for a connection that was never opened. */
  readonly releaseSlot: (group: Group<C>) => void
  /** Retires a connection: closed now if idle, else once its last borrower returns it. */
  readonly retire: (conn: Conn<C>) => Effect.Effect<void>
}

export const make = <C, E>(
  state: PoolState<C>,
  options: {
    readonly connect: (identity: Credentials | undefined) => Effect.Effect<C, E, Scope.Scope>
    readonly rebind: ((connection: C, identity: Credentials | undefined) => Effect.Effect<void, unknown>) | undefined
    readonly connectTimeout: number
    readonly dispatch: () => void
    readonly onRetire: (group: Group<C>) => Effect.Effect<void>
    /** Called when the last close in progress ends (drain waits for it). */
    readonly onClosed: () => void
  }
): Effect.Effect<Connector<C, E>> =>
  Effect.gen(function*() {
    const clock = yield* Clock.Clock
    const { connectTimeout, dispatch } = options
    /** The key each principal last bound with. */
    const principals = new Map<string, string>()

    const releaseSlot = (group: Group<C>) => {
      state.open--
      group.count--
      dispatch()
    }

    /** A connection of `group` has bound: its secret is now its principal's. */
    const prove = (group: Group<C>): Effect.Effect<void> => {
      const identity = group.identity
      if (identity === undefined || group.retired) return Effect.void
      const current = principals.get(identity.principal)
      if (current === group.key) return Effect.void
      principals.set(identity.principal, group.key)
      const old = current === undefined ? undefined : state.groups.get(current)
      if (old === undefined) return Effect.void
      return Effect.andThen(
        options.onRetire(old),
        Effect.logInfo(
          `identity pool "${state.name}": a new secret of "${identity.label}" has bound; retiring the old one's connections`
        )
      )
    }

    /** Callbacks waiting for each connection being closed. */
    const closing = new Map<Conn<C>, Array<() => void>>()

    /**
     * Starts closing a connection in a fiber of its own (a driver's close can
     * hang on a dead socket: no borrower waits on it unless it needs the
     * slot). The slot is given back once the driver has closed it, never before.
     */
    /**
     * Closes a scope in a fiber of its own (a driver's close can hang on a
     * dead socket: no borrower waits on it unless it needs the slot); `done`
     * runs once the driver has closed it.
     */
    const closeInBackground = (scope: Scope.Closeable, exit: Exit.Exit<unknown, unknown>, done: () => void) => {
      state.closing++
      return Effect.asVoid(Effect.forkDetach(
        Effect.ensuring(
          Scope.close(scope, exit),
          Effect.sync(() => {
            state.closing--
            done()
            if (state.closing === 0) options.onClosed()
          })
        ).pipe(Effect.uninterruptible),
        // Runs at once up to the driver's first asynchronous step.
        { startImmediately: true }
      ))
    }

    /** Starts closing a connection. Its slot is given back once the driver has closed it, never before. */
    const startClose = (conn: Conn<C>, keepSlot: boolean): Effect.Effect<void> =>
      Effect.suspend(() => {
        if (conn.closed) return Effect.void
        conn.closed = true
        state.idle.delete(conn)
        state.removeAvail(conn)
        state.conns.delete(conn)
        closing.set(conn, [])
        return closeInBackground(conn.scope, Exit.void, () => {
          state.counters.destroyed++
          if (!keepSlot) releaseSlot(conn.group)
          const waiting = closing.get(conn)!
          closing.delete(conn)
          for (const resume of waiting) resume()
        })
      })

    /** Waits (interruptibly) until a connection whose close has started is closed. */
    const awaitClosed = (conn: Conn<C>): Effect.Effect<void> =>
      Effect.callback<void>((resume) => {
        const waiting = closing.get(conn)
        if (waiting === undefined) return resume(Effect.void)
        const done = () => resume(Effect.void)
        waiting.push(done)
        return Effect.sync(() => {
          const index = waiting.indexOf(done)
          if (index >= 0) waiting.splice(index, 1)
        })
      })

    /** Gives a kept slot back once its old connection is closed. */
    const releaseSlotWhenClosed = (conn: Conn<C>, group: Group<C>) => {
      const waiting = closing.get(conn)
      if (waiting === undefined) releaseSlot(group)
      else waiting.push(() => releaseSlot(group))
    }

    const close = (conn: Conn<C>): Effect.Effect<void> => startClose(conn, false)

    /** Closes an evicted connection whose slot passes to `group`: waits until it is closed. */
    const closeForSlot = (conn: Conn<C>, group: Group<C>): Effect.Effect<void> =>
      Effect.andThen(
        startClose(conn, true),
        Effect.onInterrupt(awaitClosed(conn), () => Effect.sync(() => releaseSlotWhenClosed(conn, group)))
      )

    const retire = (conn: Conn<C>): Effect.Effect<void> =>
      Effect.suspend(() => {
        conn.retired = true
        state.removeAvail(conn)
        state.idle.delete(conn)
        return conn.holders === 0 ? close(conn) : Effect.void
      })

    const open = (
      group: Group<C>,
      restore: <A, E2, R>(e: Effect.Effect<A, E2, R>) => Effect.Effect<A, E2, R>
    ): Effect.Effect<Conn<C>, E | ConnectTimeout> =>
      Effect.gen(function*() {
        const scope = yield* Scope.make("sequential")
        const exit = yield* Effect.exit(restore(
          Scope.provide(options.connect(group.identity), scope).pipe(
            Effect.timeoutOrElse({
              duration: connectTimeout,
              orElse: () => Effect.fail(new ConnectTimeout({ pool: state.name, timeoutMillis: connectTimeout }))
            })
          )
        ))
        if (exit._tag === "Failure") {
          if (!Exit.hasInterrupts(exit)) state.counters.acquireFailures++
          yield* closeInBackground(scope, exit, () => releaseSlot(group))
          return yield* Effect.failCause(exit.cause)
        }
        const now = clock.currentTimeMillisUnsafe()
        const conn: Conn<C> = {
          id: state.nextId++,
          connection: exit.value,
          scope,
          createdAt: now,
          group,
          lastUsedAt: now,
          holders: 1,
          inAvail: false,
          retired: false,
          closed: false
        }
        state.conns.add(conn)
        state.counters.created++
        group.created++
        yield* prove(group)
        return conn
      })

    const rebind = (
      conn: Conn<C>,
      group: Group<C>,
      restore: <A, E2, R>(e: Effect.Effect<A, E2, R>) => Effect.Effect<A, E2, R>
    ): Effect.Effect<boolean> =>
      Effect.gen(function*() {
        const rebindFn = options.rebind
        if (rebindFn === undefined) {
          yield* restore(closeForSlot(conn, group))
          return false
        }
        const exit = yield* Effect.exit(restore(rebindFn(conn.connection, group.identity)))
        if (exit._tag === "Failure") {
          // Its bind state is unknown now: it is closed, never pooled half-bound.
          if (Exit.hasInterrupts(exit)) {
            yield* startClose(conn, true)
            releaseSlotWhenClosed(conn, group)
            return yield* Effect.interrupt
          }
          state.counters.rebindFailures++
          yield* restore(closeForSlot(conn, group))
          return false
        }
        conn.group = group
        state.counters.rebinds++
        group.created++
        yield* prove(group)
        return true
      })

    return { open, rebind, close, releaseSlot, retire }
  })
