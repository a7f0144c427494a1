import { Endpoint, Identity, ServerSet } from "@tether/core"
import type { Balancer, InvalidPoolOptions } from "@tether/core"
import { Cause, Clock, Effect, Metric, Stream } from "effect"
import type { Exit } from "effect"
import type { Context, Schedule, Scope } from "effect"
import type postgres from "postgres"
import type * as PgClient from "../PgClient.ts"
import * as PgDriver from "../PgDriver.ts"
import type { PgConnection } from "../PgDriver.ts"
import { fromUnknown, PgOutcomeUnknown } from "../PgError.ts"
import type { PgError } from "../PgError.ts"
import * as Common from "./common.ts"
import * as PgOptions from "./pgOptions.ts"
import * as Parameters from "./parameters.ts"
import * as QueryCache from "./queryCache.ts"

const { cacheRequests, defaultRetry, millis, slowQueries } = Common

/** `select … $1 … $2`: the statement text with placeholders, never the values. */
const texts = new WeakMap<TemplateStringsArray, string>()
const textOf = (strings: TemplateStringsArray): string => {
  let text = texts.get(strings)
  if (text === undefined) {
    text = strings.reduce((acc, part, i) => (i === 0 ? part : `${acc}$${i}${part}`), "")
    texts.set(strings, text)
  }
  return text
}

/**
 * A tagged statement whose rows the caller types as `A` (as postgres.js's own
 * `` sql<A[]>`…` `` does: the row type is the caller's word, not checked at run time).
 */
const statement = <A extends object = PgClient.Row>(
  sql: postgres.Sql,
  strings: TemplateStringsArray,
  values: ReadonlyArray<unknown>
) => sql<Array<A>>(strings, ...(values as ReadonlyArray<postgres.ParameterOrFragment<never>>))

/** `statement`, with its parameters checked before postgres.js sees them (see `parameters.ts`). */
const query = <A extends object = PgClient.Row>(
  sql: postgres.Sql,
  strings: TemplateStringsArray,
  values: ReadonlyArray<unknown>
) => {
  Parameters.check(values)
  return statement<A>(sql, strings, values)
}

/** `query` for a statement given as text with `$1…` parameters. */
const unsafeQuery = <A extends object = PgClient.Row>(
  sql: postgres.Sql,
  text: string,
  parameters: ReadonlyArray<unknown> | undefined
) => {
  Parameters.check(parameters)
  return sql.unsafe<Array<A>>(text, parameters as Array<postgres.ParameterOrJSON<never>> | undefined)
}

/**
 * A libpq-style host list, `postgres://h1:5432,h2:5433/db`, as one URL per
 * host (each becomes an endpoint); any other URL is returned as is.
 */
export const expandHostList = (url: string): ReadonlyArray<string> => {
  const match = /^(postgres(?:ql)?:\/\/)([^/?#]*,[^/?#]*)(.*)$/.exec(url)
  if (match === null) return [url]
  const [, scheme, hosts, rest] = match
  return hosts!.split(",").filter((h) => h !== "").map((host) => `${scheme}${host}${rest}`)
}

/**
 * postgres.js cursors answer `next()` and `return()` with plain objects at
 * times, not promises; `for await` accepts both, so read them through it.
 */
async function* batchesOf<A>(cursor: AsyncIterable<A>): AsyncGenerator<A> {
  for await (const batch of cursor) yield batch
}

/** Failures after which the statement was certainly never sent: no server ran it, so it was not "slow". */
const NOT_SENT = new Set([
  "NoEndpointAvailable",
  "BreakerOpen",
  "PoolTimeout",
  "ConnectTimeout",
  "PoolClosed",
  "PgUsageError",
  "PgAuthenticationError",
  "PgTlsError"
])

const wasSent = (exit: Exit.Exit<unknown, unknown>): boolean => {
  if (exit._tag === "Success") return true
  const error = Cause.findErrorOption(exit.cause)
  if (error._tag === "None") return true
  const failure = error.value as { _tag?: unknown; mayHaveReachedServer?: unknown }
  if (failure._tag === "PgConnectionError") return failure.mayHaveReachedServer === true
  return !(typeof failure._tag === "string" && NOT_SENT.has(failure._tag))
}

/** Failover default for PostgreSQL: enough patience to ride out a promotion (about 10 s). */

const isTagged = (u: unknown, tag: string) => typeof u === "object" && u !== null && "_tag" in u && u._tag === tag

/** Whether a failed transaction attempt may run again: it did not commit. */
const transactionRetryable = (error: unknown): boolean => {
  if (isTagged(error, "PgQueryError")) {
    const kind = (error as { kind: string }).kind
    return kind === "serialization" || kind === "deadlock"
  }
  return isTagged(error, "PgConnectionError") || isTagged(error, "PgTimeout") ||
    isTagged(error, "NoEndpointAvailable") || isTagged(error, "BreakerOpen")
}

/** @internal */
export const make = (
  options: PgClient.Options
): Effect.Effect<PgClient.PgClient, Endpoint.InvalidEndpoint | InvalidPoolOptions, Scope.Scope> =>
  Effect.gen(function*() {
    yield* PgOptions.checkOptions(options)
    const name = options.name ?? "pg"
    const timeoutMillis = millis(options.queryTimeout, 30_000)
    const slowMillis = millis(options.slowQueryThreshold, 1_000)
    const readMode: Balancer.AccessMode = options.readFrom === "any" ? "read" : options.readFrom ?? "replica-preferred"
    const multiplex = options.multiplex ?? 1
    const driverOptions: PgDriver.Options = {
      ...Common.sessionOptions(options),
      // Said once below, not once per set.
      warnUnverified: false
    }
    const endpointInputs = options.endpoints.flatMap((e): ReadonlyArray<Endpoint.EndpointInput | string> =>
      typeof e === "string" ? expandHostList(e) : [e]
    )
    // TLS settings are checked before anything connects: a bad sslmode or CA file is a typed error now, and an
    // endpoint whose certificate will not be verified is logged once.
    const decoded = yield* Effect.mapError(Endpoint.decodeAll(endpointInputs), PgOptions.forPostgres)
    yield* PgOptions.checkUrls(decoded)
    for (const endpoint of decoded) {
      const tls = PgDriver.tlsOf(driverOptions, endpoint)
      if ("problem" in tls) {
        const colon = tls.problem.indexOf(": ")
        return yield* Effect.fail(
          new Endpoint.InvalidEndpoint({
            endpoint: endpoint.url,
            problems: [{ field: tls.problem.slice(0, colon), message: tls.problem.slice(colon + 2) }]
          })
        )
      }
      if (tls.unverified !== undefined) {
        yield* Effect.logWarning(PgDriver.unverifiedWarning(endpoint, tls.unverified)).pipe(
          Effect.annotateLogs({ client: name, endpoint: endpoint.id })
        )
      }
    }
    const setOptions = (
      driver: PgDriver.Options,
      suffix: string,
      pool: PgClient.Options["pool"]
    ): ServerSet.Options<PgConnection, PgError> => ({
      name: `${name}${suffix}`,
      endpoints: endpointInputs,
      driver: PgDriver.make(driver),
      pool,
      ...Common.resilience(options)
    })
    const exclusive = yield* ServerSet.make(setOptions(driverOptions, "", options.pool))
    const shared = multiplex > 1
      ? yield* ServerSet.make(
        setOptions({ ...driverOptions, readOnlySessions: options.enforceReadOnly ?? true }, " (multiplexed)", {
          ...options.pool,
          concurrency: multiplex
        })
      )
      : undefined
    const cache = yield* QueryCache.make(options.cache?.capacity ?? 1_000, options.cache?.ttl ?? "10 seconds")
    const hits = Metric.withAttributes(cacheRequests, { client: name, outcome: "hit" })
    const misses = Metric.withAttributes(cacheRequests, { client: name, outcome: "miss" })
    const slowMetric = Metric.withAttributes(slowQueries, { client: name })

    /** Times a statement: a span with its text (no values), a warning and a count when slow. */
    const clock = yield* Clock.Clock
    const instrument = <A, E, R>(text: string, mode: string, effect: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> =>
      Effect.suspend(() => {
        const start = clock.currentTimeMillisUnsafe()
        // One exit callback: it only produces an effect (a warning and a count) when the statement was slow.
        return Effect.onExitPrimitive(effect, (exit) => {
          const elapsed = clock.currentTimeMillisUnsafe() - start
          if (elapsed < slowMillis || !wasSent(exit)) return undefined
          return Effect.andThen(
            Metric.update(slowMetric, 1),
            Effect.logWarning(`slow statement (${elapsed} ms, threshold ${slowMillis} ms): ${text}`).pipe(
              Effect.annotateLogs({ client: name, mode, durationMillis: elapsed })
            )
          )
        })
      }).pipe(
        Effect.withSpan("tether.pg.query", {
          attributes: { "db.system": "postgresql", "db.statement": text, "tether.mode": mode, "tether.client": name }
        }, { captureStackTrace: false })
      )

    /**
     * Puts the session in the read-only (or read-write) default, when it is
     * not known to be in it already. The change and Tether's record of it are
     * one step: the record says "unknown" from the moment the `SET` is sent
     * until the server confirms it, and the step cannot be interrupted (an
     * interrupted caller waits for the answer, bounded by the query timeout).
     * A `SET` that fails leaves the record unknown: a broken session is
     * destroyed, any other is set again before its next use, and validation
     * destroys a session in an unknown state.
     */
    const enforceReadOnly = options.enforceReadOnly ?? true
    const sessionMode = (connection: PgConnection, readOnly: boolean): Effect.Effect<void, PgError> =>
      !enforceReadOnly || connection.session.readOnly === readOnly
        ? Effect.void
        : Effect.uninterruptible(Effect.suspend(() => {
          connection.session.readOnly = undefined
          return PgDriver.run(
            connection,
            "set",
            (sql) => sql.unsafe(`set default_transaction_read_only = ${readOnly ? "on" : "off"}`),
            { timeoutMillis }
          ).pipe(Effect.tap(() => Effect.sync(() => (connection.session.readOnly = readOnly))))
        }))

    const rollback = (connection: PgConnection): Effect.Effect<void> =>
      PgDriver.run(connection, "rollback", (sql) => sql.unsafe("rollback"), { timeoutMillis: Math.min(timeoutMillis, 5_000) })
        .pipe(
          Effect.tap(() => Effect.sync(() => (connection.session.inTransaction = false))),
          // The session is in an unknown state: end it, so that it is destroyed, never reused.
          Effect.catch(() => Effect.promise(() => connection.sql.end({ timeout: 0 }).catch(() => undefined))),
          Effect.asVoid
        )

    const transactionOf = (connection: PgConnection): PgClient.Transaction => ({
      sql: <A extends object = PgClient.Row>(strings: TemplateStringsArray, ...values: ReadonlyArray<unknown>) =>
        instrument(
          textOf(strings),
          "transaction",
          PgDriver.run(connection, textOf(strings), (sql) => query<A>(sql, strings, values), {
            timeoutMillis,
            cancelOnInterrupt: true
          })
        ),
      unsafe: <A extends object = PgClient.Row>(text: string, parameters?: ReadonlyArray<unknown>) =>
        instrument(
          text,
          "transaction",
          PgDriver.run(connection, text, (sql) => unsafeQuery<A>(sql, text, parameters), {
            timeoutMillis,
            cancelOnInterrupt: true
          })
        )
    })

    const executor = <R>(key: Context.Key<R, Identity.Credentials> | undefined): PgClient.Executor<R> => {
      // The sets as this executor's identity (the default one without a key).
      const onShared = shared?.as(key)
      const onExclusive = exclusive.as(key)

      const readVia = <A>(text: string, run: (sql: postgres.Sql) => Promise<A>) =>
        onShared !== undefined
          ? onShared.use((c) => PgDriver.run(c, text, run, { timeoutMillis }), { mode: readMode, idempotent: true, operation: "query" })
          : onExclusive.use(
            (c) => Effect.andThen(sessionMode(c, true), PgDriver.run(c, text, run, { timeoutMillis, cancelOnInterrupt: true })),
            { mode: readMode, idempotent: true, operation: "query" }
          )

      const writeVia = <A>(text: string, run: (sql: postgres.Sql) => Promise<A>) =>
        onExclusive.use(
          (c) =>
            Effect.andThen(
              sessionMode(c, false),
              PgDriver.run(c, text, run, { write: true, timeoutMillis, cancelOnInterrupt: true })
            ),
          { mode: "write", idempotent: false, operation: "query" }
        )

      const read: PgClient.Query<R> = <A extends object = PgClient.Row>(
        strings: TemplateStringsArray,
        ...values: ReadonlyArray<unknown>
      ) => {
        const text = textOf(strings)
        return instrument(text, "read", readVia(text, (sql) => query<A>(sql, strings, values)))
      }

      const write: PgClient.Query<R> = <A extends object = PgClient.Row>(
        strings: TemplateStringsArray,
        ...values: ReadonlyArray<unknown>
      ) => {
        const text = textOf(strings)
        return instrument(text, "write", writeVia(text, (sql) => query<A>(sql, strings, values)))
      }

      const identityDigest: Effect.Effect<string, never, R> = key === undefined
        ? Effect.succeed("default") as Effect.Effect<string, never, R>
        : Effect.map(Effect.service(key), Identity.digest)

      const cached: PgClient.Query<R> = <A extends object = PgClient.Row>(
        strings: TemplateStringsArray,
        ...values: ReadonlyArray<unknown>
      ) =>
        Effect.gen(function*() {
          const text = textOf(strings)
          const cacheKey = QueryCache.keyOf(text, values, yield* identityDigest)
          const context = yield* Effect.context<R>()
          const result = yield* cache.get(cacheKey, text, Effect.provideContext(read<A>(strings, ...values), context))
          yield* Metric.update(result.hit ? hits : misses, 1)
          return result.rows
        })

      const unsafe: PgClient.Executor<R>["unsafe"] = <A extends object = PgClient.Row>(
        text: string,
        parameters?: ReadonlyArray<unknown>,
        unsafeOptions?: { readonly mode?: "read" | "write" | undefined }
      ) => {
        const run = (sql: postgres.Sql) => unsafeQuery<A>(sql, text, parameters)
        const mode = unsafeOptions?.mode ?? "read"
        return instrument(text, mode, mode === "write" ? writeVia(text, run) : readVia(text, run))
      }

      const stream: PgClient.Executor<R>["stream"] = <A extends object = PgClient.Row>(
        strings: TemplateStringsArray,
        ...values: ReadonlyArray<unknown>
      ) => {
        const text = textOf(strings)
        const f = (connection: PgConnection) =>
          Stream.unwrap(Effect.as(
            sessionMode(connection, true),
            Stream.fromAsyncIterable(
              // A cursor has its connection to itself: postgres.js reports bad parameters as the cursor's own error.
              batchesOf(statement<A>(connection.sql, strings, values).cursor(100)),
              (cause) => fromUnknown(cause, { endpoint: connection.endpoint, user: connection.user })
            ).pipe(Stream.flattenIterable)
          ))
        const options = { mode: readMode, idempotent: true, operation: "stream" }
        return onExclusive.useStream(f, options).pipe(
          Stream.withSpan("tether.pg.stream", { attributes: { "db.statement": text } })
        )
      }

      const transaction: PgClient.Executor<R>["transaction"] = (body, transactionOptions) => {
        const isolation = transactionOptions?.isolation ?? "read committed"
        const readOnly = transactionOptions?.readOnly === true
        const begin = `begin isolation level ${isolation} ${readOnly ? "read only" : "read write"}`
        const attempt = onExclusive.use(
          (connection) =>
            Effect.uninterruptibleMask((restore) =>
              Effect.gen(function*() {
                yield* PgDriver.run(connection, "begin", (sql) => sql.unsafe(begin), { timeoutMillis })
                connection.session.inTransaction = true
                const exit = yield* Effect.exit(restore(body(transactionOf(connection))))
                if (exit._tag === "Failure") {
                  yield* rollback(connection)
                  return yield* exit
                }
                // From here the outcome may be unknown: a lost answer to COMMIT is never replayed.
                const committed = yield* Effect.exit(
                  PgDriver.run(connection, "commit", (sql) => sql.unsafe("commit"), { write: true, timeoutMillis }).pipe(
                    Effect.mapError((error) =>
                      error._tag === "PgTimeout"
                        ? new PgOutcomeUnknown({ endpoint: connection.endpoint, reason: "no answer to COMMIT" })
                        : error
                    )
                  )
                )
                if (committed._tag === "Failure") {
                  // A serialization failure at COMMIT rolled the transaction back; the session is idle again.
                  if (committed.cause.reasons.some((r) => r._tag === "Fail" && r.error._tag === "PgQueryError")) {
                    connection.session.inTransaction = false
                  }
                  return yield* Effect.failCause(committed.cause)
                }
                connection.session.inTransaction = false
                return exit.value
              })
            ),
          { mode: readOnly ? readMode : "write", idempotent: false, operation: "transaction" }
        )
        return Effect.retry(attempt, {
          schedule: (transactionOptions?.retry ?? defaultRetry) as Schedule.Schedule<unknown, unknown>,
          while: transactionRetryable
        }).pipe(Effect.withSpan("tether.pg.transaction", { attributes: { "tether.isolation": isolation } }))
      }

      const batch: PgClient.Executor<R>["batch"] = (statements, batchOptions) => {
        const mode = batchOptions?.mode ?? "write"
        const text = statements.map((s) => textOf(s.strings)).join("; ")
        // Sent together: postgres.js pipelines them on the one connection.
        const run = (sql: postgres.Sql) => Promise.all(statements.map((s) => query(sql, s.strings, s.values)))
        return instrument(text, `batch ${mode}`, mode === "write" ? writeVia(text, run) : readVia(text, run))
      }

      return { read, write, cached, unsafe, stream, transaction, batch }
    }

    const base = executor<never>(undefined)
    const client: PgClient.PgClient = {
      ...base,
      as: (key) => executor(key),
      invalidateCache: cache.invalidate,
      cacheStats: cache.stats,
      status: exclusive.status,
      balancerChanges: exclusive.balancerChanges,
      reconfigure: shared === undefined
        ? exclusive.reconfigure
        : ServerSet.combineReconfigure(exclusive.reconfigure, shared.reconfigure),
      unfence: (id) =>
        Effect.map(
          Effect.all([exclusive.unfence(id), shared === undefined ? Effect.succeed(false) : shared.unfence(id)]),
          ([a, b]) => a || b
        )
    }
    return client
  })

