/**
 * Renders `bench-results.json` as Markdown tables, one per suite (for
 * BENCHMARKS.md):
 *
 *   npx tsx bench/results-table.ts [--suite pool] [--file bench-results.json]
 */
import * as fs from "node:fs"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import { formatValue, renderTable } from "./harness/report.ts"
import type { ResultRow } from "./harness/types.ts"

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..")
const args = process.argv.slice(2)
const flag = (name: string) => {
  const i = args.indexOf(`--${name}`)
  return i >= 0 ? args[i + 1] : undefined
}
const file = path.resolve(flag("file") ?? path.join(root, "bench-results.json"))
const only = flag("suite")
const rows = JSON.parse(fs.readFileSync(file, "utf8")) as Array<ResultRow>

const suites = [...new Set(rows.map((r) => r.suite))].filter((s) => only === undefined || s === only)
for (const suite of suites) {
  const mine = rows.filter((r) => r.suite === suite)
  const peers = [...new Set(mine.map((r) => r.peer))]
  const keys = [...new Set(mine.map((r) => `${r.case}\u0000${r.metric}`))]
  const body = keys.map((key) => {
    const [c, metric] = key.split("\u0000") as [string, string]
    const group = mine.filter((r) => r.case === c && r.metric === metric)
    const first = group[0]!
    const of = (peer: string) => group.find((r) => r.peer === peer)
    const value = (v: number | null | undefined) => formatValue(v ?? Number.NaN, first.unit)
    const ratio = (v: number | null | undefined) => (v === null || v === undefined ? "n/a" : `${v.toFixed(2)}x`)
    return [
      c,
      `${metric} (${first.unit})`,
      value(first.tether),
      ...peers.map((p) => value(of(p)?.peerValue)),
      ...peers.map((p) => ratio(of(p)?.ratio))
    ]
  })
  console.log(`\n### ${suite}\n`)
  console.log(renderTable(["case", "metric", "Tether", ...peers, ...peers.map((p) => `vs ${p}`)], body, { markdown: true }))
}
