/**
 * `:<` URL values (RFC 2849): only `file` URLs, only when the caller turned
 * them on by naming a base directory, and only for files inside it
 * (symbolic links resolved). `file:name` is relative to the base directory;
 * `file:///abs/path` must lie inside it.
 *
 * @internal
 */
import { Effect } from "effect"
import * as fs from "node:fs/promises"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import type * as Ldif from "../Ldif.ts"
import { LdifUrlError } from "./ldifErrors.ts"
import { decodeValue, PendingUrl } from "./ldifRecord.ts"

/** Resolves a URL to a path inside `baseDirectory`, or says why not. */
const pathOf = async (url: string, baseDirectory: string): Promise<string> => {
  const scheme = /^([A-Za-z][A-Za-z0-9+.-]*):/.exec(url)?.[1]?.toLowerCase()
  if (scheme !== "file") throw new Error(`only file URLs are read (got ${scheme === undefined ? "no scheme" : `"${scheme}:"`})`)
  const base = await fs.realpath(baseDirectory)
  let candidate: string
  if (/^file:\/\//i.test(url)) {
    try {
      candidate = fileURLToPath(url)
    } catch (cause) {
      throw new Error(`not a valid file URL (${(cause as Error).message})`, { cause })
    }
  } else {
    candidate = path.resolve(base, decodeURIComponent(url.slice("file:".length)))
  }
  let real: string
  try {
    real = await fs.realpath(candidate)
  } catch (cause) {
    throw new Error(`cannot read it (${(cause as NodeJS.ErrnoException).code ?? String(cause)})`, { cause })
  }
  const relative = path.relative(base, real)
  if (relative === "" || relative.startsWith("..") || path.isAbsolute(relative)) {
    throw new Error(`the file is outside the base directory ${base}`)
  }
  return real
}

const read = (pending: PendingUrl, options: { readonly baseDirectory: string } | undefined, maxBytes: number, dn: string) =>
  Effect.tryPromise({
    try: async () => {
      if (options === undefined) {
        throw new Error("URL values are off; pass { urls: { baseDirectory } } to the parser to read file URLs from that directory")
      }
      const file = await pathOf(pending.url, options.baseDirectory)
      const stat = await fs.stat(file)
      if (!stat.isFile()) throw new Error("not a regular file")
      if (stat.size > maxBytes) throw new Error(`the file is larger than maxRecordBytes (${maxBytes} bytes)`)
      return decodeValue(await fs.readFile(file))
    },
    catch: (cause) => new LdifUrlError({ line: pending.line, url: pending.url, dn, reason: (cause as Error).message })
  })

const resolveValues = (
  values: ReadonlyArray<Ldif.Value>,
  options: { readonly baseDirectory: string } | undefined,
  maxBytes: number,
  dn: string
) =>
  Effect.forEach(values, (v) => (v instanceof PendingUrl ? read(v, options, maxBytes, dn) : Effect.succeed(v)))

/** The record with its URL values read. */
export const resolveUrls = (
  record: Ldif.LdifRecord,
  options: { readonly baseDirectory: string } | undefined,
  maxBytes: number
): Effect.Effect<Ldif.LdifRecord, LdifUrlError> =>
  Effect.gen(function*() {
    switch (record._tag) {
      case "Entry":
      case "Add": {
        const attributes: Ldif.Attributes = new Map()
        for (const [type, values] of record.attributes) {
          attributes.set(type, yield* resolveValues(values, options, maxBytes, record.dn))
        }
        return { ...record, attributes }
      }
      case "Modify": {
        const changes: Array<Ldif.Modification> = []
        for (const c of record.changes) changes.push({ ...c, values: yield* resolveValues(c.values, options, maxBytes, record.dn) })
        return { ...record, changes }
      }
      default:
        return record
    }
  })
