/**
 * `LdapClient`: LDAP through a Tether `ServerSet` — pooled connections bound
 * per identity, failover, breakers, typed errors, streaming paged search and
 * bulk operations.
 *
 * It runs past 400 lines because it is the client's documented public surface (every
 * operation, option and result type): half of it is doc comments, and it holds no logic
 * (`internal/ldapClient.ts` does).
 *
 * @example
 * ```ts
 * import { Filter, LdapClient } from "@tether/ldap"
 * import { Effect, Redacted, Stream } from "effect"
 *
 * const Live = LdapClient.layer({
 *   endpoints: ["ldaps://ldap1:636", "ldaps://ldap2:636"],
 *   bindDn: "cn=app,dc=example,dc=com",
 *   password: Redacted.make(process.env.LDAP_PASSWORD!)
 * })
 *
 * const people = (name: string) =>
 *   Effect.gen(function*() {
 *     const ldap = yield* LdapClient.LdapClient
 *     return yield* ldap.searchAll("ou=people,dc=example,dc=com", { filter: Filter.filter`(cn=${name}*)` })
 *   })
 * ```
 *
 * @since 0.1.0
 */
import type { Balancer, ClientOptions, Endpoint, Identity, InvalidPoolOptions, ServerSet } from "@tether/core"
import { Context, Layer } from "effect"
import type { Duration, Effect, Option, Redacted, Scope, Stream } from "effect"
import type * as tls from "node:tls"
import * as internal from "./internal/ldapClient.ts"
import type * as Ldif from "./Ldif.ts"
import type { LdapError } from "./LdapError.ts"
import type { LdapPasswordPolicyError } from "./PasswordPolicy.ts"
import type { RequestControl, ResponseControls } from "./RequestControl.ts"
import type { LdapUnsupported, RootDse } from "./RootDse.ts"
import type * as Sasl from "./Sasl.ts"

/**
 * An entry: its DN and attribute values. Values of binary attributes are
 * bytes (`Uint8Array`): attributes whose syntax in the server's schema is
 * binary (Octet String, JPEG, Certificate, Certificate List/Pair, Binary,
 * Audio, Fax, Supported Algorithm — `userPassword` is Octet String), any
 * `;binary` attribute and the client's `binaryAttributes`. Other values are
 * strings; a value that is not valid UTF-8 is returned as bytes, never
 * altered.
 *
 * @since 0.1.0
 * @category models
 */
export interface Entry {
  readonly dn: string
  readonly attributes: { readonly [type: string]: ReadonlyArray<string | Uint8Array> }
}

/**
 * Options of a search.
 *
 * @since 0.1.0
 * @category models
 */
export interface SearchOptions {
  /** Default `sub`. */
  readonly scope?: "base" | "one" | "sub" | "children" | undefined
  /** Default `(objectClass=*)`. Build it with `Filter.filter` when it holds user input. */
  readonly filter?: string | undefined
  /** Attributes to return (default: all user attributes). */
  readonly attributes?: ReadonlyArray<string> | undefined
  /** Page size of the paged-results control (default 500; 0 turns paging off). */
  readonly pageSize?: number | undefined
  /** Server-side limits (0: none). */
  readonly sizeLimit?: number | undefined
  readonly timeLimit?: number | undefined
}

/**
 * One modification of `modify` (`increment`: RFC 4525, one integer value).
 *
 * @since 0.1.0
 * @category models
 */
export interface Change {
  readonly operation: "add" | "delete" | "replace" | "increment"
  readonly attribute: string
  readonly values: ReadonlyArray<string | Uint8Array>
}

/**
 * Why the server stopped a search early: its size limit, its time limit, or
 * an administrative limit (result codes 4, 3, 11).
 *
 * @since 0.2.0
 * @category models
 */
export type Truncation = "sizeLimit" | "timeLimit" | "adminLimit"

/**
 * What `searchItems` streams: entries, search references (continuation
 * URIs, RFC 4511 4.5.3) as they come, and, last, a `Truncated` item when the
 * server cut the search short.
 *
 * @since 0.2.0
 * @category models
 */
export type SearchItem =
  | { readonly _tag: "Entry"; readonly entry: Entry }
  | { readonly _tag: "Reference"; readonly uris: ReadonlyArray<string> }
  | { readonly _tag: "Truncated"; readonly reason: Truncation }

/**
 * What `searchWithInfo` returns: the entries, the references, and whether
 * (and why) the result is incomplete.
 *
 * @since 0.2.0
 * @category models
 */
export interface SearchResult {
  readonly entries: ReadonlyArray<Entry>
  readonly references: ReadonlyArray<string>
  /** `undefined`: the result is complete. */
  readonly truncated: Truncation | undefined
}

/**
 * What to do when `addMany` meets an entry that exists already.
 *
 * @since 0.1.0
 * @category models
 */
export type OnExists = "fail" | "skip" | "replace"

/**
 * A record a bulk operation could not apply: its DN (`""` when the record
 * was too broken to name one), its first line in the LDIF input (when it was
 * parsed from LDIF) and the typed reason — an LDAP error, or the LDIF error
 * of a record that could not be parsed.
 *
 * @since 0.2.0
 * @category models
 */
export interface BulkFailure {
  readonly dn: string
  readonly line?: number | undefined
  readonly error: LdapClientError | Ldif.LdifRecordError
}

/**
 * The outcome of a bulk operation: every input record is in exactly one of
 * `done`, `skipped` or `failed` (with its typed error).
 *
 * @since 0.1.0
 * @category models
 */
export interface BulkReport {
  readonly done: number
  readonly skipped: number
  readonly failed: ReadonlyArray<BulkFailure>
}

/**
 * Progress of a bulk operation, given to `onProgress` at least once a second
 * (on the Effect `Clock`) and once at the end (`finished: true`).
 *
 * @since 0.2.0
 * @category models
 */
export interface Progress {
  readonly done: number
  readonly skipped: number
  readonly failed: number
  /** Records read from the input so far (finished or in flight). */
  readonly seen: number
  /** Finished records per second since the start. */
  readonly ratePerSecond: number
  readonly elapsedMillis: number
  readonly finished: boolean
}

/**
 * Options of the bulk operations.
 *
 * @since 0.2.0
 * @category models
 */
export interface BulkOptions {
  /** Records applied at once (default 8). A record waits for an earlier record on its DN and for its parent's add. */
  readonly concurrency?: number | undefined
  readonly onProgress?: ((progress: Progress) => Effect.Effect<void>) | undefined
}

/**
 * Everything an operation can fail with.
 *
 * @since 0.1.0
 * @category models
 */
export type LdapClientError = ServerSet.UseError<LdapError>

/**
 * What an operation with request controls can fail with: the usual errors,
 * `LdapUnsupported` (a control the server does not advertise; nothing was
 * sent) and `LdapPasswordPolicyError` (the password policy refused it).
 *
 * @since 0.3.0
 * @category models
 */
export type ControlError = LdapClientError | LdapUnsupported | LdapPasswordPolicyError

/**
 * The operations of `withControls`: the request controls go with every
 * request, the typed response controls come back with the result. Searches
 * are collected (sorting needs the whole result).
 *
 * @since 0.3.0
 * @category models
 */
export interface ControlledOperations<R> {
  readonly search: (
    base: string,
    options?: SearchOptions
  ) => Effect.Effect<SearchResult & { readonly controls: ResponseControls }, ControlError, R>
  readonly get: (
    dn: string,
    attributes?: ReadonlyArray<string>
  ) => Effect.Effect<{ readonly entry: Option.Option<Entry>; readonly controls: ResponseControls }, ControlError, R>
  readonly add: (
    dn: string,
    attributes: { readonly [type: string]: string | ReadonlyArray<string | Uint8Array> }
  ) => Effect.Effect<ResponseControls, ControlError, R>
  readonly modify: (dn: string, changes: ReadonlyArray<Change>) => Effect.Effect<ResponseControls, ControlError, R>
  readonly delete: (dn: string) => Effect.Effect<ResponseControls, ControlError, R>
  readonly modifyDN: (dn: string, newDn: string) => Effect.Effect<ResponseControls, ControlError, R>
  readonly compare: (
    dn: string,
    attribute: string,
    value: string
  ) => Effect.Effect<{ readonly matched: boolean; readonly controls: ResponseControls }, ControlError, R>
}

/**
 * The operations, as the default identity (`R = never`) or as an identity.
 *
 * @since 0.1.0
 * @category models
 */
export interface Operations<R> {
  /** Searches, streaming entries page by page: the first entry arrives before the search ends. */
  readonly search: (base: string, options?: SearchOptions) => Stream.Stream<Entry, LdapClientError, R>
  /**
   * Searches, streaming entries, search references and, last, a `Truncated`
   * item when the server cut the search short (size, time or admin limit:
   * a truncation is not an error here).
   */
  readonly searchItems: (base: string, options?: SearchOptions) => Stream.Stream<SearchItem, LdapClientError, R>
  /** Searches and collects entries and references, saying whether the server cut the result short. */
  readonly searchWithInfo: (base: string, options?: SearchOptions) => Effect.Effect<SearchResult, LdapClientError, R>
  /** Searches and collects every entry. */
  readonly searchAll: (base: string, options?: SearchOptions) => Effect.Effect<ReadonlyArray<Entry>, LdapClientError, R>
  /** The entry at `dn`, if it exists. */
  readonly get: (
    dn: string,
    attributes?: ReadonlyArray<string>
  ) => Effect.Effect<Option.Option<Entry>, LdapClientError, R>
  readonly add: (
    dn: string,
    attributes: { readonly [type: string]: string | ReadonlyArray<string> }
  ) => Effect.Effect<void, LdapClientError, R>
  readonly modify: (dn: string, changes: ReadonlyArray<Change>) => Effect.Effect<void, LdapClientError, R>
  readonly delete: (dn: string) => Effect.Effect<void, LdapClientError, R>
  readonly modifyDN: (dn: string, newDn: string) => Effect.Effect<void, LdapClientError, R>
  readonly compare: (dn: string, attribute: string, value: string) => Effect.Effect<boolean, LdapClientError, R>
  /** Whom the server sees: `dn:…` (or `""` when anonymous). */
  readonly whoami: Effect.Effect<string, LdapClientError, R>
  /**
   * The same single-entry operations and search, with request controls
   * (`RequestControl.sort`, `assertion`, `postRead`, …) and typed response
   * controls. Each control is checked against the root DSE of the server the
   * operation runs on (read once per endpoint).
   */
  readonly withControls: (controls: ReadonlyArray<RequestControl>) => ControlledOperations<R>
  /**
   * Any extended operation; its value as text or BER bytes (e.g. a Password
   * Modify request: `PasswordModify.exopValue`).
   */
  readonly exop: (
    oid: string,
    value?: string | Uint8Array
  ) => Effect.Effect<{ readonly oid?: string | undefined; readonly value?: string | undefined }, LdapClientError, R>
  /**
   * Adds every entry of a stream, `concurrency` at a time (default 8). Nothing
   * is dropped: each entry is done, skipped (`onExists: "skip"`) or failed
   * with its typed error in the report. `onExists: "replace"` deletes and
   * re-adds an existing entry.
   */
  readonly addMany: <E2, R2>(
    entries: Stream.Stream<Entry, E2, R2>,
    options?: BulkOptions & { readonly onExists?: OnExists | undefined }
  ) => Effect.Effect<BulkReport, E2, R | R2>
  /**
   * Applies every modification of a stream, `concurrency` at a time (default
   * 8). Nothing is dropped: each is done or failed with its typed error in
   * the report.
   */
  readonly modifyMany: <E2, R2>(
    modifications: Stream.Stream<{ readonly dn: string; readonly changes: ReadonlyArray<Change> }, E2, R2>,
    options?: BulkOptions
  ) => Effect.Effect<BulkReport, E2, R | R2>
  /**
   * Applies LDIF records, like `ldapadd -c` / `ldapmodify -c`: entries and
   * adds are added (with `onExists`), modify (with `increment`), delete and
   * modrdn (honouring `deleteoldrdn: 0`) records applied with their
   * `control:` lines, `concurrency` at a time (default 8). Never aborts on
   * one bad record: give it `Ldif.parseFile(path, { keepGoing: true })` and
   * records that do not parse are in the report too, with their line. A
   * record waits for an earlier record on the same DN and for the add of its
   * parent (or new superior) when that is earlier in the input, so
   * parent-before-child files import completely at any concurrency. Memory
   * stays flat: records are read as they are applied.
   */
  readonly importLdif: <E2, R2>(
    records: Stream.Stream<Ldif.LdifRecord | Ldif.LdifRecordError, E2, R2>,
    options?: BulkOptions & { readonly onExists?: OnExists | undefined }
  ) => Effect.Effect<BulkReport, E2, R | R2>
}

/**
 * The client.
 *
 * @since 0.1.0
 * @category models
 */
export interface LdapClient extends Operations<never> {
  /** The same operations on connections bound as the identity `key` holds. */
  readonly as: <I>(key: Context.Key<I, Identity.Credentials>) => Operations<I>
  /** The root DSE of a server of the set (read once per endpoint, then cached). */
  readonly rootDse: Effect.Effect<RootDse, LdapClientError>
  /** Every server's health, breaker and pool. */
  readonly status: Effect.Effect<ServerSet.Status>
  /**
   * The balancer's published state of the set behind {@link status}, then each
   * health, breaker, role, fence, drain, weight or strategy change (see
   * `ServerSet.balancerChanges`); the observe monitor pushes them to the dashboard.
   */
  readonly balancerChanges: Stream.Stream<Balancer.Snapshot>
  /**
   * Steers the client while it runs: drain, enable, add or remove servers,
   * weights, pool limits, breaker thresholds, strategy, or `apply` a whole
   * new configuration (see `ServerSet.Reconfigure`). No operation fails for it.
   */
  readonly reconfigure: ServerSet.Reconfigure
}

/**
 * Options of {@link make} and {@link layer}: the options of every
 * `ServerSet`-backed client (`ClientOptions`), with these meanings and
 * defaults for LDAP —
 * - `name`: names the client in logs, metrics and spans. Default `ldap`.
 * - `endpoints`: `ldap://` or `ldaps://` URLs, or endpoint definitions.
 * - `connectTimeout`: default 5 seconds.
 * - `strategy`, `pool`, `breaker`, `retry`: as `ServerSet.Options`.
 * - `health`: health probes (Who am I?). Default every 5 seconds.
 *
 * — and LDAP's own below.
 *
 * @since 0.1.0
 * @category models
 */
export interface Options extends ClientOptions.ClientOptions {
  /** The default identity (service account); none: anonymous. */
  readonly bindDn?: string | undefined
  readonly password?: Redacted.Redacted<string> | undefined
  /** The default identity binds with SASL instead (`Sasl.credentials("SCRAM-SHA-256", …)`); excludes `bindDn`. */
  readonly sasl?: Sasl.Credentials | undefined
  readonly startTls?: boolean | undefined
  /**
   * Accept sending passwords over plain `ldap://` without StartTLS (loopback,
   * a trusted tunnel). Default `false`: it is logged once per endpoint at WARN.
   */
  readonly allowPlaintext?: boolean | undefined
  /** TLS options: `ca`, `cert`, `key`, `servername`; `rejectUnauthorized: false` must be explicit (and is logged). */
  readonly tls?: tls.ConnectionOptions | undefined
  /** Bound on every operation. Default 10 seconds. */
  readonly timeout?: Duration.Input | undefined
  /**
   * Pipelining: how many operations of the default identity may be
   * outstanding on one connection at once (LDAP message ids multiplex them).
   * Default 8. Binds, StartTLS, extended operations, streams, operations
   * `as` another identity and concurrent paged searches always get a
   * connection of their own. `false`: every operation borrows its own.
   */
  readonly pipeline?: number | false | undefined
  /** Attributes whose values are always bytes, on top of the schema's binary ones and `;binary`. */
  readonly binaryAttributes?: ReadonlyArray<string> | undefined
  /**
   * Read the binary attributes from each server's schema (subschema
   * subentry, once per endpoint; default `true`). `false`: only
   * `binaryAttributes`, `;binary` and a built-in list (jpegPhoto,
   * userCertificate, objectGUID, …).
   */
  readonly readSchema?: boolean | undefined
}

/**
 * The `LdapClient` service.
 *
 * @since 0.1.0
 * @category services
 */
export const LdapClient: Context.Service<LdapClient, LdapClient> = Context.Service<LdapClient>("@tether/ldap/LdapClient")

/**
 * Starts a client in the current scope.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make: (
  options: Options
) => Effect.Effect<LdapClient, Endpoint.InvalidEndpoint | InvalidPoolOptions, Scope.Scope> = internal.make

/**
 * A `Layer` of {@link LdapClient}.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (options: Options): Layer.Layer<LdapClient, Endpoint.InvalidEndpoint | InvalidPoolOptions> =>
  Layer.effect(LdapClient, make(options))
