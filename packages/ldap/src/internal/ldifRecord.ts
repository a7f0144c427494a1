/**
 * LDIF record layer: one record's logical lines in, one `LdifRecord` (or a
 * typed error naming the line) out. RFC 2849 plus RFC 4525 (`increment:`).
 *
 * @internal
 */
import type * as Ldif from "../Ldif.ts"
import { LdifParseError } from "./ldifErrors.ts"
import type { LogicalLine } from "./ldifLines.ts"

/** A `:<` value waiting to be read (see `ldifUrl.ts`). */
export class PendingUrl {
  constructor(readonly url: string, readonly line: number) {}
}

/** The first line of each parsed record (for reports). */
export const recordLines = new WeakMap<object, number>()

/** Records holding at least one {@link PendingUrl}. */
export const withUrls = new WeakSet<object>()

type Parsed =
  | { readonly kind: "value"; readonly type: string; readonly value: string | Uint8Array; readonly line: number }
  | { readonly kind: "url"; readonly type: string; readonly url: string; readonly line: number }
  | { readonly kind: "separator"; readonly type: "-"; readonly line: number }

const COLON = 0x3a
const SPACE = 0x20
// RFC 4512 descriptors are letters, digits and "-"; "_" is let through (some servers allow it; the server decides).
const TYPE = /^(?:[A-Za-z_][A-Za-z0-9_-]*|[0-9]+(?:\.[0-9]+)*)(?:;[A-Za-z0-9_-]+)*$/
const strictUtf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true })

const clip = (text: string) => (text.length > 40 ? `${text.slice(0, 40)}…` : text)

/** Bytes as a `Uint8Array` that owns them (a small Buffer may be a view on a shared pool). */
const ownBytes = (b: Uint8Array): Uint8Array =>
  b.length < 4096 ? new Uint8Array(b) : new Uint8Array(b.buffer, b.byteOffset, b.length)

/** Node's native slicers work on any Uint8Array (no Buffer object per call). */
const latin1Slice = (Buffer.prototype as unknown as { latin1Slice: (this: Uint8Array, from: number, to: number) => string })
  .latin1Slice

/** Bytes as Latin-1 text (for types, base64 and ASCII values). */
const latin1 = (b: Uint8Array, from: number, to: number): string => latin1Slice.call(b, from, to)

/** Strict UTF-8, with a fast path for ASCII (most values). Throws on invalid UTF-8. */
const utf8 = (b: Uint8Array, from: number): string => {
  for (let i = from; i < b.length; i++) {
    if (b[i]! >= 0x80) return strictUtf8.decode(b.subarray(from))
  }
  return latin1Slice.call(b, from, b.length)
}

const isBase64 = (b: Uint8Array, from: number, to: number): boolean => {
  if ((to - from) % 4 !== 0) return false
  let pad = 0
  for (let i = from; i < to; i++) {
    const c = b[i]!
    if (c === 0x3d) {
      if (++pad > 2) return false
      continue
    }
    if (pad > 0) return false
    const ok = (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a) || (c >= 0x30 && c <= 0x39) || c === 0x2b || c === 0x2f
    if (!ok) return false
  }
  return true
}

/** Decoded bytes: a string when they are valid UTF-8 (a leading BOM is kept as U+FEFF), else the bytes. */
export const decodeValue = (bytes: Uint8Array): string | Uint8Array => {
  try {
    return strictUtf8.decode(bytes)
  } catch {
    return ownBytes(bytes)
  }
}

const parseLine = ({ bytes, line }: LogicalLine, dn: string | undefined): Parsed | LdifParseError => {
  if (bytes[0] === 0x2d && bytes.subarray(1).every((c) => c === SPACE)) return { kind: "separator", type: "-", line }
  const colon = bytes.indexOf(COLON)
  if (colon <= 0) {
    const text = Buffer.from(bytes.subarray(0, 60)).toString("utf8")
    return new LdifParseError({ line, dn, reason: `expected "type: value", got "${clip(text)}"` })
  }
  const type = latin1(bytes, 0, colon)
  if (!TYPE.test(type)) {
    return new LdifParseError({ line, dn, reason: `"${clip(type)}" is not an attribute type (a name or an OID, options after ";")` })
  }
  const marker = bytes[colon + 1]
  let from = colon + (marker === COLON || marker === 0x3c ? 2 : 1)
  while (from < bytes.length && bytes[from] === SPACE) from++
  if (marker === COLON) {
    let to = bytes.length
    while (to > from && bytes[to - 1] === SPACE) to--
    if (!isBase64(bytes, from, to)) {
      return new LdifParseError({ line, dn, reason: `the base64 value of "${type}" is not valid base64` })
    }
    return { kind: "value", type, value: decodeValue(Buffer.from(latin1(bytes, from, to), "base64")), line }
  }
  if (marker === 0x3c) {
    return { kind: "url", type, url: Buffer.from(bytes.subarray(from)).toString("utf8").trim(), line }
  }
  try {
    return { kind: "value", type, value: utf8(bytes, from), line }
  } catch {
    return new LdifParseError({
      line,
      dn,
      reason: `the value of "${type}" is not valid UTF-8 (save the file as UTF-8, or give binary values in base64 with "${type}::")`
    })
  }
}

/** A parsed line that must be text (DN, changetype, newrdn…). */
const textOf = (parsed: Parsed, dn: string | undefined): string | LdifParseError => {
  if (parsed.kind === "separator") {
    return new LdifParseError({ line: parsed.line, dn, reason: `"-" outside the modifications of a modify record` })
  }
  if (parsed.kind === "url") {
    return new LdifParseError({ line: parsed.line, dn, reason: `"${parsed.type}:" cannot take a URL value` })
  }
  if (typeof parsed.value !== "string") {
    return new LdifParseError({ line: parsed.line, dn, reason: `the value of "${parsed.type}:" is not valid UTF-8` })
  }
  return parsed.value
}

const CONTROL = /^([0-9]+(?:\.[0-9]+)*)(?: +(true|false))? *(?::(:?) *([\s\S]*))?$/

const parseControl = (text: string, line: number, dn: string): Ldif.Control | LdifParseError => {
  const m = CONTROL.exec(text.trim())
  if (m === null) {
    return new LdifParseError({ line, dn, reason: `expected "control: <oid> [true|false][: value | :: base64]", got "${clip(text)}"` })
  }
  const [, oid, critical, base64, raw] = m
  let value: Uint8Array | undefined
  if (raw !== undefined) {
    if (base64 === ":") {
      const b = Buffer.from(raw.trim(), "latin1")
      if (!isBase64(b, 0, b.length)) return new LdifParseError({ line, dn, reason: "the base64 value of the control is not valid base64" })
      value = new Uint8Array(Buffer.from(raw.trim(), "base64"))
    } else {
      if (raw.startsWith("<")) return new LdifParseError({ line, dn, reason: "URL values of controls are not supported" })
      value = new Uint8Array(Buffer.from(raw, "utf8"))
    }
  }
  return { oid: oid!, critical: critical === "true", ...(value === undefined ? {} : { value }) }
}

/** Collects values by attribute type; types differing only in case are one attribute (the first spelling is kept). */
class AttributeCollector {
  readonly attributes: Ldif.Attributes = new Map()
  private readonly byLower = new Map<string, Array<Ldif.Value>>()
  hasUrl = false

  add(parsed: Exclude<Parsed, { kind: "separator" }>): void {
    const lower = parsed.type.toLowerCase()
    let values = this.byLower.get(lower)
    if (values === undefined) {
      values = []
      this.byLower.set(lower, values)
      this.attributes.set(parsed.type, values)
    }
    if (parsed.kind === "url") {
      this.hasUrl = true
      values.push(new PendingUrl(parsed.url, parsed.line) as unknown as Ldif.Value)
    } else {
      values.push(parsed.value)
    }
  }
}

const isOp = (type: string): type is "add" | "delete" | "replace" | "increment" =>
  type === "add" || type === "delete" || type === "replace" || type === "increment"

/** Parses one record. `lines` is non-empty. */
export const parseRecord = (lines: ReadonlyArray<LogicalLine>): Ldif.LdifRecord | LdifParseError => {
  const first = parseLine(lines[0]!, undefined)
  if (first instanceof LdifParseError) return first
  if (first.type.toLowerCase() !== "dn") {
    return new LdifParseError({ line: first.line, reason: `a record must start with "dn:", got "${first.type}:"` })
  }
  const dn = textOf(first, undefined)
  if (typeof dn !== "string") return dn
  const fail = (line: number, reason: string) => new LdifParseError({ line, dn, reason })
  const parsedLines: Array<Parsed> = []
  for (let j = 1; j < lines.length; j++) {
    const parsed = parseLine(lines[j]!, dn)
    if (parsed instanceof LdifParseError) return parsed
    if (parsed.type.toLowerCase() === "dn") {
      return fail(parsed.line, `a second "dn:" in one record (records are separated by an empty line)`)
    }
    parsedLines.push(parsed)
  }
  let i = 0
  const controls: Array<Ldif.Control> = []
  while (i < parsedLines.length && parsedLines[i]!.type.toLowerCase() === "control") {
    const text = textOf(parsedLines[i]!, dn)
    if (typeof text !== "string") return text
    const control = parseControl(text, parsedLines[i]!.line, dn)
    if (control instanceof LdifParseError) return control
    controls.push(control)
    i++
  }
  let changetype: string | undefined
  if (i < parsedLines.length && parsedLines[i]!.type.toLowerCase() === "changetype") {
    const text = textOf(parsedLines[i]!, dn)
    if (typeof text !== "string") return text
    changetype = text.trim().toLowerCase()
    i++
  } else if (controls.length > 0) {
    return fail(parsedLines[i - 1]!.line, `"control:" lines must be followed by "changetype:"`)
  }
  const misplaced = parsedLines.slice(i).find((p) =>
    (p.type.length === 7 || p.type.length === 10) && /^(control|changetype)$/i.test(p.type)
  )
  if (misplaced !== undefined) {
    return fail(misplaced.line, `"${misplaced.type}:" must come right after "dn:" (and "control:" before "changetype:")`)
  }
  const withControls = controls.length > 0 ? { controls } : {}
  const rest = parsedLines.slice(i)
  const headerLine = parsedLines[i - 1]?.line ?? first.line
  let record: Ldif.LdifRecord
  switch (changetype) {
    case undefined:
    case "add": {
      if (rest.length === 0) return fail(headerLine, "the record has no attributes")
      const collector = new AttributeCollector()
      for (const parsed of rest) {
        if (parsed.kind === "separator") return fail(parsed.line, `"-" outside the modifications of a modify record`)
        collector.add(parsed)
      }
      record = changetype === undefined
        ? { _tag: "Entry", dn, attributes: collector.attributes }
        : { _tag: "Add", dn, attributes: collector.attributes, ...withControls }
      if (collector.hasUrl) withUrls.add(record)
      break
    }
    case "delete":
      if (rest.length > 0) return fail(rest[0]!.line, "a delete record has no lines after its changetype")
      record = { _tag: "Delete", dn, ...withControls }
      break
    case "modrdn":
    case "moddn": {
      const fields = new Map<string, string>()
      for (const parsed of rest) {
        const name = parsed.type.toLowerCase()
        if (name !== "newrdn" && name !== "deleteoldrdn" && name !== "newsuperior") {
          return fail(parsed.line, `"${parsed.type}:" in a ${changetype} record (only newrdn, deleteoldrdn, newsuperior)`)
        }
        if (fields.has(name)) return fail(parsed.line, `"${parsed.type}:" given twice`)
        const text = textOf(parsed, dn)
        if (typeof text !== "string") return text
        fields.set(name, text)
      }
      const newRdn = fields.get("newrdn")
      if (newRdn === undefined || newRdn === "") return fail(headerLine, `a ${changetype} record needs "newrdn:"`)
      const deleteOld = fields.get("deleteoldrdn")?.trim()
      if (deleteOld !== "0" && deleteOld !== "1") return fail(headerLine, `a ${changetype} record needs "deleteoldrdn: 0" or "1"`)
      const newSuperior = fields.get("newsuperior")
      record = {
        _tag: "ModRdn",
        dn,
        newRdn,
        deleteOldRdn: deleteOld === "1",
        ...(newSuperior === undefined ? {} : { newSuperior }),
        ...withControls
      }
      break
    }
    case "modify": {
      const changes: Array<{ operation: Ldif.Operation; attribute: string; values: Array<Ldif.Value> }> = []
      let current: (typeof changes)[number] | undefined
      const changeLines: Array<number> = []
      let hasUrl = false
      for (const parsed of rest) {
        if (parsed.kind === "separator") {
          if (current === undefined) return fail(parsed.line, `"-" without a modification before it`)
          current = undefined
          continue
        }
        if (current === undefined) {
          const operation = parsed.type.toLowerCase()
          if (!isOp(operation)) {
            return fail(parsed.line, `expected "add:", "delete:", "replace:" or "increment:", got "${parsed.type}:"`)
          }
          const attribute = textOf(parsed, dn)
          if (typeof attribute !== "string") return attribute
          if (!TYPE.test(attribute.trim())) return fail(parsed.line, `"${clip(attribute)}" is not an attribute type`)
          current = { operation, attribute: attribute.trim(), values: [] }
          changeLines.push(parsed.line)
          changes.push(current)
        } else if (parsed.type.toLowerCase() === current.attribute.toLowerCase()) {
          if (parsed.kind === "url") {
            hasUrl = true
            current.values.push(new PendingUrl(parsed.url, parsed.line) as unknown as Ldif.Value)
          } else current.values.push(parsed.value)
        } else {
          return fail(parsed.line, `"${parsed.type}:" inside the modification of "${current.attribute}" (missing "-"?)`)
        }
        if (current.operation === "increment" && current.values.length > 1) {
          return fail(parsed.line, `"increment: ${current.attribute}" takes exactly one value`)
        }
      }
      for (const [k, change] of changes.entries()) {
        if (change.operation === "increment") {
          const v = change.values[0]
          if (typeof v !== "string" || !/^-?[0-9]+$/.test(v.trim())) {
            return fail(changeLines[k]!, `"increment: ${change.attribute}" needs one integer value (RFC 4525)`)
          }
        }
      }
      record = { _tag: "Modify", dn, changes, ...withControls }
      if (hasUrl) withUrls.add(record)
      break
    }
    default:
      return fail(headerLine, `unknown changetype "${changetype}" (add, delete, modify, modrdn, moddn)`)
  }
  recordLines.set(record, first.line)
  return record
}
