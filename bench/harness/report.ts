/** Turning suite results into table text and `bench-results.json` rows. */
import * as fs from "node:fs"
import * as path from "node:path"
import type { Measurement, ResultRow, SuiteResult } from "./types.ts"

/** Ours relative to the peer, oriented so that > 1 means ours is better. */
export const ratioOf = (higherIsBetter: boolean, tether: number, peer: number): number => {
  if (!Number.isFinite(tether) || !Number.isFinite(peer) || tether <= 0 || peer <= 0) return Number.NaN
  return higherIsBetter ? tether / peer : peer / tether
}

const round = (value: number, digits: number): number => {
  if (!Number.isFinite(value)) return value
  const factor = 10 ** digits
  return Math.round(value * factor) / factor
}

/** One row per (case, metric, peer). */
export const toRows = (suite: string, result: SuiteResult): Array<ResultRow> =>
  result.measurements.flatMap((m: Measurement) =>
    result.peers.map((peer): ResultRow => {
      const peerValue = m.peers[peer] ?? Number.NaN
      return {
        suite,
        case: m.case,
        metric: m.metric,
        unit: m.unit,
        higherIsBetter: m.higherIsBetter,
        tether: round(m.tether, 3),
        peer,
        peerValue: round(peerValue, 3),
        ratio: round(ratioOf(m.higherIsBetter, m.tether, peerValue), 3)
      }
    })
  )

/**
 * Replaces the rows of the suites that ran (`replaced`) and keeps every other
 * suite's rows, so running one suite does not erase the others' results.
 */
export const mergeResults = (
  file: string,
  replaced: ReadonlySet<string>,
  rows: ReadonlyArray<ResultRow>
): Array<ResultRow> => {
  let existing: Array<ResultRow> = []
  if (fs.existsSync(file)) {
    try {
      const parsed: unknown = JSON.parse(fs.readFileSync(file, "utf8"))
      if (Array.isArray(parsed)) existing = parsed as Array<ResultRow>
      else console.warn(`${file} is not an array; rewriting it`)
    } catch (error) {
      console.warn(`${file} is not valid JSON (${String(error)}); rewriting it`)
    }
  }
  const merged = [...existing.filter((row) => !replaced.has(row.suite)), ...rows]
  fs.mkdirSync(path.dirname(file), { recursive: true })
  fs.writeFileSync(file, JSON.stringify(merged, null, 2) + "\n")
  return merged
}

/** A value for the table: throughput in M ops/s, latency in µs with 3 significant digits. */
export const formatValue = (value: number, unit: string): string => {
  if (!Number.isFinite(value)) return "n/a"
  if (unit === "ops/s") {
    return value >= 1e6 ? `${(value / 1e6).toFixed(3)}M` : value >= 1e3 ? `${(value / 1e3).toFixed(1)}k` : value.toFixed(0)
  }
  if (value >= 100) return value.toFixed(0)
  if (value >= 10) return value.toFixed(1)
  return value.toFixed(2)
}

const formatRatio = (ratio: number): string => (Number.isFinite(ratio) ? `${ratio.toFixed(2)}x` : "n/a")

/** Renders rows as a fixed-width text table (or a Markdown one). */
export const renderTable = (
  header: ReadonlyArray<string>,
  body: ReadonlyArray<ReadonlyArray<string>>,
  options: { readonly markdown?: boolean; readonly rightAlignFrom?: number } = {}
): string => {
  const from = options.rightAlignFrom ?? 2
  const widths = header.map((h, i) => Math.max(h.length, ...body.map((row) => (row[i] ?? "").length)))
  const pad = (cell: string, i: number) => (i >= from ? cell.padStart(widths[i]!) : cell.padEnd(widths[i]!))
  if (options.markdown === true) {
    const line = (cells: ReadonlyArray<string>) => `| ${cells.map(pad).join(" | ")} |`
    const rule = `|${widths.map((w, i) => (i >= from ? `${"-".repeat(w + 1)}:` : `${"-".repeat(w + 2)}`)).join("|")}|`
    return [line(header), rule, ...body.map(line)].join("\n")
  }
  const line = (cells: ReadonlyArray<string>) => cells.map(pad).join("  ")
  return [line(header), widths.map((w) => "-".repeat(w)).join("  "), ...body.map(line)].join("\n")
}

/** The human table of one suite: case, metric, ours, each peer, then ours relative to each peer. */
export const suiteTable = (result: SuiteResult, options: { readonly markdown?: boolean } = {}): string => {
  const header = [
    "case",
    "metric",
    result.tetherLabel,
    ...result.peers,
    ...result.peers.map((peer) => `vs ${peer}`)
  ]
  const body = result.measurements.map((m) => [
    m.case,
    `${m.metric} (${m.unit})`,
    formatValue(m.tether, m.unit),
    ...result.peers.map((peer) => formatValue(m.peers[peer] ?? Number.NaN, m.unit)),
    ...result.peers.map((peer) => formatRatio(ratioOf(m.higherIsBetter, m.tether, m.peers[peer] ?? Number.NaN)))
  ])
  return renderTable(header, body, options)
}
