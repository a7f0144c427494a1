/**
 * `PgSql.make`: effect/sql's `SqlClient` over postgres.js sessions pooled by
 * Tether. It builds the three server sets (pipelined statements, exclusive
 * sessions for transactions / streams / `reserve`, read-only sessions for
 * replica reads), routes each statement by the fiber's `readReplica` and
 * identity, tracks transactions on held sessions, and adds the query cache
 * and LISTEN / NOTIFY. One statement's run is `sqlStatement.ts`; LISTEN is
 * `sqlListen.ts`. It runs a little past 400 lines because these routes share
 * one closure over the sets and options, which splitting would only pass around.
 *
 * @internal
 */
import { Identity, ServerSet } from "@tether/core"
import type { Balancer, Endpoint, InvalidPoolOptions } from "@tether/core"
import { Cause, Context, Deferred, Effect, Metric, Schedule, Stream } from "effect"
import type { Scope } from "effect"
import type * as Reactivity from "effect/reactivity/Reactivity"
import * as SqlClient from "effect/sql/SqlClient"
import type { Connection } from "effect/sql/SqlConnection"
import { SqlError } from "effect/sql/SqlError"
import * as SqlErrors from "effect/sql/SqlError"
import * as Statement from "effect/sql/Statement"
import type postgres from "postgres"
import type * as PgSql from "../PgSql.ts"
import * as Deadlines from "./deadlines.ts"
import * as Common from "./common.ts"
import * as PgOptions from "./pgOptions.ts"
import * as QueryCache from "./queryCache.ts"
import { expandHostList } from "./pgClient.ts"
import * as Compiler from "./sqlCompiler.ts"
import * as SocketClosed from "./socketClosed.ts"
import * as SqlListen from "./sqlListen.ts"
import * as SqlStatement from "./sqlStatement.ts"
import type { RunKind, RunOptions, Transform } from "./sqlStatement.ts"
import { RUN } from "./sqlStatement.ts"
import * as SqlDriver from "./sqlDriver.ts"
import type { SqlSession } from "./sqlDriver.ts"
import { toSqlError } from "./sqlError.ts"

/** Set by `PgSql.readReplica`: statements go to replicas, read-only and idempotent. */
export const ReadReplica = Context.Reference<boolean>("@tether/pg/PgSql/ReadReplica", { defaultValue: () => false })

/** Set by `PgSql.as`: the identity whose pooled connections statements use. */
export const CurrentIdentity = Context.Reference<Context.Key<unknown, Identity.Credentials> | undefined>(
  "@tether/pg/PgSql/CurrentIdentity",
  { defaultValue: () => undefined }
)

/** Failover default for PostgreSQL: enough patience to ride out a promotion (about 10 s). */
export const defaultRetry = Common.defaultRetry

const { cacheRequests, millis, slowQueries } = Common

const BEGIN = /^\s*(begin|start\s+transaction)\b/i
const END = /^\s*(commit|rollback|end|abort)\s*;?\s*$/i

const endpointOf = (url: string) => {
  try {
    const parsed = new URL(url)
    return {
      host: parsed.hostname,
      port: parsed.port === "" ? 5432 : Number(parsed.port),
      database: parsed.pathname.replace(/^\//, "")
    }
  } catch {
    return { host: url, port: 5432, database: "" }
  }
}

/** @internal */
export const make = (
  options: PgSql.Options
): Effect.Effect<PgSql.PgSql, Endpoint.InvalidEndpoint | InvalidPoolOptions, Scope.Scope | Reactivity.Reactivity> =>
  Effect.gen(function*() {
    // Every option is checked before anything reads it: a bad one is one typed error, never a throw.
    yield* PgOptions.checkSqlOptions(options)
    const name = options.name ?? "pg"
    const timeoutMillis = millis(options.queryTimeout, 30_000)
    const slowMillis = millis(options.slowQueryThreshold, 1_000)
    // Statement deadlines on the clock the client is built with (TestClock in tests).
    const deadlines = yield* Deadlines.current
    const { bounded } = deadlines
    const readMode: Balancer.AccessMode = options.readFrom === "any" ? "read" : options.readFrom ?? "replica-preferred"
    const pgbouncer = options.pgbouncer === "transaction"
    const pipeline = options.pipeline ?? 16
    const prepare = !pgbouncer
    const endpoints = options.endpoints.flatMap((e): ReadonlyArray<Endpoint.EndpointInput | string> =>
      typeof e === "string" ? expandHostList(e) : [e]
    )
    const first = endpointOf(typeof endpoints[0] === "string" ? endpoints[0] : endpoints[0]?.url ?? "")
    const driverOptions: SqlDriver.Options = {
      ...Common.sessionOptions(options),
      statementTimeout: pgbouncer ? undefined : options.statementTimeout,
      prepare,
      pgbouncer,
      maxPipeline: Math.max(pipeline, 1)
    }
    const setOptions = (
      suffix: string,
      driver: SqlDriver.Options,
      pool: PgSql.Options["pool"],
      list: ReadonlyArray<Endpoint.EndpointInput | string> = endpoints
    ): ServerSet.Options<SqlSession, unknown> => ({
      name: `${name}${suffix}`,
      endpoints: list,
      driver: SqlDriver.make(driver),
      pool,
      ...Common.resilience(options)
    })
    // Plain statements, pipelined. Directly on PostgreSQL, each pooled session is one postgres.js
    // connection shared by up to `pipeline` statements, the most recently used first: a connection is
    // filled before the next one is opened, so statements arriving together leave in one socket write
    // (and postgres.js's queues stay one connection long). Behind PgBouncer, statements are unnamed, and
    // postgres.js sends one with parameters in two round trips during which its connection takes no
    // other: there the default role's session is a group of `pool.max` postgres.js connections, which
    // postgres.js spreads statements over (idle ones first), as raw postgres.js does.
    const connections = Math.max(1, options.pool?.max ?? 10)
    const grouped = pgbouncer
    const groupDriver: SqlDriver.Options = grouped ? { ...driverOptions, connections } : driverOptions
    const sharedPool = grouped
      ? {
        ...options.pool,
        min: (options.pool?.min ?? 0) > 0 ? 1 : 0,
        max: connections,
        maxPerIdentity: 1,
        concurrency: Math.max(pipeline, 1) * connections
      }
      : { ...options.pool, max: connections, concurrency: Math.max(pipeline, 1) }
    const exclusivePool = { min: 0, max: options.pool?.max ?? 10, ...options.exclusivePool }
    /** Plain statements, pipelined (`pipeline` per connection). */
    const shared = yield* ServerSet.make(setOptions("", groupDriver, sharedPool))
    // Warm-up of a group: postgres.js opens its connections on demand; `pool.min` statements at once open that many.
    const warm = grouped ? Math.min(options.pool?.min ?? 0, connections) : 0
    if (warm > 0) {
      yield* Effect.forEach(
        Array.from({ length: warm }, (_, i) => i),
        () =>
          shared.as().use(
            (session) =>
              Effect.promise(() =>
                session.socket.race(session.sql.unsafe("select pg_sleep(0.01)")).then(() => undefined, () => undefined)
              ),
            { mode: "read" }
          ),
        { concurrency: "unbounded", discard: true }
      ).pipe(Effect.ignore, Effect.forkScoped)
    }
    /** Transactions, streams, `reserve`, LISTEN: one borrower per connection. */
    const exclusive = yield* ServerSet.make(setOptions(" (exclusive)", driverOptions, exclusivePool))
    /** `readReplica` statements (direct mode): sessions opened read-only, pipelined. */
    const reads = pgbouncer
      ? undefined
      : yield* ServerSet.make(
        setOptions(" (read-only)", { ...groupDriver, readOnlySessions: true }, { ...sharedPool, min: 0, ...options.readPool })
      )
    /** LISTEN behind PgBouncer goes straight to the servers. */
    const listenSet = pgbouncer
      ? options.listenEndpoints === undefined || options.listenEndpoints.length === 0
        ? undefined
        : yield* ServerSet.make(
          setOptions(" (listen)", { ...driverOptions, pgbouncer: false, prepare: false }, { min: 0, max: 4 }, options.listenEndpoints)
        )
      : exclusive

    const compiler = Compiler.makeCompiler(options.transformQueryNames, options.transformJson)
    const transformRows: Transform = options.transformResultNames
      ? Statement.defaultTransforms(options.transformResultNames, options.transformJson).array
      : undefined

    const { annotate, failureOf, notSent, runOn, send, statementSpan, traced } = yield* SqlStatement.make({
      name,
      deadlines,
      timeoutMillis,
      slowMillis,
      prepare,
      slowMetric: Metric.withAttributes(slowQueries, { client: name })
    })

    // --- routing ------------------------------------------------------------

    // The identity is the fiber's `CurrentIdentity` (`PgSql.as` provides its credentials along with it),
    // so a view's requirement is met at run time, not in the types: hence the casts below.
    const useOn = <A>(
      view: ServerSet.View<SqlSession, unknown, unknown>,
      f: (session: SqlSession) => Effect.Effect<A, SqlError>,
      useOptions: ServerSet.UseOptions,
      operation: string
    ): Effect.Effect<A, SqlError> =>
      view.use(f, useOptions).pipe(Effect.mapError((error) => toSqlError(error, operation))) as Effect.Effect<A, SqlError>

    /** Read-only through PgBouncer: `BEGIN READ ONLY`, the statement, `COMMIT`, pipelined on a connection of its own. */
    const readOnlyTransaction = (
      session: SqlSession,
      text: string,
      params: ReadonlyArray<unknown>,
      run: RunOptions,
      operation: string
    ) =>
      Effect.suspend(() => {
        if (session.closed) return Effect.fail(toSqlError(notSent(session, "closed"), operation))
        const begin = session.sql.unsafe("begin read only")
        const body = send(session, text, params, run)
        const commit = session.sql.unsafe("commit")
        session.inTransaction = true
        return Effect.tryPromise({
          try: () =>
            bounded(session.socket.race(SocketClosed.lazily(() => Promise.all([begin, body, commit]))), timeoutMillis),
          catch: (cause) => failureOf(session, cause, false, operation)
        }).pipe(
          // A failed statement aborts the transaction; the pipelined COMMIT then ends it (as ROLLBACK).
          Effect.ensuring(Effect.promise(() => session.socket.race(commit).then(() => undefined, () => undefined))),
          Effect.tap(() => Effect.sync(() => (session.inTransaction = false))),
          Effect.map(([, rows]) => rows)
        )
      })

    /** A statement outside any transaction: routed by the fiber's `readReplica` and identity. */
    const routed = (
      text: string,
      params: ReadonlyArray<unknown>,
      run: RunKind,
      transform: Transform,
      operation: string
    ): Effect.Effect<any, SqlError> =>
      Effect.withFiber((fiber) => {
        const read = fiber.getRef(ReadReplica)
        const key = fiber.getRef(CurrentIdentity)
        const runWith = read ? run.read : run.write
        const span = statementSpan(fiber)
        const f = (session: SqlSession) => {
          if (span !== undefined) annotate(span, session, text)
          const ran = read && pgbouncer
            ? readOnlyTransaction(session, text, params, runWith, operation)
            : runOn(session, text, params, runWith, operation)
          return transform === undefined ? ran : Effect.map(ran, transform)
        }
        const effect = read
          ? useOn((pgbouncer ? exclusive : reads!).as(key), f, { mode: readMode, idempotent: true, operation }, operation)
          : useOn(shared.as(key), f, { mode: "write", idempotent: false, operation }, operation)
        return traced(span, effect)
      })

    /** A statement on a held session (a transaction, `reserve`), tracking the transaction state. */
    const pinned = (
      session: SqlSession,
      text: string,
      params: ReadonlyArray<unknown>,
      run: Omit<RunOptions, "write">,
      transform: Transform,
      operation: string
    ): Effect.Effect<any, SqlError> => {
      const begins = BEGIN.test(text)
      const ends = !begins && END.test(text)
      // Inside a transaction only COMMIT can make changes durable; outside one, any statement may.
      const write = ends ? /^\s*(commit|end)/i.test(text) : !session.inTransaction
      let ran = runOn(session, text, params, { ...run, write }, operation)
      if (begins) ran = Effect.tap(ran, () => Effect.sync(() => (session.inTransaction = true)))
      if (ends) ran = Effect.ensuring(ran, Effect.sync(() => (session.inTransaction = false)))
      const withRows = transform === undefined ? ran : Effect.map(ran, transform)
      return Effect.withFiber((fiber) => {
        const span = statementSpan(fiber)
        if (span !== undefined) annotate(span, session, text)
        return traced(span, withRows)
      })
    }

    /** A cursor over a statement's rows, on `session`. */
    const cursor = (session: SqlSession, text: string, params: ReadonlyArray<unknown>, transform: Transform) =>
      Stream.fromAsyncIterable(
        batchesOf(
          session.sql.unsafe(text, params as Array<postgres.ParameterOrJSON<never>>, { prepare })
            .cursor(100) as AsyncIterable<ReadonlyArray<any>>,
          session.socket
        ),
        (cause) => failureOf(session, cause, false, "executeStream")
      ).pipe(
        Stream.map((rows) => (transform === undefined ? rows : transform(rows))),
        Stream.flattenIterable
      )

    const routedStream = (text: string, params: ReadonlyArray<unknown>, transform: Transform) =>
      Stream.unwrap(Effect.withFiber((fiber) => {
        const read = fiber.getRef(ReadReplica)
        const key = fiber.getRef(CurrentIdentity)
        const f = (session: SqlSession) => cursor(session, text, params, transform)
        const useOptions: ServerSet.UseOptions = read
          ? { mode: readMode, idempotent: true }
          : { mode: "write", idempotent: false }
        const stream = exclusive.as(key).useStream(f, useOptions) as Stream.Stream<any, unknown>
        return Effect.succeed(Stream.mapError(stream, (error) => toSqlError(error, "executeStream")))
      }))

    const routedConnection: Connection = {
      execute: (sql, params, transform) => routed(sql, params, RUN.execute, transform, "execute"),
      executeRaw: (sql, params) => routed(sql, params, RUN.raw, undefined, "executeRaw"),
      executeStream: (sql, params, transform) => routedStream(sql, params, transform),
      executeValues: (sql, params) => routed(sql, params, RUN.values, undefined, "executeValues"),
      executeValuesUnprepared: (sql, params) =>
        routed(sql, params, RUN.valuesUnprepared, undefined, "executeValuesUnprepared"),
      executeUnprepared: (sql, params, transform) => routed(sql, params, RUN.unprepared, transform, "executeUnprepared")
    }

    const pinnedConnection = (session: SqlSession): Connection & { readonly session: SqlSession } => ({
      session,
      execute: (sql, params, transform) => pinned(session, sql, params, { prepare: true }, transform, "execute"),
      executeRaw: (sql, params) => pinned(session, sql, params, { prepare: true, raw: true }, undefined, "executeRaw"),
      executeStream: (sql, params, transform) => cursor(session, sql, params, transform),
      executeValues: (sql, params) =>
        pinned(session, sql, params, { prepare: true, values: true }, undefined, "executeValues"),
      executeValuesUnprepared: (sql, params) =>
        pinned(session, sql, params, { prepare: false, values: true }, undefined, "executeValuesUnprepared"),
      executeUnprepared: (sql, params, transform) =>
        pinned(session, sql, params, { prepare: false }, transform, "executeUnprepared")
    })

    /**
     * Holds one session of the view's set, bound as its identity, until the
     * current scope closes: a fiber borrows it (with failover for the borrow)
     * and hands it over.
     */
    const lease = (
      view: ServerSet.View<SqlSession, unknown, unknown>,
      useOptions: ServerSet.UseOptions
    ): Effect.Effect<SqlSession, SqlError, Scope.Scope> =>
      Effect.gen(function*() {
        const lent = yield* Deferred.make<SqlSession, SqlError>()
        const done = yield* Deferred.make<void>()
        const f = (session: SqlSession) =>
          session.closed
            // Lent without validation (used moments ago) but already lost: fail as "not sent", so the
            // set destroys it and fails over to another connection.
            ? Effect.fail(toSqlError(notSent(session, "the pooled session was already closed"), "acquire"))
            : Effect.andThen(Deferred.succeed(lent, session), Deferred.await(done))
        yield* (view.use(f, useOptions) as Effect.Effect<void, unknown>).pipe(
          Effect.catchCause((cause) =>
            Deferred.failCause(
              lent,
              Cause.map(cause, (error) => toSqlError(error, "acquire"))
            )
          ),
          Effect.forkScoped
        )
        yield* Effect.addFinalizer(() => Deferred.succeed(done, undefined))
        return yield* Deferred.await(lent)
      })

    const transactionAcquirer: Effect.Effect<Connection, SqlError, Scope.Scope> = Effect.withFiber((fiber) => {
      const read = fiber.getRef(ReadReplica)
      const key = fiber.getRef(CurrentIdentity)
      return Effect.map(
        lease(exclusive.as(key), read ? { mode: readMode, idempotent: true } : { mode: "write", idempotent: false }),
        pinnedConnection
      )
    })

    /** PostgreSQL answers COMMIT of an aborted transaction with ROLLBACK. */
    const commit = (conn: Connection): Effect.Effect<void, SqlError> =>
      Effect.flatMap(conn.executeRaw("COMMIT", []), (result) =>
        (result as { command?: string }).command === "ROLLBACK"
          ? Effect.fail(
            new SqlError({
              reason: new SqlErrors.UnknownError({
                cause: new Error("COMMIT rolled back an aborted transaction"),
                message: "COMMIT rolled back an aborted transaction",
                operation: "commit"
              })
            })
          )
          : Effect.void)

    const client = yield* SqlClient.make({
      driver: "pg",
      acquirer: Effect.succeed(routedConnection),
      borrower: (f) => f(routedConnection),
      transactionAcquirer,
      compiler,
      transformRows,
      prepareTransactionControls: prepare,
      commit,
      // A lost session rolled back on the server: nothing to clean up (and nothing to send on).
      isTransaction: (conn) => {
        const session = (conn as { session?: SqlSession }).session
        return session === undefined ? true : session.inTransaction && !session.closed
      },
      releaseSavepoint: (name) => `RELEASE SAVEPOINT ${name}`,
      spanAttributes: [
        ...(options.spanAttributes ? Object.entries(options.spanAttributes) : []),
        ["db.system.name", "postgresql"],
        ["db.namespace", options.database ?? (first.database === "" ? "postgres" : first.database)],
        ["server.address", first.host],
        ["server.port", first.port]
      ]
    })

    const listenOnce = SqlListen.make(listenSet, notSent, runOn)

    // --- the query cache --------------------------------------------------------

    const cache = yield* QueryCache.make(options.cache?.capacity ?? 1_000, options.cache?.ttl ?? "10 seconds")
    const cacheHits = Metric.withAttributes(cacheRequests, { client: name, outcome: "hit" })
    const cacheMisses = Metric.withAttributes(cacheRequests, { client: name, outcome: "miss" })
    const cached = <A extends object>(statement: Statement.Statement<A>): Effect.Effect<ReadonlyArray<A>, SqlError> =>
      Effect.withFiber((fiber) => {
        if (Context.getOrUndefined(fiber.context, client.transactionService) !== undefined) return statement
        const key = fiber.getRef(CurrentIdentity)
        // `PgSql.as` provides the identity along with the key.
        const credentials = key === undefined ? undefined : Context.getOrUndefined(fiber.context, key)
        const identity = credentials === undefined ? "default" : Identity.digest(credentials)
        const [text, params] = statement.compile()
        const id = QueryCache.keyOf(text, params, `${fiber.getRef(ReadReplica) ? "r" : "w"}:${identity}`)
        return cache.get(id, text, statement).pipe(
          Effect.tap((result) => Metric.update(result.hit ? cacheHits : cacheMisses, 1)),
          Effect.map((result) => result.rows)
        )
      })

    const service: PgSql.PgSql = Object.assign(client, {
      json: Compiler.json,
      cached,
      invalidateCache: cache.invalidate,
      cacheStats: cache.stats,
      listen: (channel: string) =>
        Stream.retry(
          listenOnce(channel),
          Schedule.spaced("100 millis").pipe(
            Schedule.while((meta: { readonly input: SqlError }) => meta.input.reason._tag === "ConnectionError")
          )
        ) as Stream.Stream<string, SqlError>,
      notify: (channel: string, payload: string) =>
        Effect.asVoid(routed("select pg_notify($1, $2)", [channel, payload], RUN.execute, undefined, "notify")),
      status: shared.status,
      balancerChanges: shared.balancerChanges,
      reconfigure: ServerSet.combineReconfigure(shared.reconfigure, exclusive.reconfigure),
      statusAll: Effect.all({ shared: shared.status, exclusive: exclusive.status })
    })
    ;(service as { safe: unknown }).safe = service
    return service
  })

/** A cursor's batches, each raced against the socket's close (a closed session never starts the cursor). */
async function* batchesOf<A>(cursor: AsyncIterable<A>, socket: SocketClosed.SocketClosed): AsyncGenerator<A> {
  const batches = cursor[Symbol.asyncIterator]()
  let done = false
  try {
    while (true) {
      const next = await socket.race(SocketClosed.lazily(() => batches.next()))
      if (next.done === true) {
        done = true
        return
      }
      yield next.value
    }
  } finally {
    if (!done) void Promise.resolve(batches.return?.()).catch(() => undefined)
  }
}
