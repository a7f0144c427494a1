/**
 * LDAP with Promises: the `@tether/ldap` client (pooled connections bound
 * per identity, failover, typed errors, paged search) for code that does not
 * use Effect. Searches are async iterators: entries arrive page by page, and
 * leaving the loop early releases the connection.
 *
 * @example
 * ```ts
 * import { createLdapClient } from "@tether/promise"
 *
 * const ldap = await createLdapClient({
 *   endpoints: ["ldap://ldap1:389", "ldap://ldap2:389"],
 *   bindDn: "cn=admin,dc=example,dc=com",
 *   password: process.env["LDAP_PASSWORD"] ?? ""
 * })
 * for await (const entry of ldap.search("ou=people,dc=example,dc=com", { filter: "(uid=a*)" })) {
 *   console.log(entry.dn)
 *   break // the search's connection goes back to the pool
 * }
 * await ldap.add("uid=zoe,ou=people,dc=example,dc=com", { objectClass: ["inetOrgPerson"], cn: "Zoe", sn: "Z" })
 * const report = await ldap.importLdif("people.ldif", { onProgress: (r) => console.log(r.done) })
 * console.log(report.failed.length)
 * await ldap.close()
 * ```
 *
 * @since 0.1.0
 */
import { Identity } from "@tether/core"
import type { ServerSet } from "@tether/core"
import { LdapClient, Ldif } from "@tether/ldap"
import { Context, Effect, ManagedRuntime, Option, Redacted, Stream } from "effect"
import { Runner } from "./internal/runner.ts"
import type { CallOptions } from "./internal/runner.ts"

export type { CallOptions } from "./internal/runner.ts"

/**
 * Options of {@link createLdapClient}: those of `LdapClient.make` from
 * `@tether/ldap`, with the password also accepted as a plain string.
 *
 * @since 0.1.0
 * @category models
 */
export interface Options extends Omit<LdapClient.Options, "password"> {
  readonly password?: string | Redacted.Redacted<string> | undefined
}

/**
 * An entry: its DN and attribute values.
 *
 * @since 0.1.0
 * @category models
 */
export type Entry = LdapClient.Entry

/**
 * The outcome of a bulk operation: each input in `done`, `skipped` or `failed`.
 *
 * @since 0.1.0
 * @category models
 */
export type BulkReport = LdapClient.BulkReport
/** What `onProgress` receives: done / skipped / failed / seen so far, the rate and the elapsed time. */
export type Progress = LdapClient.Progress

/**
 * Options of a bulk operation.
 *
 * @since 0.1.0
 * @category models
 */
export interface BulkOptions extends CallOptions {
  /** Operations in flight at once. Default 8 (use 1 when records depend on each other). */
  readonly concurrency?: number | undefined
  /** An entry that exists already: `fail` (default), `skip` or `replace`. */
  readonly onExists?: LdapClient.OnExists | undefined
  /** Called with the report so far (every 1,000 records for LDIF). */
  readonly onProgress?: ((progress: Progress) => void) | undefined
}

/**
 * The operations, as the default identity or as another one (`as`).
 *
 * @since 0.1.0
 * @category models
 */
export interface Operations {
  /** Searches, streaming entries page by page; `break` releases the connection. */
  readonly search: (base: string, options?: LdapClient.SearchOptions & CallOptions) => AsyncIterableIterator<Entry>
  /** Searches and collects every entry. */
  readonly searchAll: (base: string, options?: LdapClient.SearchOptions & CallOptions) => Promise<ReadonlyArray<Entry>>
  /** The entry at `dn`, or `undefined`. */
  readonly get: (
    dn: string,
    options?: CallOptions & { readonly attributes?: ReadonlyArray<string> | undefined }
  ) => Promise<Entry | undefined>
  readonly add: (
    dn: string,
    attributes: { readonly [type: string]: string | ReadonlyArray<string> },
    options?: CallOptions
  ) => Promise<void>
  readonly modify: (dn: string, changes: ReadonlyArray<LdapClient.Change>, options?: CallOptions) => Promise<void>
  readonly delete: (dn: string, options?: CallOptions) => Promise<void>
  readonly modifyDN: (dn: string, newDn: string, options?: CallOptions) => Promise<void>
  readonly compare: (dn: string, attribute: string, value: string, options?: CallOptions) => Promise<boolean>
  /** Whom the server sees: `dn:…` (or `""` when anonymous). */
  readonly whoami: (options?: CallOptions) => Promise<string>
  /** Adds entries from any (async) iterable; every entry ends in the report. */
  readonly addMany: (entries: Iterable<Entry> | AsyncIterable<Entry>, options?: BulkOptions) => Promise<BulkReport>
  /** Applies an LDIF file (RFC 2849), streamed: memory stays flat. */
  readonly importLdif: (path: string, options?: BulkOptions) => Promise<BulkReport>
}

/**
 * Who to bind as: a DN and its password.
 *
 * @since 0.1.0
 * @category models
 */
export interface BindIdentity {
  readonly dn: string
  readonly password: string | Redacted.Redacted<string>
  /** A non-secret label for metrics and status. Default: the DN. */
  readonly label?: string | undefined
}

/**
 * The Promise client.
 *
 * @since 0.1.0
 * @category models
 */
export interface PromiseLdapClient extends Operations, AsyncDisposable {
  /** The same operations on connections bound as `identity`. */
  readonly as: (identity: BindIdentity) => Operations
  /** Every server's health, breaker and pool. */
  readonly status: (options?: CallOptions) => Promise<ServerSet.Status>
  /** Ends open searches, interrupts calls in flight (they reject with `ClientClosed`), closes every connection. Idempotent. */
  readonly close: () => Promise<void>
  /** The underlying Effect client, to mix both styles. */
  readonly effect: LdapClient.LdapClient
}

class AsBind extends Identity.Service<AsBind>()("@tether/promise/LdapBind") {}

const redacted = (password: string | Redacted.Redacted<string>) =>
  Redacted.isRedacted(password) ? password : Redacted.make(password)

const bulk = (options: BulkOptions | undefined) => ({
  concurrency: options?.concurrency,
  onExists: options?.onExists,
  onProgress: options?.onProgress === undefined
    ? undefined
    : (progress: Progress) => Effect.sync(() => options.onProgress!(progress))
})

const searchOptions = (options: (LdapClient.SearchOptions & CallOptions) | undefined): LdapClient.SearchOptions => {
  if (options === undefined) return {}
  const { signal: _signal, ...rest } = options
  return rest
}

const operationsOf = <R>(
  runner: Runner<never>,
  ops: LdapClient.Operations<R>,
  provide: <A, E>(effect: Effect.Effect<A, E, R>) => Effect.Effect<A, E>,
  provideStream: <A, E>(stream: Stream.Stream<A, E, R>) => Stream.Stream<A, E>
): Operations => ({
  search: (base, options) => runner.iterate(provideStream(ops.search(base, searchOptions(options))), options),
  searchAll: (base, options) => runner.run(provide(ops.searchAll(base, searchOptions(options))), options),
  get: (dn, options) =>
    runner.run(provide(Effect.map(ops.get(dn, options?.attributes), Option.getOrUndefined)), options),
  add: (dn, attributes, options) => runner.run(provide(ops.add(dn, attributes)), options),
  modify: (dn, changes, options) => runner.run(provide(ops.modify(dn, changes)), options),
  delete: (dn, options) => runner.run(provide(ops.delete(dn)), options),
  modifyDN: (dn, newDn, options) => runner.run(provide(ops.modifyDN(dn, newDn)), options),
  compare: (dn, attribute, value, options) => runner.run(provide(ops.compare(dn, attribute, value)), options),
  whoami: (options) => runner.run(provide(ops.whoami), options),
  addMany: (entries, options) =>
    runner.run(
      provide(
        ops.addMany(
          Symbol.asyncIterator in entries
            ? Stream.fromAsyncIterable(entries, (error) => error)
            : Stream.fromIterable(entries),
          bulk(options)
        )
      ),
      options
    ),
  importLdif: (path, options) => runner.run(provide(ops.importLdif(Ldif.parseFile(path), bulk(options))), options)
})

/**
 * Starts a client: it resolves once the client is ready, and rejects with a
 * typed error (`InvalidEndpoint`, `InvalidPoolOptions`) for bad options.
 *
 * @example
 * ```ts
 * import { createLdapClient, PromiseError } from "@tether/promise"
 *
 * const ldap = await createLdapClient({ endpoints: ["ldap://127.0.0.1:389"] })
 * try {
 *   await ldap.as({ dn: "uid=ann,ou=people,dc=example,dc=com", password: "wrong" }).whoami()
 * } catch (error) {
 *   console.warn(PromiseError.tagOf(error)) // "LdapInvalidCredentials"
 * } finally {
 *   await ldap.close()
 * }
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const createLdapClient = async (options: Options): Promise<PromiseLdapClient> => {
  const { password, ...rest } = options
  const effectOptions: LdapClient.Options = password === undefined ? rest : { ...rest, password: redacted(password) }
  const runtime = ManagedRuntime.make(LdapClient.layer(effectOptions))
  let context: Context.Context<LdapClient.LdapClient>
  try {
    context = await runtime.context()
  } catch (error) {
    await runtime.dispose()
    throw error
  }
  const client = Context.get(context, LdapClient.LdapClient)
  const runner = new Runner<never>(options.name ?? "ldap", runtime, context)
  return {
    ...operationsOf(runner, client, (e) => e, (s) => s),
    as: (identity) => {
      const credentials = Identity.make(identity.dn, redacted(identity.password), { label: identity.label ?? identity.dn })
      return operationsOf(
        runner,
        client.as(AsBind),
        (effect) => Effect.provideService(effect, AsBind, credentials),
        (stream) => Stream.provideService(stream, AsBind, credentials)
      )
    },
    status: (callOptions) => runner.run(client.status, callOptions),
    close: () => runner.close(),
    [Symbol.asyncDispose]: () => runner.close(),
    effect: client
  }
}
