/**
 * The LDAP Content Synchronization operation (RFC 4533, "syncrepl") in
 * refreshAndPersist mode on an ldapts client, with what ldapts lacks:
 *
 * - entries as they arrive (ldapts collects them until the search ends,
 *   which a persistent search never does): a second listener on the
 *   client's message parser, which also empties ldapts's buffer;
 * - the Sync Info intermediate response (0x79), which ldapts's parser
 *   refuses: handled before it, on this client only;
 * - the Sync Request / Sync State / Sync Info values (BER, ./ber.ts).
 *
 * The client must be used for nothing else (an unpooled session). Private
 * ldapts members are looked up at run time; a missing one is an error.
 *
 * @internal
 */
import { Control, FilterParser, SearchReference, SearchRequest } from "ldapts"
import type { BerReader, BerWriter, Client, SearchEntry } from "ldapts"
import * as ber from "./ber.ts"

export const SYNC_REQUEST = "1.3.6.1.4.1.4203.1.9.1.1"
export const SYNC_STATE = "1.3.6.1.4.1.4203.1.9.1.2"
export const SYNC_INFO = "1.3.6.1.4.1.4203.1.9.1.4"

/** The Sync Request control (refreshAndPersist), and the receiver of each entry's Sync State control. */
class SyncRequestControl extends Control {
  /** The raw value of the last Sync State control parsed (set just before the entry is emitted). */
  lastState: Uint8Array | undefined
  constructor(readonly cookie: Uint8Array | undefined) {
    super(SYNC_REQUEST, { critical: true })
    this.responseType = SYNC_STATE
  }
  protected override writeControl(writer: BerWriter): void {
    const value = ber.constructed(0x30, [
      ber.primitive(0x0a, Uint8Array.of(3)), // refreshAndPersist
      ...(this.cookie === undefined ? [] : [ber.primitive(0x04, this.cookie)])
    ])
    writer.writeBuffer(Buffer.from(value), 0x04)
  }
  protected override parseControl(reader: BerReader): void {
    this.lastState = new Uint8Array(reader.remainingBuffer)
  }
}

export type State = "present" | "add" | "modify" | "delete"
const STATES: ReadonlyArray<State> = ["present", "add", "modify", "delete"]

export interface SyncState {
  readonly state: State
  readonly uuid: string
  readonly cookie: Uint8Array | undefined
}

const uuidOf = (bytes: Uint8Array) => {
  const h = Buffer.from(bytes).toString("hex")
  return h.length === 32 ? `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}` : h
}

export const decodeSyncState = (value: Uint8Array): SyncState | undefined => {
  const seq = ber.readOne(value)
  const items = seq?.tag === 0x30 ? ber.readAll(seq.value) : undefined
  if (items === undefined || items.length < 2 || items[0]!.tag !== 0x0a || items[1]!.tag !== 0x04) return undefined
  const state = STATES[ber.decodeInteger(items[0]!.value) ?? -1]
  if (state === undefined) return undefined
  const cookie = items[2]?.tag === 0x04 ? items[2].value : undefined
  return { state, uuid: uuidOf(items[1]!.value), cookie: cookie === undefined ? undefined : new Uint8Array(cookie) }
}

export type SyncInfo =
  | { readonly _tag: "NewCookie"; readonly cookie: Uint8Array }
  | { readonly _tag: "RefreshDelete" | "RefreshPresent"; readonly cookie: Uint8Array | undefined; readonly refreshDone: boolean }
  | { readonly _tag: "IdSet"; readonly cookie: Uint8Array | undefined; readonly refreshDeletes: boolean; readonly uuids: ReadonlyArray<string> }

export const decodeSyncInfo = (value: Uint8Array): SyncInfo | undefined => {
  const choice = ber.readOne(value)
  if (choice === undefined) return undefined
  if (choice.tag === 0x80) return { _tag: "NewCookie", cookie: new Uint8Array(choice.value) }
  const items = ber.readAll(choice.value)
  if (items === undefined) return undefined
  const cookieItem = items.find((i) => i.tag === 0x04)
  const cookie = cookieItem === undefined ? undefined : new Uint8Array(cookieItem.value)
  const flag = items.find((i) => i.tag === 0x01)
  if (choice.tag === 0xa1 || choice.tag === 0xa2) {
    return {
      _tag: choice.tag === 0xa1 ? "RefreshDelete" : "RefreshPresent",
      cookie,
      refreshDone: flag === undefined ? true : flag.value[0] !== 0
    }
  }
  if (choice.tag === 0xa3) {
    const set = items.find((i) => i.tag === 0x31)
    const uuids = set === undefined ? [] : (ber.readAll(set.value) ?? []).map((u) => uuidOf(u.value))
    return { _tag: "IdSet", cookie, refreshDeletes: flag === undefined ? false : flag.value[0] !== 0, uuids }
  }
  return undefined
}

interface Internals {
  messageParser: {
    _getMessageFromProtocolOperation: (id: number, op: number, reader: BerReader, details: unknown) => unknown
    on(event: "message", listener: (message: unknown) => void): void
    off(event: "message", listener: (message: unknown) => void): void
  }
  messageDetailsByMessageId: Map<string, { searchEntries?: Array<unknown>; searchReferences?: Array<unknown> }>
  _ensureConnected(): Promise<void>
  _nextMessageId(): number
  _send<T>(message: unknown): Promise<T | undefined>
}

const internalsOf = (client: Client): Internals => {
  const c = client as unknown as Partial<Internals>
  if (
    typeof c.messageParser?._getMessageFromProtocolOperation !== "function" || !(c.messageDetailsByMessageId instanceof Map) ||
    typeof c._send !== "function" || typeof c._nextMessageId !== "function" || typeof c._ensureConnected !== "function"
  ) {
    throw new Error("this ldapts version does not expose its message parser; Tether's change streams need ldapts 9.x")
  }
  return c as Internals
}

export interface Handlers {
  readonly onEntry: (entry: SearchEntry, state: SyncState | undefined) => void
  readonly onInfo: (info: SyncInfo | undefined) => void
}

/**
 * Runs a refreshAndPersist search. Resolves when the server ends it (it
 * normally does not), rejects when it fails or the connection breaks.
 */
export const run = async (
  client: Client,
  request: {
    readonly base: string
    readonly scope: "base" | "one" | "sub" | "children"
    readonly filter: string
    readonly attributes: ReadonlyArray<string>
    readonly cookie: Uint8Array | undefined
  },
  handlers: Handlers
): Promise<void> => {
  const internals = internalsOf(client)
  await internals._ensureConnected()
  const control = new SyncRequestControl(request.cookie)
  const messageId = internals._nextMessageId()
  const parser = internals.messageParser
  const original = parser._getMessageFromProtocolOperation
  parser._getMessageFromProtocolOperation = (id, op, reader, details) => {
    if (op !== 0x79 || id !== messageId) return original.call(parser, id, op, reader, details)
    // IntermediateResponse ::= [APPLICATION 25] SEQUENCE { responseName [0] OPTIONAL, responseValue [1] OPTIONAL }
    const end = reader.offset + reader.length
    let name: string | undefined
    let value: Uint8Array | undefined
    while (reader.offset < end) {
      const tag = reader.peek()
      if (tag === 0x80) name = reader.readString(0x80) ?? undefined
      else if (tag === 0x81) value = new Uint8Array(reader.readString(0x81, true) ?? Buffer.alloc(0))
      else break
    }
    if (name === SYNC_INFO) handlers.onInfo(value === undefined ? undefined : decodeSyncInfo(value))
    // Handed to ldapts as an empty search reference (dropped by the listener below).
    return new SearchReference({ messageId: id, uris: [] })
  }
  const listener = (message: unknown) => {
    const details = internals.messageDetailsByMessageId.get(String(messageId))
    if (details !== undefined) {
      details.searchEntries = []
      details.searchReferences = []
    }
    if (typeof message !== "object" || message === null || (message as { messageId?: unknown }).messageId !== messageId) return
    if ((message as { protocolOperation?: unknown }).protocolOperation === 0x64) {
      const state = control.lastState === undefined ? undefined : decodeSyncState(control.lastState)
      control.lastState = undefined
      handlers.onEntry(message as SearchEntry, state)
    }
  }
  parser.on("message", listener)
  try {
    const search = new SearchRequest({
      messageId,
      baseDN: request.base,
      scope: request.scope,
      filter: FilterParser.parseString(request.filter),
      attributes: [...request.attributes],
      returnAttributeValues: true,
      sizeLimit: 0,
      timeLimit: 0,
      controls: [control]
    })
    const response = await internals._send<{ status: number }>(search)
    if (response !== undefined && response.status !== 0) {
      throw Object.assign(new Error(`the sync search ended with result code ${response.status}`), { code: response.status })
    }
  } finally {
    parser.off("message", listener)
    parser._getMessageFromProtocolOperation = original
  }
}
