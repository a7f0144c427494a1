/**
 * Request controls for operations on an {@link LdapSession} (ldapts
 * `Control` objects: pass them as the last argument of the session
 * client's `search`, `add`, `modify`, `del`, `modifyDN`, `compare`, `exop`),
 * with their response values decoded:
 *
 * - `assertion(filter)` (RFC 4528): the operation applies only if the entry
 *   matches; else result code 122, assertion failed;
 * - `proxiedAuthorization(authzId)` (RFC 4370): run as another identity
 *   (`dn:…` or `u:…`); the server checks the bound identity may;
 * - `manageDsaIT()` (RFC 3296): referral objects as ordinary entries;
 * - `preRead(attributes)` / `postRead(attributes)` (RFC 4527): the entry's
 *   values before / after a write, read with `readEntry(control)`;
 * - `serverSideSort(keys)` (RFC 2891; OpenLDAP's `sssvlv` overlay): sorted
 *   search results.
 *
 * Check the server has them first: `RootDse.require(rootDse, "assertion")`.
 * For pooled operations use `ldap.withControls` with `RequestControl`
 * values instead: they are checked against the root DSE for you and their
 * responses come back typed.
 *
 * @example
 * ```ts
 * import { Controls, LdapSession } from "@tether/ldap"
 * import { Attribute, Change } from "ldapts"
 * import { Effect } from "effect"
 *
 * declare const session: LdapSession.Session
 * const before = Controls.preRead(["mail"])
 * const change = new Change({ operation: "replace", modification: new Attribute({ type: "mail", values: ["new@example.com"] }) })
 * const program = Effect.gen(function*() {
 *   const onlyIf = yield* Controls.assertion("(mail=old@example.com)")
 *   yield* Effect.promise(() => session.connection.client.modify("uid=ann,dc=example,dc=com", [change], [onlyIf, before]))
 *   return Controls.readEntry(before)
 * })
 * ```
 *
 * @since 0.3.0
 */
import { Control, FilterParser, ServerSideSortingRequestControl } from "ldapts"
import type { BerReader, BerWriter } from "ldapts"
import { BerWriter as Writer } from "ldapts"
import { Effect } from "effect"
import * as ber from "./internal/ber.ts"
import type { Entry } from "./LdapClient.ts"
import { LdapOperationError } from "./LdapError.ts"
import { FEATURES } from "./RootDse.ts"

/** A control whose value is given as bytes, and which keeps the raw value of its response. */
class RawControl extends Control {
  /** The response control's value, when the server sent one. */
  response: Uint8Array | undefined
  constructor(oid: string, critical: boolean, readonly value: Uint8Array | undefined) {
    super(oid, { critical })
  }
  protected override writeControl(writer: BerWriter): void {
    this.response = undefined
    if (this.value !== undefined) writer.writeBuffer(Buffer.from(this.value), 0x04)
  }
  protected override parseControl(reader: BerReader): void {
    this.response = new Uint8Array(reader.remainingBuffer)
  }
}

/**
 * The assertion control (RFC 4528, always critical). A filter that does not
 * parse fails with `LdapOperationError` (kind `invalid-filter`); build it
 * with `Filter.filter` when it holds user input.
 *
 * @since 0.3.0
 * @category constructors
 */
export const assertion = (filter: string): Effect.Effect<Control, LdapOperationError> =>
  Effect.try({
    try: (): Control => {
      const writer = new Writer()
      FilterParser.parseString(filter).write(writer)
      return new RawControl(FEATURES.assertion.oid, true, new Uint8Array(writer.buffer))
    },
    catch: (cause) =>
      new LdapOperationError({
        endpoint: "(none)",
        operation: "assertion",
        kind: "invalid-filter",
        resultCode: undefined,
        reason: `the assertion filter does not parse: ${cause instanceof Error ? cause.message : String(cause)}`
      })
  })

/**
 * The proxied authorization control (RFC 4370, always critical):
 * `dn:uid=ann,…`, `u:ann`, or `""` for anonymous.
 *
 * @since 0.3.0
 * @category constructors
 */
export const proxiedAuthorization = (authzId: string): Control =>
  new RawControl(FEATURES.proxiedAuthorization.oid, true, new TextEncoder().encode(authzId))

/**
 * The ManageDsaIT control (RFC 3296).
 *
 * @since 0.3.0
 * @category constructors
 */
export const manageDsaIT = (critical = true): Control => new RawControl(FEATURES.manageDsaIT.oid, critical, undefined)

const attributeSelection = (attributes: ReadonlyArray<string>) =>
  ber.constructed(0x30, attributes.map((a) => ber.primitive(0x04, a)))

/**
 * The pre-read control (RFC 4527): read the entry's `attributes` as they
 * were before the write; {@link readEntry} gives them after the operation.
 *
 * @since 0.3.0
 * @category constructors
 */
export const preRead = (attributes: ReadonlyArray<string>, critical = false): Control =>
  new RawControl(FEATURES.preRead.oid, critical, attributeSelection(attributes))

/**
 * The post-read control (RFC 4527): the entry's `attributes` after the write.
 *
 * @since 0.3.0
 * @category constructors
 */
export const postRead = (attributes: ReadonlyArray<string>, critical = false): Control =>
  new RawControl(FEATURES.postRead.oid, critical, attributeSelection(attributes))

const strictUtf8 = new TextDecoder("utf-8", { fatal: true })

/** Decodes a SearchResultEntry (RFC 4511 4.5.2), as pre/post-read responses carry one. */
export const decodeEntry = (bytes: Uint8Array): Entry | undefined => {
  const entry = ber.readOne(bytes)
  const parts = entry?.tag === 0x64 ? ber.readAll(entry.value) : undefined
  if (parts === undefined || parts.length !== 2 || parts[0]!.tag !== 0x04 || parts[1]!.tag !== 0x30) return undefined
  const attributes: Record<string, Array<string | Uint8Array>> = {}
  for (const attribute of ber.readAll(parts[1]!.value) ?? []) {
    const [type, values] = ber.readAll(attribute.value) ?? []
    if (type === undefined || values === undefined) return undefined
    const list = (ber.readAll(values.value) ?? []).map((v): string | Uint8Array => {
      try {
        return strictUtf8.decode(v.value)
      } catch {
        return new Uint8Array(v.value)
      }
    })
    Object.defineProperty(attributes, Buffer.from(type.value).toString("utf8"), {
      value: list,
      enumerable: true,
      writable: true,
      configurable: true
    })
  }
  return { dn: Buffer.from(parts[0]!.value).toString("utf8"), attributes }
}

/**
 * The entry a pre-read or post-read control brought back after its
 * operation: `undefined` if the server sent none (or it did not decode).
 *
 * @since 0.3.0
 * @category responses
 */
export const readEntry = (control: Control): Entry | undefined =>
  control instanceof RawControl && control.response !== undefined ? decodeEntry(control.response) : undefined

/**
 * One sort key of {@link serverSideSort}.
 *
 * @since 0.3.0
 * @category models
 */
export interface SortKey {
  readonly attribute: string
  readonly orderingRule?: string | undefined
  readonly reverse?: boolean | undefined
}

/**
 * The server-side sorting request control (RFC 2891). After the search,
 * `sortResult(control)` tells whether the server sorted.
 *
 * @since 0.3.0
 * @category constructors
 */
export const serverSideSort = (keys: ReadonlyArray<SortKey>, critical = true): Control =>
  new ServerSideSortingRequestControl({
    critical,
    value: keys.map((k) => ({
      attributeType: k.attribute,
      ...(k.orderingRule === undefined ? {} : { orderingRule: k.orderingRule }),
      ...(k.reverse === undefined ? {} : { reverseOrder: k.reverse })
    }))
  })

/**
 * The sort result of a {@link serverSideSort} control after its search: the
 * result code (0: sorted), or `undefined` when the server sent none.
 *
 * @since 0.3.0
 * @category responses
 */
export const sortResult = (control: Control): number | undefined =>
  control instanceof ServerSideSortingRequestControl ? control.result?.sortResult : undefined
