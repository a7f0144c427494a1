/**
 * LDIF (RFC 2849, with RFC 4525 `increment:`): a streaming parser (bytes or
 * text in, records out, one record and one partial line in memory at a time,
 * whatever the input's size, in time linear in its length) and a streaming
 * writer. Byte-exact: a value given in base64 keeps every byte (a leading
 * EF BB BF included; only a byte-order mark at the very start of the input is
 * dropped).
 *
 * - Values given with `::` are base64: they decode to a string when the bytes
 *   are valid UTF-8, else to a `Uint8Array`. Plain values must be valid UTF-8.
 * - `:<` URL values are read only when the caller names a base directory
 *   (`urls: { baseDirectory }`), only `file:` URLs, only inside that directory.
 * - `control:` lines are kept on the change record (`controls`) and sent with
 *   its operation by `LdapClient.importLdif`.
 * - Every problem is a typed error naming its line ({@link LdifParseError},
 *   {@link LdifRecordTooLarge}, {@link LdifUrlError}); with `keepGoing: true`
 *   the errors come in the stream and the parser goes on with the next record.
 *
 * It runs past 400 lines because it documents the LDIF model (records, change types, URLs,
 * base64) for users: over a third of it is doc comments; the parser and writer themselves are
 * under `internal/ldif*.ts`.
 *
 * @example
 * ```ts
 * import { Ldif } from "@tether/ldap"
 * import { Stream } from "effect"
 *
 * const records = Ldif.parseFile("people.ldif")          // Stream<Ldif.LdifRecord, Ldif.LdifError>
 * const items = Ldif.parseFile("people.ldif", { keepGoing: true, urls: { baseDirectory: "./photos" } })
 * declare const entries: ReadonlyArray<Ldif.LdifRecord>
 * const text = Ldif.write(Stream.fromIterable(entries))   // Stream<string>
 * ```
 *
 * @since 0.1.0
 */
import { Effect, Stream } from "effect"
import * as fs from "node:fs"
import { isRecordError, LdifParseError, LdifReadError, LdifRecordTooLarge, LdifUrlError } from "./internal/ldifErrors.ts"
import type { LdifRecordError } from "./internal/ldifErrors.ts"
import { LineReader } from "./internal/ldifLines.ts"
import type { LineEvent } from "./internal/ldifLines.ts"
import { parseRecord, recordLines, withUrls } from "./internal/ldifRecord.ts"
import { resolveUrls } from "./internal/ldifUrl.ts"
import * as writer from "./internal/ldifWrite.ts"

export {
  /**
   * Whether a value is an {@link LdifRecordError}.
   *
   * @since 0.2.0
   * @category guards
   */
  isRecordError,
  /**
   * @since 0.1.0
   * @category errors
   */
  LdifParseError,
  /**
   * @since 0.1.0
   * @category errors
   */
  LdifReadError,
  /**
   * @since 0.2.0
   * @category errors
   */
  LdifRecordTooLarge,
  /**
   * @since 0.2.0
   * @category errors
   */
  LdifUrlError
}
export type {
  /**
   * @since 0.2.0
   * @category errors
   */
  LdifRecordError
}

/**
 * Every error of parsing.
 *
 * @since 0.2.0
 * @category errors
 */
export type LdifError = LdifRecordError | LdifReadError

/**
 * One attribute value: text, or bytes when it is not valid UTF-8.
 *
 * @since 0.2.0
 * @category models
 */
export type Value = string | Uint8Array

/**
 * Attribute values by attribute type, in the order they were given (a `Map`:
 * any attribute type is a key, `constructor` and `__proto__` included; types
 * differing only in case are one attribute, under the first spelling).
 *
 * @since 0.1.0
 * @category models
 */
export type Attributes = Map<string, Array<Value>>

/**
 * A `control:` line of a change record: sent with the record's operation.
 *
 * @since 0.2.0
 * @category models
 */
export interface Control {
  readonly oid: string
  readonly critical: boolean
  /** The control value's bytes (BER as the control defines it). */
  readonly value?: Uint8Array | undefined
}

/**
 * What a modification does: RFC 2849's three plus RFC 4525's `increment`.
 *
 * @since 0.2.0
 * @category models
 */
export type Operation = "add" | "delete" | "replace" | "increment"

/**
 * One modification of a modify record.
 *
 * @since 0.2.0
 * @category models
 */
export interface Modification {
  readonly operation: Operation
  readonly attribute: string
  readonly values: ReadonlyArray<Value>
}

/**
 * One LDIF record: an entry (content record), or a change record (which may
 * carry `control:` lines as `controls`).
 *
 * @since 0.1.0
 * @category models
 */
export type LdifRecord =
  | { readonly _tag: "Entry"; readonly dn: string; readonly attributes: Attributes }
  | {
    readonly _tag: "Add"
    readonly dn: string
    readonly attributes: Attributes
    readonly controls?: ReadonlyArray<Control> | undefined
  }
  | { readonly _tag: "Delete"; readonly dn: string; readonly controls?: ReadonlyArray<Control> | undefined }
  | {
    readonly _tag: "Modify"
    readonly dn: string
    readonly changes: ReadonlyArray<Modification>
    readonly controls?: ReadonlyArray<Control> | undefined
  }
  | {
    readonly _tag: "ModRdn"
    readonly dn: string
    readonly newRdn: string
    readonly deleteOldRdn: boolean
    readonly newSuperior?: string | undefined
    readonly controls?: ReadonlyArray<Control> | undefined
  }

/**
 * The 1-based line where a parsed record starts (`undefined` for a record
 * that was not parsed from LDIF).
 *
 * @since 0.2.0
 * @category accessors
 */
export const lineOf = (record: LdifRecord): number | undefined => recordLines.get(record)

/**
 * An entry record from an attribute object (e.g. a search result's `Entry`).
 *
 * @example
 * ```ts
 * import { Ldif } from "@tether/ldap"
 *
 * const text = Ldif.writeString([Ldif.entry("cn=a,dc=example,dc=com", { objectClass: ["device"], cn: ["a"] })])
 * ```
 *
 * @since 0.2.0
 * @category constructors
 */
export const entry = (
  dn: string,
  attributes: { readonly [type: string]: ReadonlyArray<Value> } | ReadonlyMap<string, ReadonlyArray<Value>>
): LdifRecord => ({
  _tag: "Entry",
  dn,
  attributes: new Map(
    [...(attributes instanceof Map ? attributes : Object.entries(attributes))].map(([t, v]) => [t, [...v]] as const)
  )
})

/**
 * Options of the parser.
 *
 * @since 0.2.0
 * @category models
 */
export interface ParseOptions {
  /** The largest record read into memory, in bytes (default 64 MiB); past it, {@link LdifRecordTooLarge}. */
  readonly maxRecordBytes?: number | undefined
  /** Turns `:<` URL values on: `file:` URLs of files inside `baseDirectory`. Off by default. */
  readonly urls?: { readonly baseDirectory: string } | undefined
  /**
   * `true`: a bad record is an {@link LdifRecordError} item in the stream and
   * the parser goes on with the next record (what `LdapClient.importLdif`
   * wants, to report every bad record and still import every good one).
   * Default `false`: the first problem fails the stream.
   */
  readonly keepGoing?: boolean | undefined
}

const DEFAULT_MAX_RECORD_BYTES = 64 * 1024 * 1024

/** Turns line events into records and record errors; handles the `version:` line. */
class Parser {
  readonly lines: LineReader
  private first = true
  stopped = false

  constructor(readonly maxRecordBytes: number, private readonly keepGoing: boolean) {
    this.lines = new LineReader(maxRecordBytes)
  }

  items(events: ReadonlyArray<LineEvent>): Array<LdifRecord | LdifRecordError> {
    const out: Array<LdifRecord | LdifRecordError> = []
    for (const event of events) {
      if (this.stopped) break
      const item = this.item(event)
      if (item === undefined) continue
      out.push(item)
      if (!this.keepGoing && isRecordError(item)) this.stopped = true
    }
    return out
  }

  private item(event: LineEvent): LdifRecord | LdifRecordError | undefined {
    if (event._tag === "LineError") {
      this.first = false
      return event.tooLarge
        ? new LdifRecordTooLarge({ line: event.line, maxRecordBytes: this.maxRecordBytes })
        : new LdifParseError({ line: event.line, reason: event.reason })
    }
    let lines = event.lines
    if (this.first) {
      this.first = false
      const head = lines[0]!
      const text = (from: number, to: number) => Buffer.from(head.bytes.subarray(from, to)).toString("latin1")
      if (/^version:/i.test(text(0, 8))) {
        const version = text(8, Math.min(head.bytes.length, 64)).trim()
        if (version !== "1") return new LdifParseError({ line: head.line, reason: `unsupported LDIF version "${version}" (only 1)` })
        lines = lines.slice(1)
        if (lines.length === 0) return undefined
      }
    }
    return parseRecord(lines)
  }
}

const toBytes = (chunk: Uint8Array | string): Uint8Array => (typeof chunk === "string" ? Buffer.from(chunk, "utf8") : chunk)

/**
 * The parse as a stream of items. The parser emits one array per input chunk;
 * arrays with nothing to do (no URL value, no error) go straight through,
 * the others item by item (reading URL values; in fail mode, failing at the
 * first error after the records before it).
 */
const parseItems = <E, R>(
  input: Stream.Stream<Uint8Array | string, E, R>,
  options: ParseOptions | undefined
): Stream.Stream<LdifRecord | LdifRecordError, LdifRecordError | E, R> =>
  Stream.suspend(() => {
    const maxRecordBytes = options?.maxRecordBytes ?? DEFAULT_MAX_RECORD_BYTES
    const keepGoing = options?.keepGoing === true
    const parser = new Parser(maxRecordBytes, keepGoing)
    const step = (item: LdifRecord | LdifRecordError): Effect.Effect<LdifRecord | LdifRecordError, LdifRecordError> => {
      if (isRecordError(item)) return keepGoing ? Effect.succeed(item) : Effect.fail(item)
      if (!withUrls.has(item)) return Effect.succeed(item)
      return resolveUrls(item, options?.urls, maxRecordBytes).pipe(
        Effect.tap((resolved) => Effect.sync(() => recordLines.set(resolved, recordLines.get(item)!))),
        Effect.catch((error) => (keepGoing ? Effect.succeed<LdifRecord | LdifRecordError>(error) : Effect.fail(error)))
      )
    }
    const simple = (items: ReadonlyArray<LdifRecord | LdifRecordError>) =>
      items.every((item) => !isRecordError(item) && !withUrls.has(item))
    return input.pipe(
      Stream.mapAccum(
        () => parser,
        (p, chunk: Uint8Array | string) => {
          if (p.stopped) return [p, []] as const
          const events: Array<LineEvent> = []
          p.lines.feed(toBytes(chunk), events)
          return [p, [p.items(events)]] as const
        },
        {
          onHalt: (p) => {
            if (p.stopped) return []
            const events: Array<LineEvent> = []
            p.lines.end(events)
            return [p.items(events)]
          }
        }
      ),
      Stream.flatMap((items) =>
        items.length === 0
          ? Stream.empty
          : simple(items)
          ? Stream.fromArray(items)
          : Stream.mapEffect(Stream.fromArray(items), step)
      )
    )
  })

/**
 * Parses LDIF from a stream of bytes or text (chunks may split lines, line
 * endings and UTF-8 characters anywhere). By default the first problem fails
 * the stream with a typed error naming its line; with `keepGoing: true` each
 * bad record is an error item and parsing goes on.
 *
 * @since 0.1.0
 * @category parsing
 */
export function parse<E, R>(
  input: Stream.Stream<Uint8Array | string, E, R>,
  options: ParseOptions & { readonly keepGoing: true }
): Stream.Stream<LdifRecord | LdifRecordError, E, R>
export function parse<E, R>(
  input: Stream.Stream<Uint8Array | string, E, R>,
  options?: ParseOptions & { readonly keepGoing?: false | undefined }
): Stream.Stream<LdifRecord, LdifRecordError | E, R>
export function parse<E, R>(
  input: Stream.Stream<Uint8Array | string, E, R>,
  options?: ParseOptions
): Stream.Stream<LdifRecord | LdifRecordError, LdifRecordError | E, R> {
  return parseItems(input, options)
}

/**
 * Parses LDIF text.
 *
 * @since 0.1.0
 * @category parsing
 */
export const parseString = (
  text: string,
  options?: Omit<ParseOptions, "keepGoing">
): Effect.Effect<ReadonlyArray<LdifRecord>, LdifRecordError> =>
  Stream.runCollect(parse(Stream.make(text), { ...options, keepGoing: false }))

// The file is opened when the stream runs (each run opens it anew), never when it is built: a
// read stream opened early emits its error (a missing file) before anyone listens, and Node
// turns that into an uncaught exception.
const readFile = (path: string): Stream.Stream<Uint8Array, LdifReadError> =>
  Stream.suspend(() =>
    Stream.fromAsyncIterable(
      fs.createReadStream(path, { highWaterMark: 64 * 1024 }) as AsyncIterable<Uint8Array>,
      (cause) => new LdifReadError({ path, reason: (cause as NodeJS.ErrnoException).code ?? String(cause) })
    )
  )

/**
 * Parses an LDIF file, streaming it in 64 KiB chunks.
 *
 * @since 0.1.0
 * @category parsing
 */
export function parseFile(
  path: string,
  options: ParseOptions & { readonly keepGoing: true }
): Stream.Stream<LdifRecord | LdifRecordError, LdifReadError>
export function parseFile(
  path: string,
  options?: ParseOptions & { readonly keepGoing?: false | undefined }
): Stream.Stream<LdifRecord, LdifError>
export function parseFile(
  path: string,
  options?: ParseOptions
): Stream.Stream<LdifRecord | LdifRecordError, LdifError> {
  return options?.keepGoing === true
    ? parse(readFile(path), { ...options, keepGoing: true })
    : parse(readFile(path), { ...options, keepGoing: false })
}

// ---------------------------------------------------------------------------------------------
// Writing
// ---------------------------------------------------------------------------------------------

/**
 * One record as LDIF text, ending with a blank line.
 *
 * @since 0.1.0
 * @category writing
 */
export const format: (record: LdifRecord) => string = writer.format

/**
 * Writes records (e.g. search results as `Entry` records) as LDIF text, one
 * chunk per record, after a `version: 1` line.
 *
 * @since 0.1.0
 * @category writing
 */
export const write = <E, R>(records: Stream.Stream<LdifRecord, E, R>): Stream.Stream<string, E, R> =>
  Stream.concat(Stream.make("version: 1\n\n"), Stream.map(records, format))

/**
 * Records as one LDIF text.
 *
 * @since 0.1.0
 * @category writing
 */
export const writeString = (records: Iterable<LdifRecord>): string => {
  const parts = ["version: 1\n\n"]
  for (const record of records) parts.push(format(record))
  return parts.join("")
}
