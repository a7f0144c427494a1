/**
 * What ldapts's public API cannot do, done with its exported message classes
 * and its request sender:
 *
 * - ModifyDN with `deleteOldRdn: false` (`Client.modifyDN` always sends `true`);
 * - searches that report the result code (size/time limit exceeded),
 *   references, and every value's raw bytes;
 * - controls with a value (`control:` lines of LDIF) and the RFC 4525
 *   `increment` modification.
 *
 * The sender (`_ensureConnected`, `_nextMessageId`, `_send`) is private in
 * ldapts's types; it is looked up at run time and a missing one is reported
 * as an error (never a crash), so an ldapts upgrade that renames it fails
 * loudly in the tests.
 *
 * @internal
 */
import {
  Change,
  Control,
  MessageResponseStatus,
  ModifyDNRequest,
  PagedResultsControl,
  SearchRequest,
  StatusCodeParser
} from "ldapts"
import type { Attribute, BerWriter, Client, Filter, MessageResponse, SearchEntry, SearchResponse } from "ldapts"
import { FilterParser, PresenceFilter } from "ldapts"

interface Sender {
  _ensureConnected(): Promise<void>
  _nextMessageId(): number
  _send<T>(message: unknown): Promise<T | undefined>
}

const senderOf = (client: Client): Sender => {
  const s = client as unknown as Partial<Sender>
  if (typeof s._ensureConnected !== "function" || typeof s._nextMessageId !== "function" || typeof s._send !== "function") {
    throw new Error("this ldapts version does not expose its request sender (_send); Tether needs ldapts 9.x")
  }
  return s as Sender
}

/** A control with an optional value (the BER the control defines, given as bytes). */
export class ValueControl extends Control {
  constructor(oid: string, critical: boolean, readonly value: Uint8Array | undefined) {
    super(oid, { critical })
  }
  protected override writeControl(writer: BerWriter): void {
    if (this.value !== undefined) writer.writeBuffer(Buffer.from(this.value), 0x04)
  }
}

/** The RFC 4525 `increment` modification (operation 3). */
export class IncrementChange extends Change {
  override write(writer: BerWriter): void {
    writer.startSequence()
    writer.writeEnumeration(3)
    this.modification.write(writer)
    writer.endSequence()
  }
}

const check = (result: MessageResponse | undefined): void => {
  if (result?.status !== MessageResponseStatus.Success) throw StatusCodeParser.parse(result)
}

/** ModifyDN honouring `deleteOldRdn` (RFC 4511 4.9). */
export const modifyDN = async (
  client: Client,
  request: {
    readonly dn: string
    readonly newRdn: string
    readonly deleteOldRdn: boolean
    readonly newSuperior?: string | undefined
    readonly controls?: ReadonlyArray<Control> | undefined
  }
): Promise<void> => {
  const sender = senderOf(client)
  await sender._ensureConnected()
  const message = new ModifyDNRequest({
    messageId: sender._nextMessageId(),
    dn: request.dn,
    newRdn: request.newRdn,
    deleteOldRdn: request.deleteOldRdn,
    ...(request.newSuperior === undefined ? {} : { newSuperior: request.newSuperior }),
    ...(request.controls === undefined ? {} : { controls: [...request.controls] })
  })
  check(await sender._send<MessageResponse>(message))
}

/** Why a search stopped early, when the server said so. */
export type Truncation = "sizeLimit" | "timeLimit" | "adminLimit"

/** One page of a search: raw entries, references, and whether the server cut the search. */
export interface Page {
  readonly entries: ReadonlyArray<SearchEntry>
  readonly references: ReadonlyArray<string>
  readonly truncated: Truncation | undefined
}

export interface SearchRequestOptions {
  readonly scope: "base" | "one" | "sub" | "children"
  readonly filter: string
  readonly attributes?: ReadonlyArray<string> | undefined
  readonly sizeLimit?: number | undefined
  readonly timeLimit?: number | undefined
  /** 0: no paging. */
  readonly pageSize: number
  /** Limit results end the search as a truncation instead of an error. */
  readonly limitsAsTruncation: boolean
}

const truncationOf = (status: number | undefined): Truncation | undefined =>
  status === MessageResponseStatus.SizeLimitExceeded
    ? "sizeLimit"
    : status === 3
    ? "timeLimit"
    : status === 11
    ? "adminLimit"
    : undefined

/** A search in progress: its request, reused page after page. */
interface Search {
  readonly sender: Sender
  readonly request: SearchRequest
  readonly paging: PagedResultsControl | undefined
  readonly options: SearchRequestOptions
}

const start = (client: Client, base: string, options: SearchRequestOptions): Search | Promise<Search> => {
  const sender = senderOf(client)
  // Connected (the usual case): no promise turn.
  return client.isConnected ? build(sender, base, options) : sender._ensureConnected().then(() => build(sender, base, options))
}

const build = (sender: Sender, base: string, options: SearchRequestOptions): Search => {
  const filter: Filter = options.filter === "" ? new PresenceFilter({ attribute: "objectclass" }) : FilterParser.parseString(options.filter)
  const paging = options.pageSize > 0 ? new PagedResultsControl({ value: { size: options.pageSize } }) : undefined
  const request = new SearchRequest({
    messageId: -1,
    baseDN: base,
    scope: options.scope,
    filter,
    attributes: options.attributes === undefined ? [] : [...options.attributes],
    returnAttributeValues: true,
    sizeLimit: options.sizeLimit ?? 0,
    timeLimit: options.timeLimit ?? 0,
    controls: paging === undefined ? [] : [paging]
  })
  return { sender, request, paging, options }
}

/** Requests the next page; `more`: another page follows (the request now carries its cookie). */
const nextPage = async (search: Search): Promise<Page & { readonly more: boolean }> => {
  const { options, paging, request, sender } = search
  request.messageId = sender._nextMessageId()
  const response = await sender._send<SearchResponse>(request)
  const truncated = truncationOf(response?.status)
  const quiet = truncated === "sizeLimit" && (options.sizeLimit ?? 0) > 0
  if (response === undefined || (response.status !== MessageResponseStatus.Success && !(truncated !== undefined && (options.limitsAsTruncation || quiet)))) {
    check(response)
  }
  const references = response!.searchReferences.length === 0 ? [] : response!.searchReferences.flatMap((r) => r.uris)
  let cookie: Buffer | undefined
  if (paging !== undefined) {
    for (const control of response!.controls ?? []) {
      if (control instanceof PagedResultsControl) cookie = control.value?.cookie
    }
  }
  const more = truncated === undefined && paging !== undefined && cookie !== undefined && cookie.length > 0
  if (more) paging!.value = { size: options.pageSize, cookie: cookie! }
  return { entries: response!.searchEntries, references, truncated, more }
}

/**
 * A search with every page handed to `onPage` (one page when `pageSize` is
 * 0): a plain loop, for a search collected whole (no async generator: fewer
 * promise turns per search). Without `limitsAsTruncation`, a size limit the
 * caller set ends the search quietly (as ldapts does) and other limits fail it.
 */
export const forEachPage = async (
  client: Client,
  base: string,
  options: SearchRequestOptions,
  onPage: (page: Page) => void
): Promise<void> => {
  const started = start(client, base, options)
  const search = started instanceof Promise ? await started : started
  for (;;) {
    const page = await nextPage(search)
    onPage(page)
    if (!page.more) return
  }
}

/** The same search, page by page, for a stream: the next page is requested when the consumer asks for it. */
export async function* searchPages(client: Client, base: string, options: SearchRequestOptions): AsyncGenerator<Page> {
  const search = await start(client, base, options)
  for (;;) {
    const page = await nextPage(search)
    yield { entries: page.entries, references: page.references, truncated: page.truncated }
    if (!page.more) return
  }
}

/** The attribute's raw values (every value's bytes as the server sent them). */
export const rawValues = (attribute: Attribute): ReadonlyArray<Buffer> => attribute.parsedBuffers
