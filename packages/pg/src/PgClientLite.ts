/**
 * A `PgClient` on PGlite (`@electric-sql/pglite`: a real PostgreSQL engine
 * compiled to WebAssembly, in-process) for users' unit tests: the same API
 * and typed errors as the real client, no server. Import it from
 * `@tether/pg/PgClientLite`; `@electric-sql/pglite` is an optional peer
 * dependency, loaded only when this layer is built.
 *
 * What differs from a server: one in-process session, so statements run one
 * at a time and a transaction holds the engine until it ends; `read` and
 * `write` go to the same database (no replicas, no failover); `stream`
 * collects the result before streaming it; `as(identity)` runs the statement
 * under `SET ROLE` to the identity's principal (the role must exist; its
 * password is not checked).
 *
 * @example
 * ```ts
 * import { PgClient } from "@tether/pg"
 * import * as PgClientLite from "@tether/pg/PgClientLite"
 * import { Effect } from "effect"
 *
 * const test = Effect.gen(function*() {
 *   const db = yield* PgClient.PgClient
 *   yield* db.write`create table t (id int primary key)`
 *   yield* db.write`insert into t values (${1})`
 *   return yield* db.read`select * from t`
 * }).pipe(Effect.provide(PgClientLite.layer()))
 * ```
 *
 * @since 0.1.0
 */
import type { Identity } from "@tether/core"
import { ServerSet } from "@tether/core"
import type { PGlite } from "@electric-sql/pglite"
import { Effect, Layer, Schedule, Semaphore, Stream } from "effect"
import type { Context, Scope } from "effect"
import * as QueryCache from "./internal/queryCache.ts"
import * as PgClient from "./PgClient.ts"
import { fromUnknown, isPgError } from "./PgError.ts"
import type { PgError } from "./PgError.ts"

const ENDPOINT = "pglite"

const textOf = (strings: TemplateStringsArray) =>
  strings.reduce((acc, part, i) => (i === 0 ? part : `${acc}$${i}${part}`), "")

const quoteIdent = (name: string) => `"${name.replaceAll("\"", "\"\"")}"`

/**
 * Starts a PGlite client in the current scope (in memory, or in `dataDir`).
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (options?: {
  readonly dataDir?: string | undefined
  readonly cache?: PgClient.Options["cache"]
}): Effect.Effect<PgClient.PgClient, PgError, Scope.Scope> =>
  Effect.gen(function*() {
    const db = yield* Effect.acquireRelease(
      Effect.tryPromise({
        try: async (): Promise<PGlite> => {
          const { PGlite } = await import("@electric-sql/pglite")
          return PGlite.create(options?.dataDir === undefined ? {} : { dataDir: options.dataDir })
        },
        catch: (cause) => fromUnknown(cause, { endpoint: ENDPOINT, user: "postgres" })
      }),
      (db) => Effect.promise(() => db.close().catch(() => undefined))
    )
    // One session: a transaction must not interleave with other statements.
    const lock = Semaphore.makeUnsafe(1)
    const cache = yield* QueryCache.make(options?.cache?.capacity ?? 1_000, options?.cache?.ttl ?? "10 seconds")

    /** Runs a statement whose rows the caller types as `A` (PGlite's own `query<A>`: the caller's word, not checked). */
    const run = <A extends object = PgClient.Row>(text: string, values: ReadonlyArray<unknown>, write: boolean) =>
      Effect.tryPromise({
        try: () => db.query<A>(text, [...values]).then((r): ReadonlyArray<A> => r.rows),
        catch: (cause) => fromUnknown(cause, { endpoint: ENDPOINT, user: "postgres", write })
      })

    const executor = <R>(key: Context.Key<R, Identity.Credentials> | undefined): PgClient.Executor<R> => {
      /** Runs `effect` with the lock held, as the identity's role when there is one. */
      const locked = <A, E, R2>(effect: Effect.Effect<A, E, R2>): Effect.Effect<A, E | PgError, R | R2> =>
        key === undefined
          ? lock.withPermits(1)(effect)
          : Effect.flatMap(Effect.service(key), (identity) =>
            lock.withPermits(1)(
              Effect.acquireUseRelease(
                run(`set role ${quoteIdent(identity.principal)}`, [], false),
                () => effect,
                () => Effect.ignore(run("reset role", [], false))
              )
            ))
      const read: PgClient.Query<R> = <A extends object = PgClient.Row>(
        strings: TemplateStringsArray,
        ...values: ReadonlyArray<unknown>
      ) =>
        locked(
          // A read runs in a read-only transaction, like the real client's read-only sessions.
          Effect.gen(function*() {
            yield* run("begin read only", [], false)
            const exit = yield* Effect.exit(run<A>(textOf(strings), values, false))
            yield* Effect.ignore(run(exit._tag === "Success" ? "commit" : "rollback", [], false))
            return yield* exit
          })
        )
      const write: PgClient.Query<R> = <A extends object = PgClient.Row>(
        strings: TemplateStringsArray,
        ...values: ReadonlyArray<unknown>
      ) => locked(run<A>(textOf(strings), values, true))
      const identityKey: Effect.Effect<string, never, R> = key === undefined
        ? Effect.succeed("default") as Effect.Effect<string, never, R>
        : Effect.map(Effect.service(key), (c) => c.principal)
      const cached: PgClient.Query<R> = <A extends object = PgClient.Row>(
        strings: TemplateStringsArray,
        ...values: ReadonlyArray<unknown>
      ) =>
        Effect.gen(function*() {
          const text = textOf(strings)
          const context = yield* Effect.context<R>()
          const run = Effect.provideContext(read<A>(strings, ...values), context)
          return (yield* cache.get(QueryCache.keyOf(text, values, yield* identityKey), text, run)).rows
        })
      const transaction: PgClient.Executor<R>["transaction"] = (body, transactionOptions) => {
        const isolation = transactionOptions?.isolation ?? "read committed"
        const begin = `begin isolation level ${isolation} ${transactionOptions?.readOnly === true ? "read only" : "read write"}`
        const tx: PgClient.Transaction = {
          sql: <A extends object = PgClient.Row>(strings: TemplateStringsArray, ...values: ReadonlyArray<unknown>) =>
            run<A>(textOf(strings), values, false),
          unsafe: <A extends object = PgClient.Row>(text: string, parameters?: ReadonlyArray<unknown>) =>
            run<A>(text, parameters ?? [], false)
        }
        const attempt = locked(
          Effect.uninterruptibleMask((restore) =>
            Effect.gen(function*() {
              yield* run(begin, [], false)
              const exit = yield* Effect.exit(restore(body(tx)))
              if (exit._tag === "Failure") {
                yield* Effect.ignore(run("rollback", [], false))
                return yield* exit
              }
              yield* run("commit", [], true)
              return exit.value
            })
          )
        )
        return Effect.retry(attempt, {
          schedule: (transactionOptions?.retry ?? Schedule.recurs(5)) as Schedule.Schedule<unknown, unknown>,
          while: (e) => isPgError(e) && e._tag === "PgQueryError" && (e.kind === "serialization" || e.kind === "deadlock")
        })
      }
      return {
        read,
        write,
        cached,
        unsafe: <A extends object = PgClient.Row>(
          text: string,
          parameters?: ReadonlyArray<unknown>,
          unsafeOptions?: { readonly mode?: "read" | "write" | undefined }
        ) => locked(run<A>(text, parameters ?? [], unsafeOptions?.mode === "write")),
        stream: <A extends object = PgClient.Row>(strings: TemplateStringsArray, ...values: ReadonlyArray<unknown>) =>
          Stream.unwrap(Effect.map(read<A>(strings, ...values), (rows) => Stream.fromIterable(rows))),
        transaction,
        batch: (statements, batchOptions) =>
          locked(Effect.forEach(statements, (s) => run(textOf(s.strings), s.values, batchOptions?.mode !== "read")))
      }
    }

    return {
      ...executor<never>(undefined),
      as: (key) => executor(key),
      invalidateCache: cache.invalidate,
      cacheStats: cache.stats,
      status: Effect.succeed({ name: ENDPOINT, strategy: "round-robin", endpoints: [] }),
      balancerChanges: Stream.make({ strategy: "round-robin", highestTimeline: undefined, endpoints: [] }),
      reconfigure: ServerSet.serverlessReconfigure(ENDPOINT, Effect.succeed({ name: ENDPOINT, strategy: "round-robin", endpoints: [] })),
      // One in-process database: nothing is ever fenced.
      unfence: () => Effect.succeed(false)
    } satisfies PgClient.PgClient
  })

/**
 * A `Layer` of `PgClient` on an in-memory PGlite database.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (options?: Parameters<typeof make>[0]): Layer.Layer<PgClient.PgClient, PgError> =>
  Layer.effect(PgClient.PgClient, make(options))
