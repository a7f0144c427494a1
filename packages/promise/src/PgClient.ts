/**
 * PostgreSQL with Promises: the `@tether/pg` client (pooling, replica
 * routing, failover, typed errors) for code that does not use Effect. Every
 * call runs the Effect client on one `ManagedRuntime`; every call takes an
 * `AbortSignal`; `close()` interrupts what is in flight and closes every
 * connection.
 *
 * @example
 * ```ts
 * import { createPgClient } from "@tether/promise"
 *
 * const db = await createPgClient({
 *   endpoints: ["postgres://10.0.0.1:5432/app", { url: "postgres://10.0.0.2:5432/app", role: "replica" }],
 *   user: "app",
 *   password: process.env["PGPASSWORD"] ?? ""
 * })
 * const users = await db.read<{ id: number; name: string }>`select id, name from users where id = ${42}`
 * await db.write`update users set seen = now() where id = ${42}`
 * await db.transaction(async (tx) => {
 *   await tx.sql`insert into audit (what) values (${"seen"})`
 * })
 * // Cancel a slow statement:
 * await db.read({ signal: AbortSignal.timeout(5_000) })`select count(*) from big`
 * // As another role:
 * await db.as({ user: "alice", password: "…" }).read`select current_user`
 * console.log(users.length, await db.status())
 * await db.close()
 * ```
 *
 * @since 0.1.0
 */
import { Identity } from "@tether/core"
import type { ServerSet } from "@tether/core"
import { PgClient } from "@tether/pg"
import { Context, Effect, ManagedRuntime, Redacted, Stream } from "effect"
import { Foreign, Runner } from "./internal/runner.ts"
import type { CallOptions } from "./internal/runner.ts"

export type { CallOptions } from "./internal/runner.ts"

/**
 * Options of {@link createPgClient}: those of `PgClient.make` from
 * `@tether/pg`, with the password also accepted as a plain string.
 *
 * @since 0.1.0
 * @category models
 */
export interface Options extends Omit<PgClient.Options, "password"> {
  readonly password?: string | Redacted.Redacted<string> | undefined
}

/**
 * A row: column name to value.
 *
 * @since 0.1.0
 * @category models
 */
export type Row = PgClient.Row

/**
 * A tagged template that runs a statement (values are bound parameters).
 * Call it with options first to pass an `AbortSignal`:
 * `` db.read({ signal })`select …` ``.
 *
 * @since 0.1.0
 * @category models
 */
export interface Query {
  <A extends object = Row>(strings: TemplateStringsArray, ...values: ReadonlyArray<unknown>): Promise<ReadonlyArray<A>>
  (options: CallOptions): <A extends object = Row>(
    strings: TemplateStringsArray,
    ...values: ReadonlyArray<unknown>
  ) => Promise<ReadonlyArray<A>>
}

/**
 * A streamed read: rows arrive through a cursor; leaving the loop early
 * releases the connection. Options first for a signal, as with {@link Query}.
 *
 * @since 0.1.0
 * @category models
 */
export interface StreamQuery {
  <A extends object = Row>(strings: TemplateStringsArray, ...values: ReadonlyArray<unknown>): AsyncIterableIterator<A>
  (options: CallOptions): <A extends object = Row>(
    strings: TemplateStringsArray,
    ...values: ReadonlyArray<unknown>
  ) => AsyncIterableIterator<A>
}

/**
 * Statements inside a transaction, all on its one connection.
 *
 * @since 0.1.0
 * @category models
 */
export interface Transaction {
  readonly sql: <A extends object = Row>(
    strings: TemplateStringsArray,
    ...values: ReadonlyArray<unknown>
  ) => Promise<ReadonlyArray<A>>
  readonly unsafe: <A extends object = Row>(text: string, parameters?: ReadonlyArray<unknown>) => Promise<ReadonlyArray<A>>
}

/**
 * Options of a transaction.
 *
 * @since 0.1.0
 * @category models
 */
export interface TransactionOptions extends CallOptions {
  readonly isolation?: PgClient.Isolation | undefined
  readonly readOnly?: boolean | undefined
}

/**
 * The operations, as the default role or as another one (`as`).
 *
 * @since 0.1.0
 * @category models
 */
export interface Executor {
  /** A read, routed to a replica by default; failed over and retried. */
  readonly read: Query
  /** A write, on the primary; never replayed once it may have reached the server. */
  readonly write: Query
  /** A read whose result is cached (LRU + TTL). */
  readonly cached: Query
  /** A read streamed with a cursor. */
  readonly stream: StreamQuery
  /** A statement as text with `$1…` parameters. */
  readonly unsafe: <A extends object = Row>(
    text: string,
    parameters?: ReadonlyArray<unknown>,
    options?: CallOptions & { readonly mode?: "read" | "write" | undefined }
  ) => Promise<ReadonlyArray<A>>
  /**
   * Runs `body` in a transaction on the primary: committed when its promise
   * resolves, rolled back when it rejects (with that rejection) or when the
   * signal fires. On a serialization failure, a deadlock or a connection lost
   * before COMMIT, `body` runs again: keep it free of other side effects.
   */
  readonly transaction: <A>(body: (tx: Transaction) => Promise<A>, options?: TransactionOptions) => Promise<A>
  /** Several statements pipelined on one connection; their results in order. */
  readonly batch: (
    statements: ReadonlyArray<PgClient.Statement>,
    options?: CallOptions & { readonly mode?: "read" | "write" | undefined }
  ) => Promise<ReadonlyArray<ReadonlyArray<Row>>>
}

/**
 * Who to run as: a PostgreSQL role and its password.
 *
 * @since 0.1.0
 * @category models
 */
export interface Role {
  readonly user: string
  readonly password: string | Redacted.Redacted<string>
  /** A non-secret label for metrics and status. Default: the role name. */
  readonly label?: string | undefined
}

/**
 * The Promise client.
 *
 * @since 0.1.0
 * @category models
 */
export interface PromisePgClient extends Executor, AsyncDisposable {
  /** The same operations as another role (connections are pooled per role). */
  readonly as: (role: Role) => Executor
  /** Every endpoint's health, role, breaker and pool. */
  readonly status: (options?: CallOptions) => Promise<ServerSet.Status>
  /** Drops cached results (those whose statement text matches, or all); how many. */
  readonly invalidateCache: (predicate?: (text: string) => boolean) => Promise<number>
  /** Interrupts every call in flight (they reject with `ClientClosed`) and closes every connection. Idempotent. */
  readonly close: () => Promise<void>
  /** The underlying Effect client, to mix both styles. */
  readonly effect: PgClient.PgClient
}

/** The identity `as` runs with: one key, many credentials (pools key connections by credentials). */
class AsRole extends Identity.Service<AsRole>()("@tether/promise/PgRole") {}

const isTemplate = (u: unknown): u is TemplateStringsArray => Array.isArray(u) && "raw" in u

const redacted = (password: string | Redacted.Redacted<string>) =>
  Redacted.isRedacted(password) ? password : Redacted.make(password)

const taggedOrOptions = <Out>(
  run: (strings: TemplateStringsArray, values: ReadonlyArray<unknown>, options: CallOptions | undefined) => Out
) =>
  function(first: TemplateStringsArray | CallOptions, ...values: ReadonlyArray<unknown>) {
    if (isTemplate(first)) return run(first, values, undefined)
    return (strings: TemplateStringsArray, ...rest: ReadonlyArray<unknown>) => run(strings, rest, first)
  }

const executorOf = <R>(
  runner: Runner<never>,
  exec: PgClient.Executor<R>,
  provide: <A, E>(effect: Effect.Effect<A, E, R>) => Effect.Effect<A, E>,
  provideStream: <A, E>(stream: Stream.Stream<A, E, R>) => Stream.Stream<A, E>
): Executor => {
  const query = (op: PgClient.Query<R>): Query =>
    taggedOrOptions((strings, values, options) => runner.run(provide(op(strings, ...values)), options)) as Query
  const transactionOf = (tx: PgClient.Transaction, signal: AbortSignal): Transaction => ({
    sql: (strings, ...values) => runner.run(tx.sql(strings, ...values), { signal }),
    unsafe: (text, parameters) => runner.run(tx.unsafe(text, parameters), { signal })
  })
  return {
    read: query(exec.read),
    write: query(exec.write),
    cached: query(exec.cached),
    stream: taggedOrOptions((strings, values, options) =>
      runner.iterate(provideStream(exec.stream(strings, ...values)), options)
    ) as StreamQuery,
    unsafe: (text, parameters, options) =>
      runner.run(provide(exec.unsafe(text, parameters, { mode: options?.mode })), options),
    transaction: (body, options) =>
      runner.run(
        provide(
          exec.transaction(
            (tx) =>
              Effect.tryPromise({
                try: (signal) => body(transactionOf(tx, signal)),
                // A statement's typed error stays typed, so that the transaction is retried on a
                // serialization failure; anything else the body threw comes back unchanged.
                catch: (error) => (isTaggedError(error) ? error : new Foreign(error))
              }),
            { isolation: options?.isolation, readOnly: options?.readOnly }
          )
        ),
        options
      ),
    batch: (statements, options) => runner.run(provide(exec.batch(statements, { mode: options?.mode })), options)
  }
}

const isTaggedError = (u: unknown): boolean => u instanceof Error && "_tag" in u

/**
 * Starts a client: it resolves once the client is ready (endpoints parsed,
 * pools and health probes started), and rejects with a typed error
 * (`InvalidEndpoint`, `InvalidPoolOptions`) for bad options.
 *
 * @example
 * ```ts
 * import { createPgClient } from "@tether/promise"
 *
 * await using db = await createPgClient({ endpoints: ["postgres://127.0.0.1:5432/app"], user: "app" })
 * const [row] = await db.read<{ now: Date }>`select now()`
 * console.log(row?.now)
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const createPgClient = async (options: Options): Promise<PromisePgClient> => {
  const { password, ...rest } = options
  const effectOptions: PgClient.Options = password === undefined ? rest : { ...rest, password: redacted(password) }
  const runtime = ManagedRuntime.make(PgClient.layer(effectOptions))
  let context: Context.Context<PgClient.PgClient>
  try {
    context = await runtime.context()
  } catch (error) {
    await runtime.dispose()
    throw error
  }
  const client = Context.get(context, PgClient.PgClient)
  const runner = new Runner<never>(options.name ?? "pg", runtime, context)
  const base = executorOf(runner, client, (e) => e, (s) => s)
  return {
    ...base,
    as: (role) => {
      const credentials = Identity.make(role.user, redacted(role.password), { label: role.label ?? role.user })
      return executorOf(
        runner,
        client.as(AsRole),
        (effect) => Effect.provideService(effect, AsRole, credentials),
        (stream) => Stream.provideService(stream, AsRole, credentials)
      )
    },
    status: (callOptions) => runner.run(client.status, callOptions),
    invalidateCache: (predicate) => runner.run(client.invalidateCache(predicate)),
    close: () => runner.close(),
    [Symbol.asyncDispose]: () => runner.close(),
    effect: client
  }
}
