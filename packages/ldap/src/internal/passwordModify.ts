/**
 * The Password Modify extended operation's values (RFC 3062).
 *
 * ```
 * PasswdModifyRequestValue ::= SEQUENCE {
 *   userIdentity [0] OCTET STRING OPTIONAL
 *   oldPasswd    [1] OCTET STRING OPTIONAL
 *   newPasswd    [2] OCTET STRING OPTIONAL }
 * PasswdModifyResponseValue ::= SEQUENCE { genPasswd [0] OCTET STRING OPTIONAL }
 * ```
 *
 * @internal
 */
import * as ber from "./ber.ts"

export const OID = "1.3.6.1.4.1.4203.1.11.1"

export const encodeRequest = (request: {
  readonly userIdentity?: string | undefined
  readonly oldPassword?: string | undefined
  readonly newPassword?: string | undefined
}): Uint8Array =>
  ber.constructed(0x30, [
    ...(request.userIdentity === undefined ? [] : [ber.primitive(0x80, request.userIdentity)]),
    ...(request.oldPassword === undefined ? [] : [ber.primitive(0x81, request.oldPassword)]),
    ...(request.newPassword === undefined ? [] : [ber.primitive(0x82, request.newPassword)])
  ])

const strictUtf8 = new TextDecoder("utf-8", { fatal: true })

/** A request value's fields, or `undefined` when it is not a PasswdModifyRequestValue (for the memory client). */
export const decodeRequest = (bytes: Uint8Array): {
  readonly userIdentity: string | undefined
  readonly oldPassword: string | undefined
  readonly newPassword: string | undefined
} | undefined => {
  if (bytes.length === 0) return { userIdentity: undefined, oldPassword: undefined, newPassword: undefined }
  const seq = ber.readOne(bytes)
  const items = seq?.tag === 0x30 ? ber.readAll(seq.value) : undefined
  if (items === undefined) return undefined
  const field = (tag: number) => {
    const item = items.find((i) => i.tag === tag)
    return item === undefined ? undefined : new TextDecoder().decode(item.value)
  }
  return { userIdentity: field(0x80), oldPassword: field(0x81), newPassword: field(0x82) }
}

/** The response value for a generated password (or none). */
export const encodeResponse = (generated: string | undefined): Uint8Array =>
  generated === undefined ? new Uint8Array(0) : ber.constructed(0x30, [ber.primitive(0x80, generated)])

/**
 * The generated password of a response value: `undefined` when there is
 * none, `Error` text when the value is malformed.
 */
export const decodeResponse = (bytes: Uint8Array): { readonly generated: string | undefined } | { readonly malformed: string } => {
  if (bytes.length === 0) return { generated: undefined }
  const seq = ber.readOne(bytes)
  if (seq === undefined || seq.tag !== 0x30) return { malformed: "the response value is not a BER SEQUENCE" }
  const items = ber.readAll(seq.value)
  if (items === undefined) return { malformed: "the response SEQUENCE holds malformed BER" }
  const gen = items.find((i) => i.tag === 0x80)
  if (gen === undefined) return { generated: undefined }
  try {
    return { generated: strictUtf8.decode(gen.value) }
  } catch {
    return { malformed: "the generated password is not UTF-8" }
  }
}

/**
 * ldapts hands the response value over as UTF-8-decoded text, which turns
 * the `[0]` tag (0x80, not UTF-8 on its own) into U+FFFD. The value is
 * rebuilt when that is the only loss: a short-form SEQUENCE holding one
 * short-form `[0]` whose contents are intact text. Anything else is reported
 * as unreadable rather than guessed.
 */
export const responseBytesFromText = (text: string | undefined): Uint8Array | undefined => {
  if (text === undefined || text === "") return new Uint8Array(0)
  if (!text.includes("\uFFFD")) return new TextEncoder().encode(text)
  const head = [...text.slice(0, 4)]
  const payload = new TextEncoder().encode(text.slice(4))
  if (
    head.length === 4 && head[0] === "0" && head[2] === "\uFFFD" && !text.slice(4).includes("\uFFFD") &&
    head[3]!.charCodeAt(0) === payload.length && head[1]!.charCodeAt(0) === payload.length + 2
  ) {
    return Uint8Array.of(0x30, payload.length + 2, 0x80, payload.length, ...payload)
  }
  return undefined
}
