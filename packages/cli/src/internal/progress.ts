/**
 * Progress of a long job: a redrawn bar on a terminal (entries/s, ETA,
 * failures), plain periodic lines otherwise (logs, CI, pipes).
 */
export interface ProgressOptions {
  readonly label: string
  /** The expected count, when known (for the bar, the percentage and the ETA). */
  readonly total: number | undefined
  readonly unit: string
  /** Where to draw (stderr, so that stdout stays clean for data). */
  readonly stream: NodeJS.WriteStream
  /** A bar redrawn in place (default: whether `stream` is a terminal). */
  readonly tty?: boolean | undefined
  /** Time between plain lines (default 1 s) or redraws (100 ms). */
  readonly intervalMillis?: number | undefined
  readonly now?: () => number
}

export class Progress {
  private done = 0
  private failed = 0
  private readonly started: number
  private readonly tty: boolean
  private readonly timer: ReturnType<typeof setInterval>
  private lastLine = ""
  private finished = false

  constructor(private readonly options: ProgressOptions) {
    this.tty = options.tty ?? options.stream.isTTY === true
    this.started = this.now()
    this.timer = setInterval(() => this.draw(), options.intervalMillis ?? (this.tty ? 100 : 1000))
    this.timer.unref()
  }

  private now(): number {
    return this.options.now?.() ?? Date.now()
  }

  update(done: number, failed: number): void {
    this.done = done
    this.failed = failed
  }

  /** Stops redrawing and leaves the last state on screen. */
  finish(): void {
    if (this.finished) return
    this.finished = true
    clearInterval(this.timer)
    this.draw()
    if (this.tty) this.options.stream.write("\n")
  }

  /** The current line (without control characters). */
  line(): string {
    const elapsed = Math.max(0.001, (this.now() - this.started) / 1000)
    const rate = this.done / elapsed
    const total = this.options.total
    const parts: Array<string> = []
    if (total !== undefined && total > 0) {
      const ratio = Math.min(1, this.done / total)
      if (this.tty) {
        const width = 24
        const filled = Math.round(ratio * width)
        parts.push(`[${"#".repeat(filled)}${"-".repeat(width - filled)}]`)
      }
      parts.push(`${(ratio * 100).toFixed(0).padStart(3)}%`, `${this.done}/${total} ${this.options.unit}`)
    } else {
      parts.push(`${this.done} ${this.options.unit}`)
    }
    parts.push(`${rate >= 100 ? rate.toFixed(0) : rate.toFixed(1)} ${this.options.unit}/s`)
    if (total !== undefined && total > 0 && rate > 0 && this.done < total) {
      parts.push(`ETA ${duration((total - this.done) / rate)}`)
    }
    parts.push(`${this.failed} failed`)
    return `${this.options.label}: ${parts.join("  ")}`
  }

  private draw(): void {
    const line = this.line()
    if (this.tty) {
      this.options.stream.write(`\r\x1b[2K${line}`)
    } else if (line !== this.lastLine) {
      this.options.stream.write(`${line}\n`)
    }
    this.lastLine = line
  }
}

/** `75` → `1:15`, `3725` → `1:02:05`. */
export const duration = (seconds: number): string => {
  const s = Math.max(0, Math.round(seconds))
  const h = Math.floor(s / 3600)
  const m = Math.floor((s % 3600) / 60)
  const rest = String(s % 60).padStart(2, "0")
  return h > 0 ? `${h}:${String(m).padStart(2, "0")}:${rest}` : `${m}:${rest}`
}
