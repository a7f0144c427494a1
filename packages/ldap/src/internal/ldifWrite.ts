/**
 * LDIF writer (RFC 2849): safe values as text, others in base64, lines
 * folded at 76 columns.
 *
 * @internal
 */
import type * as Ldif from "../Ldif.ts"

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

const field = (type: string, value: Ldif.Value): string =>
  fold(
    typeof value !== "string"
      ? `${type}:: ${Buffer.from(value.buffer, value.byteOffset, value.length).toString("base64")}`
      : isSafe(value)
      ? `${type}: ${value}`
      : `${type}:: ${Buffer.from(value, "utf8").toString("base64")}`
  )

const controlLine = (control: Ldif.Control): string =>
  fold(
    `control: ${control.oid} ${control.critical ? "true" : "false"}` +
      (control.value === undefined ? "" : `:: ${Buffer.from(control.value).toString("base64")}`)
  )

/** One record as LDIF text, ending with a blank line. */
export const format = (record: Ldif.LdifRecord): string => {
  const lines = [field("dn", record.dn)]
  if (record._tag !== "Entry") for (const c of record.controls ?? []) lines.push(controlLine(c))
  switch (record._tag) {
    case "Entry":
    case "Add":
      if (record._tag === "Add") lines.push("changetype: add")
      for (const [type, values] of record.attributes) for (const v of values) lines.push(field(type, v))
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
