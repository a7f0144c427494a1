import { ServerSet } from "@tether/core"
import type { Endpoint, Identity, InvalidPoolOptions } from "@tether/core"
import { Effect, Option, Stream } from "effect"
import type { Context, Scope } from "effect"
import { Attribute, Change } from "ldapts"
import type { Entry as LdaptsEntry, SearchOptions as LdaptsSearchOptions } from "ldapts"
import type * as LdapClient from "../LdapClient.ts"
import type * as Ldif from "../Ldif.ts"
import * as LdapDriver from "../LdapDriver.ts"
import type { LdapConnection } from "../LdapDriver.ts"
import { fromUnknown } from "../LdapError.ts"
import type { LdapError } from "../LdapError.ts"

/** An ldapts entry as a Tether entry: every attribute a list, binary values as bytes. */
const toEntry = (raw: LdaptsEntry): LdapClient.Entry => {
  const attributes: Record<string, ReadonlyArray<string | Uint8Array>> = {}
  for (const [type, value] of Object.entries(raw)) {
    if (type === "dn") continue
    const values = Array.isArray(value) ? value : [value]
    attributes[type] = values.map((v) => (typeof v === "string" ? v : new Uint8Array(v)))
  }
  return { dn: raw.dn, attributes }
}

/** Reads an async generator through `for await`, which tolerates iterators answering with plain objects. */
async function* pagesOf<A>(pages: AsyncIterable<A>): AsyncGenerator<A> {
  for await (const page of pages) yield page
}

const hasKind = (error: unknown, kind: string) =>
  typeof error === "object" && error !== null && "_tag" in error && error._tag === "LdapOperationError" &&
  "kind" in error && error.kind === kind

const isNoSuchObject = (error: unknown) => hasKind(error, "no-such-object")
const isAlreadyExists = (error: unknown) => hasKind(error, "already-exists")

const toLdaptsOptions = (searchOptions: LdapClient.SearchOptions | undefined): LdaptsSearchOptions => {
  const pageSize = searchOptions?.pageSize ?? 500
  return {
    scope: searchOptions?.scope ?? "sub",
    filter: searchOptions?.filter ?? "(objectClass=*)",
    ...(searchOptions?.attributes === undefined ? {} : { attributes: [...searchOptions.attributes] }),
    ...(searchOptions?.sizeLimit === undefined ? {} : { sizeLimit: searchOptions.sizeLimit }),
    ...(searchOptions?.timeLimit === undefined ? {} : { timeLimit: searchOptions.timeLimit }),
    ...(pageSize > 0 ? { paged: { pageSize } } : {})
  }
}

/** @internal */
export const make = (
  options: LdapClient.Options
): Effect.Effect<LdapClient.LdapClient, Endpoint.InvalidEndpoint | InvalidPoolOptions, Scope.Scope> =>
  Effect.gen(function*() {
    const name = options.name ?? "ldap"
    yield* LdapDriver.rejectCredentialUrls(options.endpoints)
    // Turning TLS verification off is logged once per endpoint, by the driver.
    const driverOptions: LdapDriver.Options = {
      bindDn: options.bindDn,
      password: options.password,
      startTls: options.startTls,
      tls: options.tls,
      allowPlaintext: options.allowPlaintext,
      connectTimeout: options.connectTimeout,
      timeout: options.timeout
    }
    const set = yield* ServerSet.make<LdapConnection, LdapError>({
      name,
      endpoints: options.endpoints,
      driver: LdapDriver.make(driverOptions),
      strategy: options.strategy,
      pool: options.pool,
      health: options.health,
      breaker: options.breaker,
      retry: options.retry
    })

    const operations = <R>(key: Context.Key<R, Identity.Credentials> | undefined): LdapClient.Operations<R> => {
      const use = <A>(
        operation: string,
        f: (connection: LdapConnection) => Promise<A>,
        write: boolean
      ): Effect.Effect<A, LdapClient.LdapClientError, R> => {
        const run = (connection: LdapConnection) => LdapDriver.attempt(connection, operation, () => f(connection))
        const useOptions = { mode: write ? "write" as const : "read" as const, idempotent: !write }
        return (key === undefined ? set.use(run, useOptions) : set.useAs(key, run, useOptions)).pipe(
          Effect.withSpan(`tether.ldap.${operation}`, { attributes: { "tether.client": name } }, { captureStackTrace: false })
        ) as Effect.Effect<A, LdapClient.LdapClientError, R>
      }

      const search = (base: string, searchOptions?: LdapClient.SearchOptions): Stream.Stream<LdapClient.Entry, LdapClient.LdapClientError, R> => {
        const pageSize = searchOptions?.pageSize ?? 500
        const ldaptsOptions = toLdaptsOptions(searchOptions)
        const f = (connection: LdapConnection) => {
          const onError = (cause: unknown) => fromUnknown(cause, { endpoint: connection.endpoint, operation: "search" })
          const pages = pageSize > 0
            ? Stream.fromAsyncIterable(pagesOf(connection.client.searchPaginated(base, ldaptsOptions)), onError)
            : Stream.fromEffect(LdapDriver.attempt(connection, "search", (c) => c.search(base, ldaptsOptions)))
          return pages.pipe(Stream.flatMap((page) => Stream.fromIterable(page.searchEntries.map(toEntry))))
        }
        const useOptions = { mode: "read" as const, idempotent: true }
        return (key === undefined ? set.useStream(f, useOptions) : set.useStreamAs(key, f, useOptions)) as Stream.Stream<
          LdapClient.Entry,
          LdapClient.LdapClientError,
          R
        >
      }

      const add = (dn: string, attributes: { readonly [type: string]: string | ReadonlyArray<string> }) =>
        use("add", ({ client }) =>
          client.add(
            dn,
            Object.fromEntries(Object.entries(attributes).map(([k, v]) => [k, typeof v === "string" ? v : [...v]]))
          ), true)

      const remove = (dn: string) => use("delete", ({ client }) => client.del(dn), true)

      /** Adds an entry: binary values are sent as bytes. */
      const addEntry = (dn: string, attributes: { readonly [type: string]: ReadonlyArray<string | Uint8Array> }) =>
        use("add", ({ client }) =>
          client.add(
            dn,
            Object.entries(attributes).map(([type, values]) =>
              values.every((v) => typeof v === "string")
                ? new Attribute({ type, values: [...values] as Array<string> })
                : new Attribute({ type, values: values.map((v) => Buffer.from(v)) })
            )
          ), true)

      /** Applies one LDIF record. */
      const applyRecord = (record: Ldif.LdifRecord, onExists: LdapClient.OnExists) => {
        switch (record._tag) {
          case "Entry":
          case "Add":
            return addEntry(record.dn, record.attributes).pipe(
              Effect.as("done" as const),
              Effect.catch((error) => {
                if (!isAlreadyExists(error) || onExists === "fail") return Effect.fail(error)
                if (onExists === "skip") return Effect.succeed("skipped" as const)
                return Effect.as(Effect.andThen(remove(record.dn), addEntry(record.dn, record.attributes)), "done" as const)
              })
            )
          case "Delete":
            return Effect.as(remove(record.dn), "done" as const)
          case "Modify":
            return Effect.as(
              use("modify", ({ client }) =>
                client.modify(
                  record.dn,
                  record.changes.map((c) =>
                    new Change({
                      operation: c.operation,
                      modification: new Attribute({
                        type: c.attribute,
                        values: c.values.every((v) => typeof v === "string")
                          ? [...c.values] as Array<string>
                          : c.values.map((v) => Buffer.from(v))
                      })
                    })
                  )
                ), true),
              "done" as const
            )
          case "ModRdn": {
            const parent = record.newSuperior ?? record.dn.slice(record.dn.search(/(?<!\\),/) + 1)
            return Effect.as(
              use("modifyDN", ({ client }) => client.modifyDN(record.dn, parent === "" ? record.newRdn : `${record.newRdn},${parent}`), true),
              "done" as const
            )
          }
        }
      }

      const importLdif: LdapClient.Operations<R>["importLdif"] = (records, bulkOptions) =>
        Effect.gen(function*() {
          const onExists = bulkOptions?.onExists ?? "fail"
          let done = 0
          let skipped = 0
          const failed: Array<{ dn: string; error: LdapClient.LdapClientError }> = []
          const report = (): LdapClient.BulkReport => ({ done, skipped, failed: [...failed] })
          const one = (record: Ldif.LdifRecord) =>
            applyRecord(record, onExists).pipe(
              Effect.result,
              Effect.map((result) => {
                if (result._tag === "Failure") failed.push({ dn: record.dn, error: result.failure })
                else if (result.success === "done") done++
                else skipped++
              })
            )
          yield* records.pipe(
            Stream.mapEffect(one, { concurrency: bulkOptions?.concurrency ?? 8 }),
            Stream.runForEach(() => {
              const n = done + skipped + failed.length
              return bulkOptions?.onProgress !== undefined && n % 1000 === 0 ? bulkOptions.onProgress(report()) : Effect.void
            })
          )
          return report()
        })

      const addMany: LdapClient.Operations<R>["addMany"] = (entries, bulkOptions) =>
        importLdif(
          Stream.map(entries, (entry): Ldif.LdifRecord => ({
            _tag: "Entry",
            dn: entry.dn,
            attributes: entry.attributes as Ldif.Attributes
          })),
          bulkOptions
        )

      // Collected in one borrow: unlike a stream, the whole search fails over and is retried.
      const searchAll = (base: string, searchOptions?: LdapClient.SearchOptions) => {
        const ldaptsOptions = toLdaptsOptions(searchOptions)
        return use("search", async ({ client }): Promise<ReadonlyArray<LdapClient.Entry>> => {
          if (ldaptsOptions.paged === undefined) return (await client.search(base, ldaptsOptions)).searchEntries.map(toEntry)
          const entries: Array<LdapClient.Entry> = []
          for await (const page of client.searchPaginated(base, ldaptsOptions)) {
            for (const entry of page.searchEntries) entries.push(toEntry(entry))
          }
          return entries
        }, false)
      }

      return {
        search,
        searchAll,
        get: (dn, attributes) =>
          searchAll(dn, { scope: "base", pageSize: 0, ...(attributes === undefined ? {} : { attributes }) }).pipe(
            Effect.map((entries) => Option.fromNullishOr(entries[0])),
            Effect.catchIf(isNoSuchObject, () => Effect.succeed(Option.none()))
          ) as Effect.Effect<Option.Option<LdapClient.Entry>, LdapClient.LdapClientError, R>,
        add,
        modify: (dn, changes) =>
          use("modify", ({ client }) =>
            client.modify(
              dn,
              changes.map((c) =>
                new Change({ operation: c.operation, modification: new Attribute({ type: c.attribute, values: [...c.values] }) })
              )
            ), true),
        delete: remove,
        modifyDN: (dn, newDn) => use("modifyDN", ({ client }) => client.modifyDN(dn, newDn), true),
        compare: (dn, attribute, value) => use("compare", ({ client }) => client.compare(dn, attribute, value), false),
        whoami: use("whoami", ({ client }) => client.exop(LdapDriver.WHO_AM_I).then((r) => r.value ?? ""), false),
        // An extended operation may change state: treated as a write (never replayed).
        exop: (oid, value) => use("exop", ({ client }) => client.exop(oid, value), true),
        addMany,
        modifyMany: (modifications, bulkOptions) =>
          importLdif(Stream.map(modifications, (m): Ldif.LdifRecord => ({ _tag: "Modify", dn: m.dn, changes: m.changes })), bulkOptions),
        importLdif
      }
    }

    return {
      ...operations<never>(undefined),
      as: (key) => operations(key),
      status: set.status
    }
  })
