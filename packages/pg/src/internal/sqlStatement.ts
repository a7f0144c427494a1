/**
 * One statement on one session: sent through postgres.js and settled by
 * whichever comes first — the answer, the socket's close, the deadline —
 * with the error a caller can act on; where it ran and how it failed on the
 * statement's span; slow statements logged and counted off the hot path.
 *
 * @internal
 */
import { Context, Effect, Metric, Tracer } from "effect"
import type { Fiber } from "effect"
import type { SqlError } from "effect/sql/SqlError"
import * as Statement from "effect/sql/Statement"
import type postgres from "postgres"
import { fromUnknown, PgConnectionError, PgOutcomeUnknown, PgTimeout } from "../PgError.ts"
import type * as Deadlines from "./deadlines.ts"
import { TIMED_OUT } from "./deadlines.ts"
import * as Parameters from "./parameters.ts"
import type { SqlSession } from "./sqlDriver.ts"
import { statusCodeOf, toSqlError } from "./sqlError.ts"

const operations = new Map<string, string>()

/** The first keyword of a statement (`db.operation.name`), remembered for the last 1,000 texts. */
export const operationOf = (text: string): string => {
  let operation = operations.get(text)
  if (operation === undefined) {
    const match = /^\s*(?:\/\*[\s\S]*?\*\/\s*)*([A-Za-z]+)/.exec(text)
    operation = match === null ? "unknown" : match[1]!.toUpperCase()
    if (operations.size >= 1_000) operations.clear()
    operations.set(text, operation)
  }
  return operation
}


export type Transform = (<A extends object>(rows: ReadonlyArray<A>) => ReadonlyArray<A>) | undefined

export interface RunOptions {
  /** The statement may change data: losing its answer is outcome-unknown. */
  readonly write: boolean
  readonly prepare: boolean
  readonly values?: boolean | undefined
  readonly raw?: boolean | undefined
}

/** A kind of statement, as run on the primary (`write`) and on a replica (`read`): built once, not per statement. */
export interface RunKind {
  readonly read: RunOptions
  readonly write: RunOptions
}

const kind = (run: Omit<RunOptions, "write">): RunKind => ({ read: { ...run, write: false }, write: { ...run, write: true } })

export const RUN = {
  execute: kind({ prepare: true }),
  raw: kind({ prepare: true, raw: true }),
  values: kind({ prepare: true, values: true }),
  valuesUnprepared: kind({ prepare: false, values: true }),
  unprepared: kind({ prepare: false })
} as const

/** What running statements needs of its client. */
export interface StatementOptions {
  /** The client's name, on slow-statement logs. */
  readonly name: string
  readonly deadlines: Deadlines.Deadlines
  readonly timeoutMillis: number
  readonly slowMillis: number
  /** Whether prepared statements are allowed (not behind PgBouncer). */
  readonly prepare: boolean
  readonly slowMetric: Metric.Metric<number, unknown>
}

/** @internal */
export const make = (options: StatementOptions) =>
  Effect.gen(function*() {
    const { deadlines, name, prepare, slowMetric, slowMillis, timeoutMillis } = options

    const notSent = (session: SqlSession, reason: string) =>
      new PgConnectionError({ endpoint: session.endpoint, code: "CONNECTION_CLOSED", reason, mayHaveReachedServer: false })

    // postgres.js only reads a statement's options: two shared objects, not one per statement.
    const PREPARED = { prepare } as const
    const UNPREPARED = { prepare: false } as const
    const send = (session: SqlSession, text: string, params: ReadonlyArray<unknown>, run: RunOptions) => {
      Parameters.check(params)
      const query = session.sql.unsafe(
        text,
        params as Array<postgres.ParameterOrJSON<never>>,
        run.prepare ? PREPARED : UNPREPARED
      )
      return run.values ? query.values() : query
    }

    /**
     * A statement's failure as its caller gets it. A timeout retires the session (it may still be busy
     * with the statement) and, for a write, says the outcome is unknown; anything but the server's own
     * answer retires it too (postgres.js may reconnect the handle behind our back).
     */
    const failureOf = (session: SqlSession, cause: unknown, write: boolean, operation: string): SqlError => {
      if (cause === TIMED_OUT) {
        session.closed = true
        void session.sql.end({ timeout: 0 }).catch(() => undefined)
        return toSqlError(
          write
            ? new PgOutcomeUnknown({ endpoint: session.endpoint, reason: `no answer within ${timeoutMillis} ms` })
            : new PgTimeout({ endpoint: session.endpoint, operation, timeoutMillis }),
          operation
        )
      }
      const error = fromUnknown(cause, { endpoint: session.endpoint, user: session.user, write })
      if (error._tag !== "PgQueryError" && error._tag !== "PgAuthenticationError") session.closed = true
      return toSqlError(error, operation, cause)
    }

    /**
     * Runs `text` on `session`: a Tether error (as a SqlError) on failure, the rows (or raw result)
     * on success. One callback settles it, from whichever comes first: postgres.js's answer, the
     * socket's close (see `SocketClosed.race`) or the deadline (see `Deadlines.bounded`), with no
     * promise of its own in between (each costs a reaction per statement).
     */
    const runOn = (
      session: SqlSession,
      text: string,
      params: ReadonlyArray<unknown>,
      run: RunOptions,
      operation: string
    ): Effect.Effect<any, SqlError> => {
      if (session.closed) {
        return Effect.fail(toSqlError(notSent(session, "the session was closed before the statement was sent"), operation))
      }
      const failure = (cause: unknown) => failureOf(session, cause, run.write, operation)
      return Effect.callback<any, SqlError>((resume) => {
        const socket = session.socket
        let done = false
        const onClose = (cause: unknown) => {
          if (done) return
          done = true
          deadlines.disarm(deadline)
          resume(Effect.fail(failure(cause)))
        }
        // Closed before it started: never sent (postgres.js would send it on a silently reopened session).
        if (!socket.watch(onClose)) return resume(Effect.fail(failure(socket.notSent())))
        const deadline = deadlines.arm(timeoutMillis, () => {
          if (done) return
          done = true
          socket.unwatch(onClose)
          resume(Effect.fail(failure(TIMED_OUT)))
        })
        const settle = (ok: boolean, value: unknown) => {
          if (done) return
          done = true
          socket.unwatch(onClose)
          const elapsed = deadlines.disarm(deadline)
          if (elapsed >= slowMillis) noteSlow(text, elapsed, session)
          resume(ok ? Effect.succeed(value) : Effect.fail(failure(value)))
        }
        try {
          // postgres.js queries are lazy: `then` sends it (and bad parameters throw here, before it).
          ;(send(session, text, params, run) as PromiseLike<unknown>).then(
            (value) => settle(true, value),
            (cause: unknown) => settle(false, cause)
          )
        } catch (cause) {
          settle(false, cause)
        }
      })
    }

    /** effect/sql's statement span (propagated by the layer), read before routing adds spans of its own. */
    const statementSpan = (fiber: Fiber.Fiber<unknown, unknown>): Tracer.Span | undefined => {
      if (!fiber.getRef(Statement.SpanPropagationEnabled)) return undefined
      const span = Context.getOrUndefined(fiber.context, Tracer.ParentSpan)
      return span !== undefined && span._tag === "Span" ? span : undefined
    }

    /** Where the statement ran. */
    const annotate = (span: Tracer.Span, session: SqlSession, text: string) => {
      span.attribute("server.address", session.host)
      span.attribute("server.port", session.port)
      span.attribute("db.operation.name", operationOf(text))
    }

    /** How it failed: the SQLSTATE. */
    const traced = <A>(span: Tracer.Span | undefined, effect: Effect.Effect<A, SqlError>): Effect.Effect<A, SqlError> =>
      span === undefined ? effect : Effect.tapError(effect, (error) =>
        Effect.sync(() => {
          const code = statusCodeOf(error)
          if (code !== undefined) span.attribute("db.response.status_code", code)
        }))

    /**
     * Slow statements (text only, never values): timed around the promise (no Effect per
     * statement), logged and counted by a background fiber.
     */
    const slow: Array<{ readonly text: string; readonly elapsed: number; readonly endpoint: string }> = []
    const noteSlow = (text: string, elapsed: number, session: SqlSession) => {
      if (slow.length < 1_000) slow.push({ text, elapsed, endpoint: session.endpoint })
    }
    yield* Effect.gen(function*() {
      while (true) {
        yield* Effect.sleep("250 millis")
        for (const entry of slow.splice(0, slow.length)) {
          yield* Metric.update(slowMetric, 1)
          yield* Effect.logWarning(
            `slow statement (${entry.elapsed} ms, threshold ${slowMillis} ms): ${entry.text}`
          ).pipe(Effect.annotateLogs({ client: name, durationMillis: entry.elapsed, endpoint: entry.endpoint }))
        }
      }
    }).pipe(Effect.forkScoped)

    return { notSent, send, failureOf, runOn, statementSpan, annotate, traced }
  })
