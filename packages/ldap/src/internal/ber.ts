/**
 * A tiny BER (X.690) encoder and a strict decoder, for the values of LDAP
 * extended operations and controls (definite lengths only, as RFC 4511 5.1
 * requires). The decoder never throws: a malformed input is `undefined`.
 *
 * @internal
 */

/** One encoded element: tag byte, contents. */
export interface Tlv {
  readonly tag: number
  readonly value: Uint8Array
}

/** The definite length octets of `n` (short form below 128, else long form). */
export const encodeLength = (n: number): Uint8Array => {
  if (n < 0x80) return Uint8Array.of(n)
  const bytes: Array<number> = []
  for (let rest = n; rest > 0; rest = Math.floor(rest / 256)) bytes.unshift(rest & 0xff)
  return Uint8Array.of(0x80 | bytes.length, ...bytes)
}

const concat = (parts: ReadonlyArray<Uint8Array>): Uint8Array => {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0))
  let at = 0
  for (const p of parts) {
    out.set(p, at)
    at += p.length
  }
  return out
}

/** An element with a primitive value (`value` as bytes, or text encoded as UTF-8). */
export const primitive = (tag: number, value: Uint8Array | string): Uint8Array => {
  const bytes = typeof value === "string" ? new TextEncoder().encode(value) : value
  return concat([Uint8Array.of(tag), encodeLength(bytes.length), bytes])
}

/** A constructed element (a SEQUENCE is tag 0x30) holding already encoded children. */
export const constructed = (tag: number, children: ReadonlyArray<Uint8Array>): Uint8Array => {
  const body = concat(children)
  return concat([Uint8Array.of(tag), encodeLength(body.length), body])
}

/** Reads one element at `offset`: the element and where the next one starts, or `undefined` if malformed. */
export const readTlv = (bytes: Uint8Array, offset = 0): { readonly tlv: Tlv; readonly next: number } | undefined => {
  if (offset + 2 > bytes.length) return undefined
  const tag = bytes[offset]!
  // Multi-byte tags (low bits all set) are not used by LDAP.
  if ((tag & 0x1f) === 0x1f) return undefined
  let length = bytes[offset + 1]!
  let at = offset + 2
  if (length & 0x80) {
    const count = length & 0x7f
    // 0x80 is the indefinite form, forbidden in LDAP; more than 4 length octets is absurd here.
    if (count === 0 || count > 4 || at + count > bytes.length) return undefined
    length = 0
    for (let i = 0; i < count; i++) length = length * 256 + bytes[at + i]!
    at += count
  }
  if (at + length > bytes.length) return undefined
  return { tlv: { tag, value: bytes.subarray(at, at + length) }, next: at + length }
}

/** Every element of a constructed element's contents, or `undefined` if any is malformed. */
export const readAll = (contents: Uint8Array): ReadonlyArray<Tlv> | undefined => {
  const out: Array<Tlv> = []
  for (let at = 0; at < contents.length;) {
    const read = readTlv(contents, at)
    if (read === undefined) return undefined
    out.push(read.tlv)
    at = read.next
  }
  return out
}

/** The single element filling `bytes` exactly, or `undefined`. */
export const readOne = (bytes: Uint8Array): Tlv | undefined => {
  const read = readTlv(bytes)
  return read !== undefined && read.next === bytes.length ? read.tlv : undefined
}

/** A two's-complement INTEGER's contents (at most 6 octets), or `undefined`. */
export const decodeInteger = (value: Uint8Array): number | undefined => {
  if (value.length === 0 || value.length > 6) return undefined
  let n = value[0]! & 0x80 ? -1 : 0
  for (const b of value) n = n * 256 + b
  return n
}

/** An INTEGER's contents for `n` (minimal two's complement). */
export const encodeInteger = (n: number): Uint8Array => {
  const bytes: Array<number> = []
  let rest = n
  do {
    bytes.unshift(((rest % 256) + 256) % 256)
    rest = Math.floor(rest / 256)
  } while (!(rest === 0 && (bytes[0]! & 0x80) === 0) && !(rest === -1 && (bytes[0]! & 0x80) !== 0))
  return Uint8Array.from(bytes)
}
