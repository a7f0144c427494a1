/**
 * Change streams: the changes under a base DN as an Effect `Stream` of
 * typed events (add, modify, modDN, delete), from the LDAP Content
 * Synchronization operation (RFC 4533 syncrepl, refreshAndPersist; OpenLDAP
 * `syncprov`). OpenLDAP has no persistent-search control (psearch,
 * 2.16.840.1.113730.3.4.3): syncrepl is what it offers, and the stream
 * refuses a server without it with `LdapUnsupported`.
 *
 * **Failover**: when the connection breaks, the stream reconnects — to the
 * next endpoint first — and resumes from the last sync cookie, then emits a
 * `Connected` event with `resumed: true`. Delivery is at least once: a
 * change the server had sent before the break may be sent again after the
 * resume (as an `Add` or `Modify` of the same `uuid`), and deletes that
 * happened while disconnected arrive as `Delete` events computed from the
 * server's delete/present sets (with `dn` when the stream had seen the
 * entry). Dedupe by `uuid` + content if that matters. Keep `cookie` of the
 * last processed event to resume after a restart of your process.
 *
 * **Buffering** is bounded (`bufferSize`, default 1024 events): a consumer
 * that falls that far behind fails the stream with
 * {@link LdapChangeStreamOverflow} (nothing is dropped silently); resume it
 * from the last cookie.
 *
 * Operations on the stream's connection have no timeout (the search never
 * ends); a hung server (SIGSTOP, a dead network path without a reset) is
 * noticed only by TCP — broken connections (crash, restart) fail over at once.
 *
 * @example
 * ```ts
 * import { ChangeStream } from "@tether/ldap"
 * import { Effect, Redacted, Stream } from "effect"
 *
 * const program = ChangeStream.changes({
 *   endpoints: ["ldap://ldap1:389", "ldap://ldap2:389"],
 *   bindDn: "cn=admin,dc=example,dc=com",
 *   password: Redacted.make("secret"),
 *   base: "ou=people,dc=example,dc=com"
 * }).pipe(
 *   Stream.runForEach((event) => Effect.log(event._tag, event._tag === "Connected" ? event.endpoint : event.dn))
 * )
 * ```
 *
 * @since 0.3.0
 */
import type { Endpoint } from "@tether/core"
import { Cause, Data, Effect, Queue, Stream } from "effect"
import type { SearchEntry } from "ldapts"
import * as sync from "./internal/syncrepl.ts"
import { rawValues } from "./internal/ldapWire.ts"
import type { Entry } from "./LdapClient.ts"
import { fromUnknown, isBroken } from "./LdapError.ts"
import type { LdapError } from "./LdapError.ts"
import * as LdapSession from "./LdapSession.ts"
import * as RootDse from "./RootDse.ts"

/**
 * One event. `uuid` is the entry's `entryUUID`; `cookie` the sync cookie
 * after this event (`undefined` until the server sent one).
 *
 * @since 0.3.0
 * @category models
 */
export type ChangeEvent =
  /** The stream is live on `endpoint`: its refresh phase is over (changes from a resume come before it). */
  | { readonly _tag: "Connected"; readonly endpoint: string; readonly resumed: boolean }
  | { readonly _tag: "Add"; readonly dn: string; readonly uuid: string; readonly entry: Entry; readonly cookie: Uint8Array | undefined }
  | { readonly _tag: "Modify"; readonly dn: string; readonly uuid: string; readonly entry: Entry; readonly cookie: Uint8Array | undefined }
  | {
    readonly _tag: "ModDN"
    readonly previousDn: string
    readonly dn: string
    readonly uuid: string
    readonly entry: Entry
    readonly cookie: Uint8Array | undefined
  }
  | { readonly _tag: "Delete"; readonly dn: string | undefined; readonly uuid: string; readonly cookie: Uint8Array | undefined }

/**
 * The consumer fell `bufferSize` events behind: the stream stopped rather
 * than drop changes.
 *
 * @since 0.3.0
 * @category errors
 */
export class LdapChangeStreamOverflow extends Data.TaggedError("LdapChangeStreamOverflow")<{
  readonly endpoint: string
  readonly bufferSize: number
  /** Resume from here (`changes({ cookie })`) to miss nothing. */
  readonly cookie: Uint8Array | undefined
}> {
  override get message() {
    return `LDAP change stream from ${this.endpoint}: the consumer fell ${this.bufferSize} events behind; ` +
      `the stream stopped instead of dropping changes. Consume faster, raise bufferSize, or resume from the cookie.`
  }
}

/**
 * Options of {@link changes}.
 *
 * @since 0.3.0
 * @category models
 */
export interface Options extends LdapSession.Options {
  readonly base: string
  /** Default `sub`. */
  readonly scope?: "base" | "one" | "sub" | "children" | undefined
  /** Default `(objectClass=*)`. */
  readonly filter?: string | undefined
  /** Attributes of the entries in the events (default: all user attributes). */
  readonly attributes?: ReadonlyArray<string> | undefined
  /** Resume from a cookie of an earlier stream. */
  readonly cookie?: Uint8Array | undefined
  /** Without a cookie: also emit every existing entry as an `Add` first (default `false`: changes only). */
  readonly initialContent?: boolean | undefined
  /** Events buffered for a slow consumer (default 1024). */
  readonly bufferSize?: number | undefined
  /** Reconnection attempts in a row before the stream fails (default 20, 250 ms apart). */
  readonly reconnectAttempts?: number | undefined
}

const strictUtf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true })

const toEntry = (raw: SearchEntry): Entry => {
  const attributes: Record<string, Array<string | Uint8Array>> = {}
  for (const attribute of raw.attributes) {
    const values = rawValues(attribute).map((b): string | Uint8Array => {
      try {
        return strictUtf8.decode(b)
      } catch {
        return new Uint8Array(b)
      }
    })
    Object.defineProperty(attributes, attribute.type, { value: values, enumerable: true, writable: true, configurable: true })
  }
  return { dn: raw.name, attributes }
}

/**
 * The changes under `base`, as a stream (see the module's notes on failover,
 * repeats and buffering). Interrupting the stream closes its connection.
 *
 * @since 0.3.0
 * @category constructors
 */
export const changes = (
  options: Options
): Stream.Stream<ChangeEvent, LdapError | RootDse.LdapUnsupported | LdapChangeStreamOverflow | Endpoint.InvalidEndpoint> =>
  Stream.callback<ChangeEvent, LdapError | RootDse.LdapUnsupported | LdapChangeStreamOverflow | Endpoint.InvalidEndpoint>(
    (queue) =>
      Effect.gen(function*() {
        const bufferSize = options.bufferSize ?? 1024
        const known = new Map<string, string>() // uuid -> dn
        let cookie = options.cookie
        let endpoint = ""
        let stopped = false
        let connected = false
        const fail = (error: LdapChangeStreamOverflow) => {
          if (stopped) return
          stopped = true
          Queue.failCauseUnsafe(queue, Cause.fail(error))
        }
        const emit = (event: ChangeEvent) => {
          if (stopped) return
          if (!Queue.offerUnsafe(queue, event)) fail(new LdapChangeStreamOverflow({ endpoint, bufferSize, cookie }))
        }

        /** One connection's life: resolves/fails when the search ends. */
        const runOnce = (resumed: boolean, avoid: ReadonlySet<string>) =>
          Effect.scoped(Effect.gen(function*() {
            const session = yield* LdapSession.open({ ...options, timeout: 0 }, undefined, avoid)
            endpoint = session.endpoint
            const { rootDse } = yield* RootDse.read(session, { schema: false })
            yield* RootDse.require(rootDse, "syncrepl")
            connected = true
            // Without a cookie and without initialContent, the refresh phase only teaches us uuid -> dn.
            let refreshing = cookie === undefined ? options.initialContent !== true : false
            const presentSeen = new Set<string>()
            let live = false
            let presentPhase = false
            const onEntry = (raw: SearchEntry, state: sync.SyncState | undefined) => {
              if (state === undefined) return
              if (state.cookie !== undefined) cookie = state.cookie
              const previous = known.get(state.uuid)
              if (state.state === "present") {
                presentPhase = true
                presentSeen.add(state.uuid)
                return
              }
              if (state.state === "delete") {
                known.delete(state.uuid)
                if (!refreshing) emit({ _tag: "Delete", dn: raw.name || previous, uuid: state.uuid, cookie })
                return
              }
              presentSeen.add(state.uuid)
              known.set(state.uuid, raw.name)
              if (refreshing) return
              const entry = toEntry(raw)
              if (previous === undefined) emit({ _tag: "Add", dn: raw.name, uuid: state.uuid, entry, cookie })
              else if (previous.toLowerCase() !== raw.name.toLowerCase()) {
                emit({ _tag: "ModDN", previousDn: previous, dn: raw.name, uuid: state.uuid, entry, cookie })
              } else emit({ _tag: "Modify", dn: raw.name, uuid: state.uuid, entry, cookie })
            }
            const deleteUuid = (uuid: string) => {
              const dn = known.get(uuid)
              known.delete(uuid)
              emit({ _tag: "Delete", dn, uuid, cookie })
            }
            const onInfo = (info: sync.SyncInfo | undefined) => {
              if (info === undefined) return
              if (info.cookie !== undefined) cookie = info.cookie
              if (info._tag === "IdSet") {
                if (info.refreshDeletes) {
                  if (!refreshing) info.uuids.forEach(deleteUuid)
                } else {
                  presentPhase = true
                  info.uuids.forEach((u) => presentSeen.add(u))
                }
              } else if (info._tag !== "NewCookie" && info.refreshDone) {
                // End of a present phase (every entry in scope was sent as present or add, e.g. a full
                // reload on another server): what was known but not sent is gone.
                if (info._tag === "RefreshPresent" && !refreshing && (presentPhase || presentSeen.size > 0)) {
                  for (const uuid of [...known.keys()]) if (!presentSeen.has(uuid)) deleteUuid(uuid)
                }
                refreshing = false
                presentPhase = false
                if (!live) {
                  live = true
                  emit({ _tag: "Connected", endpoint, resumed })
                }
                presentSeen.clear()
              }
            }
            yield* Effect.tryPromise({
              try: () =>
                sync.run(session.connection.client, {
                  base: options.base,
                  scope: options.scope ?? "sub",
                  filter: options.filter ?? "(objectClass=*)",
                  attributes: options.attributes ?? [],
                  cookie
                }, { onEntry, onInfo }),
              catch: (cause) => fromUnknown(cause, { endpoint: session.endpoint, operation: "sync" })
            })
          }))

        const loop = Effect.gen(function*() {
          let resumed = false
          let failures = 0
          const avoid = new Set<string>()
          for (;;) {
            connected = false
            const result = yield* Effect.result(runOnce(resumed, avoid))
            if (stopped) return
            avoid.clear()
            if (connected) failures = 0
            // The server ended the search (it should not): resume there.
            if (result._tag === "Failure") {
              const error = result.failure
              const retryable = isBroken(error) || (error._tag === "LdapOperationError" && error.kind === "unavailable")
              if (!retryable || ++failures > (options.reconnectAttempts ?? 20)) {
                stopped = true
                Queue.failCauseUnsafe(queue, Cause.fail(error))
                return
              }
              // Try the other endpoints first.
              if (endpoint !== "") avoid.add(endpoint)
              yield* Effect.sleep("250 millis")
            }
            resumed = true
          }
        })
        yield* Effect.forkScoped(loop)
      }),
    { bufferSize: options.bufferSize ?? 1024, strategy: "dropping" }
  )
