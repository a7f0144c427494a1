/**
 * LDIF (RFC 2849): a streaming parser (bytes or text in, records out, one
 * record and one partial line in memory at a time, whatever the input's size)
 * and a streaming writer.
 *
 * Values given with `::` are base64: they decode to a string when the bytes
 * are valid UTF-8, else to a `Uint8Array`. `:<` (URL) values and `control:`
 * lines are refused with a clear error, never dropped.
 *
 * @example
 * ```ts
 * import { Ldif } from "@tether/ldap"
 * import { Stream } from "effect"
 *
 * const records = Ldif.parseFile("people.ldif")          // Stream<Ldif.LdifRecord, Ldif.LdifParseError | …>
 * const text = Ldif.write(Stream.fromIterable(entries))   // Stream<string>
 * ```
 *
 * @since 0.1.0
 */
import { Data, Effect, Stream } from "effect"
import * as fs from "node:fs"

/**
 * Attribute values by attribute type, in the order they were given.
 *
 * @since 0.1.0
 * @category models
 */
export type Attributes = Record<string, Array<string | Uint8Array>>

/**
 * One LDIF record: an entry (content record), or a change record.
 *
 * @since 0.1.0
 * @category models
 */
export type LdifRecord =
  | { readonly _tag: "Entry"; readonly dn: string; readonly attributes: Attributes }
  | { readonly _tag: "Add"; readonly dn: string; readonly attributes: Attributes }
  | { readonly _tag: "Delete"; readonly dn: string }
  | {
    readonly _tag: "Modify"
    readonly dn: string
    readonly changes: ReadonlyArray<{
      readonly operation: "add" | "delete" | "replace"
      readonly attribute: string
      readonly values: ReadonlyArray<string | Uint8Array>
    }>
  }
  | {
    readonly _tag: "ModRdn"
    readonly dn: string
    readonly newRdn: string
    readonly deleteOldRdn: boolean
    readonly newSuperior?: string | undefined
  }

/**
 * The input is not valid LDIF; `line` is the 1-based line where the problem is.
 *
 * @since 0.1.0
 * @category errors
 */
export class LdifParseError extends Data.TaggedError("LdifParseError")<{
  readonly line: number
  readonly reason: string
}> {
  override get message() {
    return `LDIF line ${this.line}: ${this.reason}`
  }
}

/**
 * A file could not be read.
 *
 * @since 0.1.0
 * @category errors
 */
export class LdifReadError extends Data.TaggedError("LdifReadError")<{ readonly path: string; readonly reason: string }> {
  override get message() {
    return `cannot read LDIF file ${this.path}: ${this.reason}`
  }
}

// ---------------------------------------------------------------------------------------------
// Parsing
// ---------------------------------------------------------------------------------------------

type Line = readonly [line: number, text: string]

const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/
const strictUtf8 = new TextDecoder("utf-8", { fatal: true })

interface Value {
  readonly type: string
  readonly value: string | Uint8Array
}

const parseValue = ([line, text]: Line): Value | LdifParseError => {
  const colon = text.indexOf(":")
  if (colon <= 0) return new LdifParseError({ line, reason: `expected "type: value", got "${clip(text)}"` })
  const type = text.slice(0, colon)
  const rest = text.slice(colon + 1)
  if (rest.startsWith(":")) {
    const encoded = rest.slice(1).trim()
    if (encoded.length % 4 !== 0 || !BASE64.test(encoded)) {
      return new LdifParseError({ line, reason: `the base64 value of "${type}" is not valid base64` })
    }
    const bytes = Buffer.from(encoded, "base64")
    try {
      return { type, value: strictUtf8.decode(bytes) }
    } catch {
      return { type, value: new Uint8Array(bytes) }
    }
  }
  if (rest.startsWith("<")) {
    return new LdifParseError({ line, reason: `URL values (":<") are not supported; inline the value of "${type}"` })
  }
  return { type, value: rest.replace(/^ +/, "") }
}

const clip = (text: string) => (text.length > 40 ? `${text.slice(0, 40)}…` : text)

const asText = (value: string | Uint8Array) => (typeof value === "string" ? value : Buffer.from(value).toString("utf8"))

/** Parses one record's logical lines. */
const parseRecord = (lines: ReadonlyArray<Line>): LdifRecord | LdifParseError => {
  const first = parseValue(lines[0]!)
  if (first instanceof LdifParseError) return first
  if (first.type.toLowerCase() !== "dn") {
    return new LdifParseError({ line: lines[0]![0], reason: `a record must start with "dn:", got "${first.type}:"` })
  }
  const dn = asText(first.value)
  let i = 1
  if (i < lines.length && /^control:/i.test(lines[i]![1])) {
    return new LdifParseError({ line: lines[i]![0], reason: "controls are not supported" })
  }
  let changetype: string | undefined
  if (i < lines.length && /^changetype:/i.test(lines[i]![1])) {
    const parsed = parseValue(lines[i]!)
    if (parsed instanceof LdifParseError) return parsed
    changetype = asText(parsed.value).trim().toLowerCase()
    i++
  }
  const attributesFrom = (from: number): Attributes | LdifParseError => {
    const attributes: Attributes = {}
    for (let j = from; j < lines.length; j++) {
      const parsed = parseValue(lines[j]!)
      if (parsed instanceof LdifParseError) return parsed
      ;(attributes[parsed.type] ??= []).push(parsed.value)
    }
    return attributes
  }
  switch (changetype) {
    case undefined:
    case "add": {
      const attributes = attributesFrom(i)
      if (attributes instanceof LdifParseError) return attributes
      return changetype === undefined ? { _tag: "Entry", dn, attributes } : { _tag: "Add", dn, attributes }
    }
    case "delete":
      if (i < lines.length) {
        return new LdifParseError({ line: lines[i]![0], reason: "a delete record has no lines after its changetype" })
      }
      return { _tag: "Delete", dn }
    case "modrdn":
    case "moddn": {
      const fields: Record<string, string> = {}
      for (let j = i; j < lines.length; j++) {
        const parsed = parseValue(lines[j]!)
        if (parsed instanceof LdifParseError) return parsed
        fields[parsed.type.toLowerCase()] = asText(parsed.value)
      }
      if (fields["newrdn"] === undefined) {
        return new LdifParseError({ line: lines[0]![0], reason: `a ${changetype} record needs "newrdn:"` })
      }
      const deleteOld = fields["deleteoldrdn"]
      if (deleteOld !== "0" && deleteOld !== "1") {
        return new LdifParseError({ line: lines[0]![0], reason: `a ${changetype} record needs "deleteoldrdn: 0" or "1"` })
      }
      return {
        _tag: "ModRdn",
        dn,
        newRdn: fields["newrdn"],
        deleteOldRdn: deleteOld === "1",
        ...(fields["newsuperior"] === undefined ? {} : { newSuperior: fields["newsuperior"] })
      }
    }
    case "modify": {
      const changes: Array<{ operation: "add" | "delete" | "replace"; attribute: string; values: Array<string | Uint8Array> }> = []
      let current: (typeof changes)[number] | undefined
      for (let j = i; j < lines.length; j++) {
        const [line, text] = lines[j]!
        if (text === "-") {
          if (current === undefined) return new LdifParseError({ line, reason: `"-" without a modification before it` })
          current = undefined
          continue
        }
        const parsed = parseValue(lines[j]!)
        if (parsed instanceof LdifParseError) return parsed
        if (current === undefined) {
          const operation = parsed.type.toLowerCase()
          if (operation !== "add" && operation !== "delete" && operation !== "replace") {
            return new LdifParseError({ line, reason: `expected "add:", "delete:" or "replace:", got "${parsed.type}:"` })
          }
          current = { operation, attribute: asText(parsed.value).trim(), values: [] }
          changes.push(current)
        } else if (parsed.type.toLowerCase() === current.attribute.toLowerCase()) {
          current.values.push(parsed.value)
        } else {
          return new LdifParseError({
            line,
            reason: `"${parsed.type}:" inside the modification of "${current.attribute}" (missing "-"?)`
          })
        }
      }
      return { _tag: "Modify", dn, changes }
    }
    default:
      return new LdifParseError({ line: lines[i - 1]![0], reason: `unknown changetype "${changetype}"` })
  }
}

/** The parser's state: the partial physical line, the logical line being unfolded, the record being read. */
class Parser {
  private readonly decoder = new TextDecoder("utf-8")
  private partial = ""
  private lineNumber = 0
  private logical: string | undefined
  private logicalLine = 0
  private inComment = false
  private record: Array<Line> = []
  private seenRecord = false
  failed = false

  feed(chunk: Uint8Array | string, out: Array<LdifRecord | LdifParseError>): void {
    const text = this.partial + (typeof chunk === "string" ? chunk : this.decoder.decode(chunk, { stream: true }))
    let start = 0
    let nl = text.indexOf("\n", start)
    while (nl >= 0 && !this.failed) {
      const end = nl > start && text.charCodeAt(nl - 1) === 13 ? nl - 1 : nl
      this.line(text.slice(start, end), out)
      start = nl + 1
      nl = text.indexOf("\n", start)
    }
    this.partial = text.slice(start)
  }

  end(out: Array<LdifRecord | LdifParseError>): void {
    const rest = this.partial + this.decoder.decode()
    this.partial = ""
    if (rest !== "" && !this.failed) this.line(rest.endsWith("\r") ? rest.slice(0, -1) : rest, out)
    if (!this.failed) {
      this.finishLogical()
      this.finishRecord(out)
    }
  }

  private line(text: string, out: Array<LdifRecord | LdifParseError>): void {
    const n = ++this.lineNumber
    if (text.startsWith(" ")) {
      if (this.inComment) return
      if (this.logical === undefined) return this.fail(out, n, "continuation line with nothing to continue")
      this.logical += text.slice(1)
      return
    }
    this.finishLogical()
    if (text === "") {
      this.inComment = false
      return this.finishRecord(out)
    }
    if (text.startsWith("#")) {
      this.inComment = true
      return
    }
    this.inComment = false
    this.logical = text
    this.logicalLine = n
  }

  private finishLogical(): void {
    if (this.logical !== undefined) {
      this.record.push([this.logicalLine, this.logical])
      this.logical = undefined
    }
  }

  private finishRecord(out: Array<LdifRecord | LdifParseError>): void {
    let lines = this.record
    this.record = []
    if (lines.length === 0) return
    if (!this.seenRecord && /^version:/i.test(lines[0]![1])) {
      const version = parseValue(lines[0]!)
      if (version instanceof LdifParseError) return this.fail(out, version.line, version.reason)
      if (asText(version.value).trim() !== "1") {
        return this.fail(out, lines[0]![0], `unsupported LDIF version "${asText(version.value)}" (only 1)`)
      }
      lines = lines.slice(1)
      if (lines.length === 0) return
    }
    this.seenRecord = true
    const record = parseRecord(lines)
    if (record instanceof LdifParseError) this.failed = true
    out.push(record)
  }

  private fail(out: Array<LdifRecord | LdifParseError>, line: number, reason: string): void {
    this.failed = true
    out.push(new LdifParseError({ line, reason }))
  }
}

/**
 * Parses LDIF from a stream of bytes or text (chunks may split lines,
 * line endings and UTF-8 characters anywhere). The first problem fails the
 * stream with an {@link LdifParseError} naming its line.
 *
 * @since 0.1.0
 * @category parsing
 */
export const parse = <E, R>(input: Stream.Stream<Uint8Array | string, E, R>): Stream.Stream<LdifRecord, LdifParseError | E, R> =>
  Stream.suspend(() => {
    const parser = new Parser()
    return input.pipe(
      Stream.mapAccum(
        () => parser,
        (p, chunk: Uint8Array | string) => {
          const out: Array<LdifRecord | LdifParseError> = []
          if (!p.failed) p.feed(chunk, out)
          return [p, out] as const
        },
        {
          onHalt: (p) => {
            const out: Array<LdifRecord | LdifParseError> = []
            p.end(out)
            return out
          }
        }
      ),
      Stream.mapEffect((item) => (item instanceof LdifParseError ? Effect.fail(item) : Effect.succeed(item)))
    )
  })

/**
 * Parses LDIF text.
 *
 * @since 0.1.0
 * @category parsing
 */
export const parseString = (text: string): Effect.Effect<ReadonlyArray<LdifRecord>, LdifParseError> =>
  Stream.runCollect(parse(Stream.make(text)))

/**
 * Parses an LDIF file, streaming it in 64 KiB chunks.
 *
 * @since 0.1.0
 * @category parsing
 */
export const parseFile = (path: string): Stream.Stream<LdifRecord, LdifParseError | LdifReadError> =>
  parse(
    Stream.fromAsyncIterable(
      fs.createReadStream(path, { highWaterMark: 64 * 1024 }) as AsyncIterable<Uint8Array>,
      (cause) => new LdifReadError({ path, reason: (cause as NodeJS.ErrnoException).code ?? String(cause) })
    )
  )

// ---------------------------------------------------------------------------------------------
// Writing
// ---------------------------------------------------------------------------------------------

/** RFC 2849 SAFE-STRING: printable ASCII, not starting with space, `:` or `<`, no trailing space. */
const isSafe = (value: string): boolean => {
  if (value === "") return true
  const first = value.charCodeAt(0)
  if (first === 32 || first === 58 || first === 60) return false
  if (value.charCodeAt(value.length - 1) === 32) return false
  for (let i = 0; i < value.length; i++) {
    const c = value.charCodeAt(i)
    if (c === 0 || c === 10 || c === 13 || c > 126) return false
  }
  return true
}

/** Folds a line at 76 columns: continuation lines start with one space. */
const fold = (line: string): string => {
  if (line.length <= 76) return line
  const parts = [line.slice(0, 76)]
  for (let i = 76; i < line.length; i += 75) parts.push(` ${line.slice(i, i + 75)}`)
  return parts.join("\n")
}

const field = (type: string, value: string | Uint8Array): string =>
  fold(
    typeof value !== "string"
      ? `${type}:: ${Buffer.from(value).toString("base64")}`
      : isSafe(value)
      ? `${type}: ${value}`
      : `${type}:: ${Buffer.from(value, "utf8").toString("base64")}`
  )

/**
 * One record as LDIF text, ending with a blank line.
 *
 * @since 0.1.0
 * @category writing
 */
export const format = (record: LdifRecord): string => {
  const lines = [field("dn", record.dn)]
  switch (record._tag) {
    case "Entry":
    case "Add":
      if (record._tag === "Add") lines.push("changetype: add")
      for (const [type, values] of Object.entries(record.attributes)) for (const v of values) lines.push(field(type, v))
      break
    case "Delete":
      lines.push("changetype: delete")
      break
    case "ModRdn":
      lines.push("changetype: modrdn", field("newrdn", record.newRdn), `deleteoldrdn: ${record.deleteOldRdn ? 1 : 0}`)
      if (record.newSuperior !== undefined) lines.push(field("newsuperior", record.newSuperior))
      break
    case "Modify":
      lines.push("changetype: modify")
      for (const change of record.changes) {
        lines.push(`${change.operation}: ${change.attribute}`)
        for (const v of change.values) lines.push(field(change.attribute, v))
        lines.push("-")
      }
      break
  }
  return `${lines.join("\n")}\n\n`
}

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
  let text = "version: 1\n\n"
  for (const record of records) text += format(record)
  return text
}
