/**
 * Reading and parsing the root DSE (RFC 4512 5.1) and the subschema
 * subentry (RFC 4512 4.2) with raw ldapts calls.
 *
 * @internal
 */
import type { Client } from "ldapts"
import type * as RootDse from "../RootDse.ts"
import { parseDefinition } from "./ldapSchema.ts"
import { rawValues, searchPages } from "./ldapWire.ts"

const TOKENS = /'[^']*'|\(|\)|\$|[^\s()'$]+/g

const unquote = (s: string) => s.replace(/^'|'$/g, "")

/** A `( a $ b )` list or a single name, starting at `tokens[i]`; returns the names and the index after them. */
const readList = (tokens: ReadonlyArray<string>, i: number): [Array<string>, number] => {
  if (tokens[i] !== "(") return [tokens[i] === undefined ? [] : [unquote(tokens[i]!)], i + 1]
  const out: Array<string> = []
  let j = i + 1
  for (; j < tokens.length && tokens[j] !== ")"; j++) if (tokens[j] !== "$") out.push(unquote(tokens[j]!))
  return [out, j + 1]
}

/** Parses one `objectClasses` value; `undefined` when it is not a definition. */
export const parseObjectClass = (definition: string): RootDse.ObjectClass | undefined => {
  const tokens = definition.match(TOKENS) ?? []
  if (tokens[0] !== "(" || tokens.length < 2) return undefined
  const oid = tokens[1]!
  let names: Array<string> = []
  let sup: Array<string> = []
  let must: Array<string> = []
  let may: Array<string> = []
  let kind: RootDse.ObjectClass["kind"] = "structural"
  for (let i = 2; i < tokens.length;) {
    const t = tokens[i]!.toUpperCase()
    if (t === "NAME") [names, i] = readList(tokens, i + 1)
    else if (t === "SUP") [sup, i] = readList(tokens, i + 1)
    else if (t === "MUST") [must, i] = readList(tokens, i + 1)
    else if (t === "MAY") [may, i] = readList(tokens, i + 1)
    else if (t === "DESC") i += 2
    else {
      if (t === "ABSTRACT") kind = "abstract"
      else if (t === "AUXILIARY") kind = "auxiliary"
      i++
    }
  }
  return { oid, names, sup, kind, must, may }
}

/** The attribute types of a subschema, syntaxes resolved through `SUP`. */
export const parseAttributeTypes = (definitions: ReadonlyArray<string>): Map<string, RootDse.AttributeType> => {
  const parsed = definitions.flatMap((d) => {
    const p = parseDefinition(d)
    const single = /\sSINGLE-VALUE[\s)]/i.test(d)
    return p === undefined ? [] : [{ ...p, single }]
  })
  const byName = new Map(parsed.flatMap((p) => p.names.map((n) => [n.toLowerCase(), p] as const)))
  const syntaxOf = (p: (typeof parsed)[number], depth: number): string | undefined =>
    p.syntax ?? (p.sup === undefined || depth > 16 ? undefined : (() => {
      const parent = byName.get(p.sup.toLowerCase())
      return parent === undefined ? undefined : syntaxOf(parent, depth + 1)
    })())
  const out = new Map<string, RootDse.AttributeType>()
  for (const p of parsed) {
    const type: RootDse.AttributeType = {
      oid: p.names[0]!,
      names: p.names.slice(1),
      sup: p.sup,
      syntax: syntaxOf(p, 0),
      singleValue: p.single
    }
    for (const n of p.names) out.set(n.toLowerCase(), type)
  }
  return out
}

/** Every value (as text) of every requested attribute of the base entry `dn`. */
const baseValues = async (
  client: Client,
  dn: string,
  filter: string,
  attributes: ReadonlyArray<string>
): Promise<Map<string, Array<string>>> => {
  const out = new Map<string, Array<string>>()
  for await (const page of searchPages(client, dn, { scope: "base", filter, attributes, pageSize: 0, limitsAsTruncation: false })) {
    for (const entry of page.entries) {
      for (const a of entry.attributes) {
        const key = a.type.toLowerCase()
        out.set(key, [...(out.get(key) ?? []), ...rawValues(a).map((b) => b.toString("utf8"))])
      }
    }
  }
  return out
}

const ROOT_ATTRIBUTES = [
  "namingContexts",
  "supportedControl",
  "supportedExtension",
  "supportedFeatures",
  "supportedSASLMechanisms",
  "supportedLDAPVersion",
  "subschemaSubentry",
  "vendorName",
  "vendorVersion",
  "+"
]

/** Reads the root DSE and, when `schema`, the subschema it names. */
export const read = async (client: Client, endpoint: string, schema: boolean): Promise<RootDse.Directory> => {
  const root = await baseValues(client, "", "(objectClass=*)", ROOT_ATTRIBUTES)
  const all = (name: string) => root.get(name.toLowerCase()) ?? []
  const rootDse: RootDse.RootDse = {
    endpoint,
    namingContexts: all("namingContexts"),
    supportedControls: all("supportedControl"),
    supportedExtensions: all("supportedExtension"),
    supportedFeatures: all("supportedFeatures"),
    supportedSaslMechanisms: all("supportedSASLMechanisms"),
    supportedLdapVersions: all("supportedLDAPVersion"),
    subschemaSubentry: all("subschemaSubentry")[0],
    vendorName: all("vendorName")[0],
    vendorVersion: all("vendorVersion")[0]
  }
  if (!schema || rootDse.subschemaSubentry === undefined) return { rootDse, subschema: undefined }
  const values = await baseValues(client, rootDse.subschemaSubentry, "(objectClass=subschema)", [
    "attributeTypes",
    "objectClasses"
  ])
  const objectClasses = new Map<string, RootDse.ObjectClass>()
  for (const d of values.get("objectclasses") ?? []) {
    const oc = parseObjectClass(d)
    if (oc !== undefined) for (const n of [oc.oid, ...oc.names]) objectClasses.set(n.toLowerCase(), oc)
  }
  return { rootDse, subschema: { attributeTypes: parseAttributeTypes(values.get("attributetypes") ?? []), objectClasses } }
}
