/**
 * Which attributes hold bytes, from the server's schema: the attribute types
 * of the subschema subentry (RFC 4512 4.2) whose syntax — their own or their
 * supertype's — is a binary one.
 *
 * @internal
 */
import type { Client } from "ldapts"
import { rawValues, searchPages } from "./ldapWire.ts"

/** Syntaxes whose values are bytes, not text (RFC 4517 and RFC 2252/4523 OIDs). */
export const BINARY_SYNTAXES: ReadonlySet<string> = new Set(
  [
    "4", // Audio
    "5", // Binary
    "8", // Certificate
    "9", // Certificate List
    "10", // Certificate Pair
    "23", // Fax
    "28", // JPEG
    "40", // Octet String
    "49" // Supported Algorithm
  ].map((n) => `1.3.6.1.4.1.1466.115.121.1.${n}`)
)

/** Used when the schema cannot be read (lower case). */
export const WELL_KNOWN_BINARY: ReadonlyArray<string> = [
  "jpegphoto",
  "photo",
  "audio",
  "usercertificate",
  "cacertificate",
  "authorityrevocationlist",
  "certificaterevocationlist",
  "crosscertificatepair",
  "usersmimecertificate",
  "userpkcs12",
  "deltarevocationlist",
  "supportedalgorithms",
  "objectguid",
  "objectsid",
  "thumbnailphoto",
  "msexchmailboxguid"
]

interface AttributeTypeDefinition {
  readonly names: ReadonlyArray<string>
  readonly sup: string | undefined
  readonly syntax: string | undefined
}

const TOKENS = /'[^']*'|\(|\)|[^\s()']+/g

/** Parses one `attributeTypes` value: `( oid NAME ( 'a' 'b' ) SUP x SYNTAX oid{len} … )`. */
export const parseDefinition = (definition: string): AttributeTypeDefinition | undefined => {
  const tokens = definition.match(TOKENS) ?? []
  if (tokens[0] !== "(" || tokens.length < 2) return undefined
  const names = [tokens[1]!]
  let sup: string | undefined
  let syntax: string | undefined
  for (let i = 2; i < tokens.length; i++) {
    const t = tokens[i]!.toUpperCase()
    if (t === "NAME") {
      if (tokens[i + 1] === "(") {
        for (i += 2; i < tokens.length && tokens[i] !== ")"; i++) names.push(tokens[i]!.replace(/'/g, ""))
      } else names.push((tokens[++i] ?? "").replace(/'/g, ""))
    } else if (t === "SUP") sup = tokens[++i]?.replace(/'/g, "")
    else if (t === "SYNTAX") syntax = tokens[++i]?.replace(/'/g, "").replace(/\{\d+\}$/, "")
  }
  return { names, sup, syntax }
}

/** Lower-case names and OIDs of the attribute types with a binary syntax. */
export const binaryTypesOf = (definitions: ReadonlyArray<string>): Set<string> => {
  const byName = new Map<string, AttributeTypeDefinition>()
  for (const d of definitions) {
    const parsed = parseDefinition(d)
    if (parsed !== undefined) for (const n of parsed.names) byName.set(n.toLowerCase(), parsed)
  }
  const syntaxOf = (def: AttributeTypeDefinition, depth: number): string | undefined =>
    def.syntax ?? (def.sup === undefined || depth > 16 ? undefined : mapGet(byName, def.sup, depth))
  const mapGet = (m: Map<string, AttributeTypeDefinition>, name: string, depth: number) => {
    const d = m.get(name.toLowerCase())
    return d === undefined ? undefined : syntaxOf(d, depth + 1)
  }
  const binary = new Set<string>()
  for (const [name, def] of byName) {
    const syntax = syntaxOf(def, 0)
    if (syntax !== undefined && BINARY_SYNTAXES.has(syntax)) binary.add(name)
  }
  return binary
}

const textValues = async (client: Client, base: string, attribute: string, filter: string): Promise<Array<string>> => {
  const values: Array<string> = []
  for await (const page of searchPages(client, base, {
    scope: "base",
    filter,
    attributes: [attribute],
    pageSize: 0,
    limitsAsTruncation: false
  })) {
    for (const entry of page.entries) {
      for (const a of entry.attributes) {
        if (a.type.toLowerCase() === attribute.toLowerCase()) values.push(...rawValues(a).map((b) => b.toString("utf8")))
      }
    }
  }
  return values
}

/** Reads the binary attribute types from the server's subschema subentry. */
export const loadBinaryTypes = async (client: Client): Promise<Set<string>> => {
  const [subschema] = await textValues(client, "", "subschemaSubentry", "(objectClass=*)")
  // A definite answer (like a refusal's result code): not worth asking again.
  if (subschema === undefined) throw Object.assign(new Error("the root DSE names no subschemaSubentry"), { code: 32 })
  return binaryTypesOf(await textValues(client, subschema, "attributeTypes", "(objectClass=subschema)"))
}
