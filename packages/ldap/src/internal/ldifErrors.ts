/**
 * The LDIF errors (re-exported by `Ldif`). Kept apart so the internal parser
 * modules can build them without importing `Ldif.ts`.
 *
 * @internal
 */
import { Data } from "effect"

/**
 * The input is not valid LDIF; `line` is the 1-based line where the problem
 * is, `dn` the record's DN when it was read before the problem.
 *
 * @since 0.1.0
 * @category errors
 */
export class LdifParseError extends Data.TaggedError("LdifParseError")<{
  readonly line: number
  readonly reason: string
  readonly dn?: string | undefined
}> {
  override get message() {
    return `LDIF line ${this.line}: ${this.reason}`
  }
}

/**
 * A record is larger than the `maxRecordBytes` parse option: it is not read
 * into memory. Raise the option if the file is trusted.
 *
 * @since 0.2.0
 * @category errors
 */
export class LdifRecordTooLarge extends Data.TaggedError("LdifRecordTooLarge")<{
  readonly line: number
  readonly maxRecordBytes: number
}> {
  override get message() {
    return `LDIF line ${this.line}: the record is larger than ${this.maxRecordBytes} bytes (the maxRecordBytes option); ` +
      `raise maxRecordBytes if the file is trusted`
  }
}

/**
 * A `:<` URL value could not be used: URL values are off (pass
 * `urls: { baseDirectory }` to turn them on), the scheme is not `file`, the
 * file is outside the base directory, or it cannot be read.
 *
 * @since 0.2.0
 * @category errors
 */
export class LdifUrlError extends Data.TaggedError("LdifUrlError")<{
  readonly line: number
  readonly url: string
  readonly reason: string
  readonly dn?: string | undefined
}> {
  override get message() {
    return `LDIF line ${this.line}: the URL value <${this.url}> cannot be used: ${this.reason}`
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

/**
 * A problem with one record of the input (the parser can go on with the next one).
 *
 * @since 0.2.0
 * @category errors
 */
export type LdifRecordError = LdifParseError | LdifRecordTooLarge | LdifUrlError

const TAGS = new Set(["LdifParseError", "LdifRecordTooLarge", "LdifUrlError"])

/**
 * Whether a value is an {@link LdifRecordError}.
 *
 * @since 0.2.0
 * @category guards
 */
export const isRecordError = (u: unknown): u is LdifRecordError =>
  typeof u === "object" && u !== null && "_tag" in u && TAGS.has((u as { _tag: string })._tag)
