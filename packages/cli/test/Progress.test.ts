import { describe, expect, it } from "@effect/vitest"
import { duration, Progress } from "../src/internal/progress.ts"

/** A stream that keeps what is written. */
const sink = (isTTY: boolean) => {
  const chunks: Array<string> = []
  const stream = { isTTY, write: (chunk: string) => chunks.push(chunk) > 0 } as unknown as NodeJS.WriteStream
  return { stream, chunks }
}

describe("Progress", () => {
  it("a terminal gets a bar redrawn in place with the rate, the ETA and the failures", () => {
    let now = 0
    const { stream, chunks } = sink(true)
    const progress = new Progress({ label: "import", total: 200, unit: "entries", stream, now: () => now, intervalMillis: 60_000 })
    now = 10_000
    progress.update(50, 2)
    expect(progress.line()).toBe("import: [######------------------]   25%  50/200 entries  5.0 entries/s  ETA 0:30  2 failed")
    now = 20_000
    progress.update(200, 2)
    progress.finish()
    expect(chunks.join("")).toBe("\r\u001b[2Kimport: [########################]  100%  200/200 entries  10.0 entries/s  2 failed\n")
    progress.finish() // idempotent
    expect(chunks.length).toBe(2)
  })

  it("elsewhere, plain lines (no control characters), and no repeat of an unchanged line", () => {
    let now = 0
    const { stream, chunks } = sink(false)
    const progress = new Progress({ label: "export", total: undefined, unit: "entries", stream, now: () => now, intervalMillis: 60_000 })
    now = 2_000
    progress.update(500, 0)
    progress.finish()
    expect(chunks).toEqual(["export: 500 entries  250 entries/s  0 failed\n"])
  })

  it("formats durations as m:ss or h:mm:ss", () => {
    expect(duration(0)).toBe("0:00")
    expect(duration(75)).toBe("1:15")
    expect(duration(3725)).toBe("1:02:05")
    expect(duration(-3)).toBe("0:00")
  })
})
