/**
 * LISTEN on a dedicated session: one subscription per stream, on a session
 * that never goes back to the pool; the stream fails with a connection error
 * when the session is lost (the caller's `listen` retries it).
 *
 * @internal
 */
import type { ServerSet } from "@tether/core"
import { Cause, Effect, Queue, Stream } from "effect"
import { SqlError } from "effect/sql/SqlError"
import * as SqlErrors from "effect/sql/SqlError"
import type { PgConnectionError } from "../PgError.ts"
import type { SqlSession } from "./sqlDriver.ts"
import { toSqlError } from "./sqlError.ts"
import type { RunOptions } from "./sqlStatement.ts"

/** @internal */
export const make = (
  /** The set LISTEN sessions come from; `undefined` behind PgBouncer without `listenEndpoints`. */
  listenSet: ServerSet.ServerSet<SqlSession, unknown> | undefined,
  notSent: (session: SqlSession, reason: string) => PgConnectionError,
  runOn: (
    session: SqlSession,
    text: string,
    params: ReadonlyArray<unknown>,
    run: RunOptions,
    operation: string
  ) => Effect.Effect<unknown, SqlError>
) => {
  const quoteIdent = (s: string) => `"${s.replace(/"/g, "\"\"")}"`

  const listenOnce = (channel: string): Stream.Stream<string, SqlError> => {
    if (listenSet === undefined) {
      return Stream.fail(
        new SqlError({
          reason: new SqlErrors.ConnectionError({
            cause: new Error("no listenEndpoints"),
            message: "LISTEN does not work through PgBouncer in transaction mode: set `listenEndpoints` " +
              "to the servers' own addresses",
            operation: "listen"
          })
        })
      )
    }
    const f = (session: SqlSession) =>
      Stream.callback<string, SqlError>((queue) =>
        Effect.gen(function*() {
          const listener = (ch: string, payload: string) => {
            if (ch === channel) Queue.offerUnsafe(queue, payload)
          }
          const lost = () =>
            Queue.failCauseUnsafe(
              queue,
              Cause.fail(toSqlError(notSent(session, "the LISTEN session was lost"), "listen"))
            )
          session.listeners.add(listener)
          session.onClose.add(lost)
          yield* Effect.addFinalizer(() =>
            Effect.sync(() => {
              session.listeners.delete(listener)
              session.onClose.delete(lost)
              // The session is subscribed: it never goes back to the pool.
              session.closed = true
              void session.sql.end({ timeout: 0 }).catch(() => undefined)
            })
          )
          yield* runOn(session, `LISTEN ${quoteIdent(channel)}`, [], { write: false, prepare: false }, "listen")
          if (session.closed) lost()
        })
      )
    return Stream.mapError(listenSet.as().useStream(f, { mode: "write", idempotent: true }), (e) => toSqlError(e, "listen"))
  }

  return listenOnce
}
