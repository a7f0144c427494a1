/**
 * LDIF line layer: bytes in, records of logical lines out. Works on bytes (a
 * line is split on LF, never inside a UTF-8 character), keeps each physical
 * line as a list of chunk slices and joins them once, so the time is linear
 * in the line's length however it is chunked. Strips a byte-order mark at the
 * start of the input only.
 *
 * @internal
 */

/** One logical (unfolded) line: its 1-based first physical line and its bytes (without the line ending). */
export interface LogicalLine {
  readonly line: number
  readonly bytes: Uint8Array
}

/** What the line layer hands on: a record's logical lines, or a problem at a line. */
export type LineEvent =
  | { readonly _tag: "Record"; readonly lines: ReadonlyArray<LogicalLine> }
  | { readonly _tag: "LineError"; readonly line: number; readonly reason: string; readonly tooLarge: boolean }

const LF = 0x0a
const CR = 0x0d
const SPACE = 0x20
const TAB = 0x09
const HASH = 0x23

const isBlank = (bytes: Uint8Array): boolean => {
  for (let i = 0; i < bytes.length; i++) {
    const c = bytes[i]!
    if (c !== SPACE && c !== TAB) return false
  }
  return true
}

const EMPTY = new Uint8Array(0)

/** Joins byte slices (once per folded or chunk-split line). */
const concat = (parts: ReadonlyArray<Uint8Array>): Uint8Array => {
  const b = Buffer.concat(parts)
  return new Uint8Array(b.buffer, b.byteOffset, b.length)
}

/** The line layer's state; `feed` and `end` push events to `out`. */
export class LineReader {
  /** Slices of the physical line being read. */
  private pieces: Array<Uint8Array> = []
  private lineNumber = 0
  /** Bytes of the record so far (physical, with line endings). */
  private recordBytes = 0
  /** The logical line being unfolded: its first physical line, and continuations (rare: an array only then). */
  private logical: Uint8Array | undefined
  private continuations: Array<Uint8Array> | undefined
  private logicalLine = 0
  private inComment = false
  private record: Array<LogicalLine> = []
  /** After an error in a record: skip its remaining lines, up to the next empty line. */
  private skipping = false
  /** While skipping: whether the physical line being read has anything but a line ending. */
  private skippedLineHasText = false
  private bom: Array<number> | undefined = []

  constructor(private readonly maxRecordBytes: number) {}

  feed(chunk: Uint8Array, out: Array<LineEvent>): void {
    // Plain Uint8Array views: much cheaper to slice than Buffers.
    let data = new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.length)
    if (this.bom !== undefined) {
      // Hold the first bytes until it is clear whether they are a BOM (EF BB BF).
      const held = [...this.bom, ...data.subarray(0, 3 - this.bom.length)]
      const prefix = [0xef, 0xbb, 0xbf].slice(0, held.length)
      if (held.every((b, i) => b === prefix[i])) {
        if (held.length < 3) {
          this.bom = held
          return
        }
        data = data.subarray(3 - this.bom.length)
      } else {
        data = concat([new Uint8Array(this.bom), data])
      }
      this.bom = undefined
    }
    let start = 0
    while (start <= data.length) {
      const nl = data.indexOf(LF, start)
      const end = nl < 0 ? data.length : nl
      if (end > start) this.take(data.subarray(start, end), out)
      if (nl < 0) break
      this.physical(out)
      start = nl + 1
    }
  }

  end(out: Array<LineEvent>): void {
    if (this.bom !== undefined && this.bom.length > 0) {
      const held = new Uint8Array(this.bom)
      this.bom = undefined
      this.take(held, out)
    }
    this.bom = undefined
    if (this.pieces.length > 0 || this.skippedLineHasText) this.physical(out)
    this.finishLogical()
    this.finishRecord(out)
  }

  /** Adds a slice of the current physical line. */
  private take(slice: Uint8Array, out: Array<LineEvent>): void {
    if (slice.length === 0) return
    if (this.skipping) {
      if (!this.skippedLineHasText) {
        for (let i = 0; i < slice.length; i++) {
          const c = slice[i]!
          if (c !== SPACE && c !== TAB && c !== CR) {
            this.skippedLineHasText = true
            break
          }
        }
      }
      return
    }
    this.recordBytes += slice.length
    if (this.recordBytes > this.maxRecordBytes) {
      this.fail(out, this.lineNumber + 1, `the record is larger than maxRecordBytes (${this.maxRecordBytes} bytes)`, true)
      this.skippedLineHasText = true
      return
    }
    this.pieces.push(slice)
  }

  /** A physical line ended (at LF, or at the end of the input). */
  private physical(out: Array<LineEvent>): void {
    const n = ++this.lineNumber
    if (this.skipping) {
      const text = this.skippedLineHasText
      this.skippedLineHasText = false
      this.pieces.length = 0
      if (!text) {
        // An empty line ends the bad record.
        this.skipping = false
        this.recordBytes = 0
        this.inComment = false
      }
      return
    }
    this.recordBytes += 1
    const count = this.pieces.length
    let bytes = count === 1 ? this.pieces[0]! : count === 0 ? EMPTY : concat(this.pieces)
    this.pieces.length = 0
    if (bytes.length > 0 && bytes[bytes.length - 1] === CR) bytes = bytes.subarray(0, bytes.length - 1)
    const cr = bytes.indexOf(CR)
    if (cr >= 0) {
      return this.fail(
        out,
        n,
        "a carriage return (CR) not followed by a line feed: LDIF lines end with LF or CR LF " +
          "(convert the file's line endings, or base64-encode a value holding CR)",
        false
      )
    }
    if (bytes.length === 0 || isBlank(bytes)) {
      // An empty line ends the record. A line of spaces is taken as one too (never as a
      // continuation that would merge the next record into this one).
      this.finishLogical()
      this.inComment = false
      return this.finishRecord(out)
    }
    if (bytes[0] === SPACE) {
      if (this.inComment) return
      if (this.logical === undefined) return this.fail(out, n, "continuation line with nothing to continue", false)
      ;(this.continuations ??= []).push(bytes.subarray(1))
      return
    }
    this.finishLogical()
    if (bytes[0] === HASH) {
      this.inComment = true
      return
    }
    this.inComment = false
    this.logical = bytes
    this.logicalLine = n
  }

  private finishLogical(): void {
    if (this.logical !== undefined) {
      const bytes = this.continuations === undefined ? this.logical : concat([this.logical, ...this.continuations])
      this.record.push({ line: this.logicalLine, bytes })
      this.logical = undefined
      this.continuations = undefined
    }
  }

  private finishRecord(out: Array<LineEvent>): void {
    this.recordBytes = 0
    const lines = this.record
    this.record = []
    if (lines.length > 0) out.push({ _tag: "Record", lines })
  }

  private fail(out: Array<LineEvent>, line: number, reason: string, tooLarge: boolean): void {
    out.push({ _tag: "LineError", line, reason, tooLarge })
    // Drop the record read so far and skip to its end.
    this.record = []
    this.logical = undefined
    this.continuations = undefined
    this.pieces.length = 0
    this.skipping = true
  }
}
