import { ServerSet } from "@tether/core"
import { InvalidPoolOptions, Validation } from "@tether/core"
import type { Endpoint, Identity } from "@tether/core"
import { Effect, Option, Stream, Tracer } from "effect"
import type { Context, Scope } from "effect"
import { Attribute, Change } from "ldapts"
import type { Client, Control, SearchEntry } from "ldapts"
import type * as LdapClient from "../LdapClient.ts"
import type * as Ldif from "../Ldif.ts"
import * as LdapDriver from "../LdapDriver.ts"
import type { LdapConnection } from "../LdapDriver.ts"
import { fromUnknown, LdapOperationError } from "../LdapError.ts"
import type { LdapError } from "../LdapError.ts"
import type * as RequestControl from "../RequestControl.ts"
import type * as RootDse from "../RootDse.ts"
import * as controlled from "./controlled.ts"
import * as rootDseWire from "./rootDse.ts"
import * as bulk from "./ldapBulk.ts"
import { checkOptions } from "./ldapOptions.ts"
import * as ldapPipeline from "./ldapPipeline.ts"
import { loadBinaryTypes, WELL_KNOWN_BINARY } from "./ldapSchema.ts"
import * as wire from "./ldapWire.ts"

const PASSWORD_MODIFY = "1.3.6.1.4.1.4203.1.11.1"

const strictUtf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true })

/** A value as text when it is valid UTF-8, else as bytes (never altered). */
const textOrBytes = (b: Buffer): string | Uint8Array => {
  try {
    return strictUtf8.decode(b)
  } catch {
    return new Uint8Array(b)
  }
}

const BOM0 = 0xef
/** A value ldapts decoded already (its decoder drops a leading BOM, so values starting with one are decoded again). */
const decoded = (text: string | Buffer | undefined, b: Buffer): string | Uint8Array =>
  typeof text === "string" && !(b.length >= 3 && b[0] === BOM0 && b[1] === 0xbb && b[2] === 0xbf) ? text : textOrBytes(b)

/** A raw search entry as a Tether entry: every attribute a list, binary attributes as bytes. */
const toEntry = (raw: SearchEntry, binary: ReadonlySet<string>): LdapClient.Entry => {
  const attributes: Record<string, Array<string | Uint8Array>> = {}
  for (const attribute of raw.attributes) {
    const type = attribute.type
    const semi = type.indexOf(";")
    const base = semi < 0 ? type : type.slice(0, semi)
    const isBinary = binary.has(base.toLowerCase()) ||
      (semi >= 0 && type.slice(semi + 1).split(";").some((o) => o.toLowerCase() === "binary"))
    const buffers = wire.rawValues(attribute)
    const texts = attribute.values as ReadonlyArray<string | Buffer>
    const values: Array<string | Uint8Array> = new Array(buffers.length)
    for (let i = 0; i < buffers.length; i++) {
      values[i] = isBinary ? new Uint8Array(buffers[i]!) : decoded(texts[i], buffers[i]!)
    }
    if (Object.hasOwn(attributes, type)) attributes[type]!.push(...values)
    // `__proto__` (or any name Object.prototype has) is an own property, never the prototype.
    else if (type in attributes) Object.defineProperty(attributes, type, { value: values, enumerable: true, writable: true, configurable: true })
    else attributes[type] = values
  }
  return { dn: raw.name, attributes }
}

const hasKind = (error: unknown, kind: string) =>
  typeof error === "object" && error !== null && "_tag" in error && error._tag === "LdapOperationError" &&
  "kind" in error && error.kind === kind

const isNoSuchObject = (error: unknown) => hasKind(error, "no-such-object")
const isAlreadyExists = (error: unknown) => hasKind(error, "already-exists")

const toRequest = (searchOptions: LdapClient.SearchOptions | undefined, limitsAsTruncation: boolean): wire.SearchRequestOptions => {
  const sizeLimit = searchOptions?.sizeLimit ?? 0
  let pageSize = searchOptions?.pageSize ?? 500
  // Servers may ignore paging when the page is not smaller than the size limit: no paging then.
  if (sizeLimit > 0 && pageSize >= sizeLimit) pageSize = 0
  return {
    scope: searchOptions?.scope ?? "sub",
    filter: searchOptions?.filter ?? "(objectClass=*)",
    attributes: searchOptions?.attributes,
    sizeLimit,
    timeLimit: searchOptions?.timeLimit ?? 0,
    pageSize,
    limitsAsTruncation
  }
}

/** Attribute values for ldapts: all strings, or all bytes. */
const ldaptsValues = (values: ReadonlyArray<string | Uint8Array>): Array<string> | Array<Buffer> =>
  values.every((v) => typeof v === "string")
    ? [...values] as Array<string>
    : values.map((v) => (typeof v === "string" ? Buffer.from(v, "utf8") : Buffer.from(v.buffer, v.byteOffset, v.length)))

const toChange = (c: LdapClient.Change): Change => {
  const modification = new Attribute({ type: c.attribute, values: ldaptsValues(c.values) })
  return c.operation === "increment"
    ? new wire.IncrementChange({ operation: "add", modification })
    : new Change({ operation: c.operation, modification })
}

const toControls = (controls: ReadonlyArray<Ldif.Control> | undefined): Array<Control> | undefined =>
  controls === undefined || controls.length === 0
    ? undefined
    : controls.map((c) => new wire.ValueControl(c.oid, c.critical, c.value))

/** Operations in flight per shared connection when `pipeline` is not given. @internal */
export const defaultPipelineDepth = 8

/** @internal */
export const make = (
  options: LdapClient.Options
): Effect.Effect<LdapClient.LdapClient, Endpoint.InvalidEndpoint | InvalidPoolOptions, Scope.Scope> =>
  Effect.gen(function*() {
    // Every option is checked first: an unknown key (a misspelt `password`) is refused, never ignored.
    yield* checkOptions(options)
    const name = options.name ?? "ldap"
    yield* LdapDriver.rejectCredentialUrls(options.endpoints)
    // Turning TLS verification off is logged once per endpoint, by the driver.
    const driverOptions: LdapDriver.Options = {
      bindDn: options.bindDn,
      password: options.password,
      sasl: options.sasl,
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

    // Pipelining (on by default): operations of the default identity share connections.
    const depth = options.pipeline === undefined ? defaultPipelineDepth : options.pipeline
    if (depth !== false && (typeof depth !== "number" || !Number.isInteger(depth) || depth < 1)) {
      return yield* Effect.fail(
        new InvalidPoolOptions({ pool: name, option: "pipeline", reason: `must be false or an integer >= 1, got ${String(depth)}` })
      )
    }
    const pipeline = depth === false ? undefined : yield* ldapPipeline.make(set, {
      depth,
      maxCarriers: options.pool?.maxPerIdentity ?? options.pool?.max ?? 10
    })

    const spanAttributes = { "tether.client": name }

    // For LdapTimeout's message (options are validated elsewhere: an invalid timeout leaves it unknown).
    const timeoutMillis = ((): number | undefined => {
      try {
        return Validation.millis(options.timeout, 10_000)
      } catch {
        return undefined
      }
    })()
    // Binary attribute types per endpoint, read once from its schema (a failed read is retried on the next search).
    const userBinary = (options.binaryAttributes ?? []).map((a) => a.toLowerCase())
    const fallbackBinary: ReadonlySet<string> = new Set([...WELL_KNOWN_BINARY, ...userBinary])
    const schemas = new Map<string, Promise<ReadonlySet<string>>>()
    /** The types already read, per endpoint: a search need not wait a promise's turn for them. */
    const loaded = new Map<string, ReadonlySet<string>>()
    const binaryTypes = (connection: LdapConnection): Promise<ReadonlySet<string>> => {
      if (options.readSchema === false) return Promise.resolve(fallbackBinary)
      let known = schemas.get(connection.endpoint)
      if (known === undefined) {
        const endpoint = connection.endpoint
        known = loadBinaryTypes(connection.client).then(
          (types): ReadonlySet<string> => {
            const set = new Set([...types, ...userBinary])
            // Only while it is still the endpoint's current read.
            if (schemas.get(endpoint) === known) loaded.set(endpoint, set)
            return set
          },
          (cause: unknown): ReadonlySet<string> => {
            // Refused by the server (e.g. no access to the subschema): the built-in list, for good.
            // Anything else (a broken connection): try again on the next search.
            const refused = typeof cause === "object" && cause !== null && typeof (cause as { code?: unknown }).code === "number"
            if (!refused) schemas.delete(endpoint)
            else if (schemas.get(endpoint) === known) loaded.set(endpoint, fallbackBinary)
            return fallbackBinary
          }
        )
        schemas.set(connection.endpoint, known)
      }
      return known
    }

    // Root DSEs per endpoint, read when a control is first checked there (a failed read is not kept).
    const rootDses = new Map<string, Promise<RootDse.RootDse>>()
    const rootDseOf = (connection: LdapConnection): Promise<RootDse.RootDse> => {
      let known = rootDses.get(connection.endpoint)
      if (known === undefined) {
        known = rootDseWire.read(connection.client, connection.endpoint, false).then((d) => d.rootDse)
        known.catch(() => rootDses.delete(connection.endpoint))
        rootDses.set(connection.endpoint, known)
      }
      return known
    }

    /** One search's pages as items, on a borrowed connection. */
    const searchOn = (
      client: Client,
      connection: LdapConnection,
      base: string,
      request: wire.SearchRequestOptions
    ): AsyncGenerator<ReadonlyArray<LdapClient.SearchItem>> =>
      (async function*() {
        const binary = await binaryTypes(connection)
        for await (const page of wire.searchPages(client, base, request)) {
          const items: Array<LdapClient.SearchItem> = page.entries.map((e) => ({ _tag: "Entry", entry: toEntry(e, binary) }))
          if (page.references.length > 0) items.push({ _tag: "Reference", uris: page.references })
          if (page.truncated !== undefined && request.limitsAsTruncation) items.push({ _tag: "Truncated", reason: page.truncated })
          yield items
        }
      })()

    const operations = <R>(key: Context.Key<R, Identity.Credentials> | undefined): LdapClient.Operations<R> => {
      const view = set.as(key)
      /**
       * Runs one operation. `sharing`: "shared" operations of the default
       * identity are pipelined (see ldapPipeline.ts), "paged" ones too but one
       * per connection, "exclusive" ones always borrow a connection of their own.
       */
      const use = <A>(
        operation: string,
        f: (connection: LdapConnection) => Promise<A>,
        write: boolean,
        sharing: "shared" | "paged" | "exclusive" = "shared"
      ): Effect.Effect<A, LdapClient.LdapClientError, R> => {
        const run = (connection: LdapConnection) => LdapDriver.attempt(connection, operation, () => f(connection))
        const useOptions = { mode: write ? "write" as const : "read" as const, idempotent: !write, operation }
        const own = view.use(run, useOptions)
        const effect = key === undefined && pipeline !== undefined && sharing !== "exclusive"
          ? pipeline.run(operation, f, { write, paging: sharing === "paged" }, own)
          : own
        // The operation's span, when a tracing backend is installed (Effect's in-memory native tracer shows it to nobody).
        return Effect.withFiber((fiber) =>
          fiber.getRef(Tracer.Tracer) === Tracer.nativeTracer
            ? effect
            : Effect.withSpan(effect, `tether.ldap.${operation}`, { attributes: spanAttributes, captureStackTrace: false })
        )
      }

      const itemStream = <X>(
        base: string,
        request: wire.SearchRequestOptions,
        select: (items: ReadonlyArray<LdapClient.SearchItem>) => ReadonlyArray<X>
      ) => {
        const f = (connection: LdapConnection) =>
          Stream.fromAsyncIterable(
            searchOn(connection.client, connection, base, request),
            (cause) => fromUnknown(cause, { endpoint: connection.endpoint, operation: "search", timeoutMillis })
          ).pipe(Stream.flatMap((items) => Stream.fromIterable(select(items))))
        const useOptions = { mode: "read" as const, idempotent: true }
        return view.useStream(f, useOptions)
      }

      const search = (base: string, searchOptions?: LdapClient.SearchOptions) =>
        itemStream(base, toRequest(searchOptions, false), (items) => items.flatMap((i) => (i._tag === "Entry" ? [i.entry] : [])))

      // Collected in one borrow: unlike a stream, the whole search fails over and is retried.
      // A plain loop (no async generators): one promise turn per page, not several per entry.
      const collect = (base: string, request: wire.SearchRequestOptions) =>
        use("search", async (connection): Promise<LdapClient.SearchResult> => {
          const binary = loaded.get(connection.endpoint) ?? await binaryTypes(connection)
          const entries: Array<LdapClient.Entry> = []
          const references: Array<string> = []
          let truncated: LdapClient.Truncation | undefined
          await wire.forEachPage(connection.client, base, request, (page) => {
            for (const e of page.entries) entries.push(toEntry(e, binary))
            if (page.references.length > 0) references.push(...page.references)
            if (page.truncated !== undefined && request.limitsAsTruncation) truncated = page.truncated
          })
          return { entries, references, truncated }
        }, false, request.pageSize > 0 ? "paged" : "shared")

      const searchAll = (base: string, searchOptions?: LdapClient.SearchOptions) =>
        Effect.map(collect(base, toRequest(searchOptions, false)), (r) => r.entries)

      const add = (dn: string, attributes: { readonly [type: string]: string | ReadonlyArray<string> }) =>
        use("add", ({ client }) =>
          client.add(
            dn,
            Object.entries(attributes).map(([type, v]) => new Attribute({ type, values: typeof v === "string" ? [v] : [...v] }))
          ), true)

      const remove = (dn: string, controls?: Array<Control>) => use("delete", ({ client }) => client.del(dn, controls), true)

      /** Adds an entry: binary values are sent as bytes. */
      const addEntry = (dn: string, attributes: Ldif.Attributes, controls?: Array<Control>) =>
        use("add", ({ client }) =>
          client.add(
            dn,
            [...attributes].map(([type, values]) => new Attribute({ type, values: ldaptsValues(values) })),
            controls
          ), true)

      /** Applies one LDIF record. */
      const applyRecord = (record: Ldif.LdifRecord, onExists: LdapClient.OnExists) => {
        const controls = record._tag === "Entry" ? undefined : toControls(record.controls)
        switch (record._tag) {
          case "Entry":
          case "Add":
            return addEntry(record.dn, record.attributes, controls).pipe(
              Effect.as("done" as const),
              Effect.catch((error) => {
                if (!isAlreadyExists(error) || onExists === "fail") return Effect.fail(error)
                if (onExists === "skip") return Effect.succeed("skipped" as const)
                return Effect.as(Effect.andThen(remove(record.dn), addEntry(record.dn, record.attributes, controls)), "done" as const)
              })
            )
          case "Delete":
            return Effect.as(remove(record.dn, controls), "done" as const)
          case "Modify":
            return Effect.as(
              use("modify", ({ client }) => client.modify(record.dn, record.changes.map(toChange), controls), true),
              "done" as const
            )
          case "ModRdn":
            return Effect.as(
              use("modifyDN", ({ client }) =>
                wire.modifyDN(client, {
                  dn: record.dn,
                  newRdn: record.newRdn,
                  deleteOldRdn: record.deleteOldRdn,
                  newSuperior: record.newSuperior,
                  controls
                }), true),
              "done" as const
            )
        }
      }

      const importLdif: LdapClient.Operations<R>["importLdif"] = (records, bulkOptions) =>
        bulk.run(records, (record) => applyRecord(record, bulkOptions?.onExists ?? "fail"), bulkOptions)

      const addMany: LdapClient.Operations<R>["addMany"] = (entries, bulkOptions) =>
        importLdif(Stream.map(entries, (entry): Ldif.LdifRecord => toLdifEntry(entry)), bulkOptions)

      const withControls = (controls: ReadonlyArray<RequestControl.RequestControl>): LdapClient.ControlledOperations<R> =>
        controlled.operations({ use, rootDseOf, binaryTypes, toEntry, toChange, ldaptsValues, toRequest, isNoSuchObject }, controls)

      return {
        withControls,
        search,
        searchItems: (base, searchOptions) => itemStream(base, toRequest(searchOptions, true), (items) => items),
        searchWithInfo: (base, searchOptions) => collect(base, toRequest(searchOptions, true)),
        searchAll,
        get: (dn, attributes) =>
          searchAll(dn, { scope: "base", pageSize: 0, ...(attributes === undefined ? {} : { attributes }) }).pipe(
            Effect.map((entries) => Option.fromNullishOr(entries[0])),
            Effect.catchIf(isNoSuchObject, () => Effect.succeed(Option.none()))
          ) as Effect.Effect<Option.Option<LdapClient.Entry>, LdapClient.LdapClientError, R>,
        add,
        modify: (dn, changes) => use("modify", ({ client }) => client.modify(dn, changes.map(toChange)), true),
        delete: (dn) => remove(dn),
        modifyDN: (dn, newDn) => use("modifyDN", ({ client }) => client.modifyDN(dn, newDn), true),
        compare: (dn, attribute, value) => use("compare", ({ client }) => client.compare(dn, attribute, value), false),
        whoami: use("whoami", ({ client }) => client.exop(LdapDriver.WHO_AM_I).then((r) => r.value ?? ""), false),
        // An extended operation may change state: treated as a write (never replayed).
        exop: (oid, value) =>
          use("exop", ({ client, endpoint }) =>
            client.exop(oid, typeof value === "string" || value === undefined ? value : Buffer.from(value)).catch((cause: unknown) => {
              // A Password Modify refused as "unwilling" (53) is the answer (wrong old password, policy), not an
              // overloaded server: never retried elsewhere, never counted by the breaker.
              if (oid === PASSWORD_MODIFY && (cause as { code?: unknown })?.code === 53) {
                throw new LdapOperationError({
                  endpoint,
                  operation: "passwordModify",
                  kind: "other",
                  resultCode: 53,
                  reason: cause instanceof Error ? cause.message : String(cause)
                })
              }
              throw cause
            }), true, "exclusive"),
        addMany,
        modifyMany: (modifications, bulkOptions) =>
          importLdif(Stream.map(modifications, (m): Ldif.LdifRecord => ({ _tag: "Modify", dn: m.dn, changes: m.changes })), bulkOptions),
        importLdif
      }
    }

    const rootDse: Effect.Effect<RootDse.RootDse, LdapClient.LdapClientError> = set.as().use(
      (connection) => LdapDriver.attempt(connection, "search", () => rootDseOf(connection)),
      { mode: "read", idempotent: true }
    )

    return {
      ...operations<never>(undefined),
      as: (key) => operations(key),
      rootDse,
      status: set.status,
      balancerChanges: set.balancerChanges,
      reconfigure: set.reconfigure
    }
  })

/** An `Entry` as an LDIF entry record. */
export const toLdifEntry = (entry: LdapClient.Entry): Ldif.LdifRecord => ({
  _tag: "Entry",
  dn: entry.dn,
  attributes: new Map(Object.entries(entry.attributes).map(([t, v]) => [t, [...v]] as const))
})
