/**
 * Tether benchmarks.
 *
 *   npm run bench                          # every suite, full length
 *   npm run bench -- --quick               # every suite, short (a full run stays under 5 minutes)
 *   npm run bench -- --suite pool          # one suite (repeat --suite, or give a comma list)
 *   npm run bench -- --suite pool --markdown   # tables as Markdown (for BENCHMARKS.md)
 *   npm run bench -- --list                # the registered suites
 *
 * Prints a table per suite and writes `bench-results.json` at the repository
 * root: the rows of the suites that ran replace their previous rows, the
 * other suites' rows are kept. Suites are registered in `bench/suites/index.ts`.
 * The method and the latest results are in BENCHMARKS.md.
 */
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import { mergeResults, suiteTable, toRows } from "./harness/report.ts"
import { useTscTransform } from "./harness/transpile.ts"
import type { ResultRow, Suite } from "./harness/types.ts"

// The code under test is compiled as `tsc` would compile it, not with tsx's
// name-keeping transform (see harness/transpile-hooks.mjs); BENCH_TSX_TRANSFORM=1 opts out.
const transform = useTscTransform()
const { suites } = await import("./suites/index.ts")

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..")

interface Args {
  readonly suites: ReadonlyArray<string>
  readonly quick: boolean
  readonly markdown: boolean
  readonly list: boolean
  readonly help: boolean
  readonly out: string
}

const usage = `usage: npm run bench -- [--suite NAME[,NAME…]]… [--quick] [--markdown] [--out FILE] [--list]

  --suite NAME   run only this suite (repeatable, or a comma list); default: all
  --quick        shorter cases and fewer rounds
  --markdown     print the tables as Markdown
  --out FILE     where to write the results (default: bench-results.json at the repo root)
  --list         list the suites and exit`

const parseArgs = (argv: ReadonlyArray<string>): Args => {
  const selected: Array<string> = []
  let quick = false
  let markdown = false
  let list = false
  let help = false
  let out = path.join(root, "bench-results.json")
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!
    const [flag, inline] = arg.startsWith("--") && arg.includes("=") ? [arg.slice(0, arg.indexOf("=")), arg.slice(arg.indexOf("=") + 1)] : [arg, undefined]
    const value = () => {
      const v = inline ?? argv[++i]
      if (v === undefined || v.startsWith("--")) throw new Error(`${flag} needs a value`)
      return v
    }
    switch (flag) {
      case "--suite":
      case "-s":
        selected.push(...value().split(",").map((s) => s.trim()).filter((s) => s !== ""))
        break
      case "--quick":
      case "-q":
        quick = true
        break
      case "--markdown":
        markdown = true
        break
      case "--out":
        out = path.resolve(value())
        break
      case "--list":
        list = true
        break
      case "--help":
      case "-h":
        help = true
        break
      default:
        throw new Error(`unknown argument: ${arg}`)
    }
  }
  return { suites: selected, quick, markdown, list, help, out }
}

const effectVersion = (): string => {
  try {
    const pkg = JSON.parse(fs.readFileSync(path.join(root, "node_modules/effect/package.json"), "utf8")) as { version?: string }
    return pkg.version ?? "?"
  } catch {
    return "?"
  }
}

const main = async (): Promise<number> => {
  let args: Args
  try {
    args = parseArgs(process.argv.slice(2))
  } catch (error) {
    console.error(`${(error as Error).message}\n\n${usage}`)
    return 2
  }
  if (args.help) {
    console.log(usage)
    return 0
  }
  if (args.list) {
    for (const suite of suites) console.log(`${suite.name.padEnd(12)} ${suite.description}`)
    return 0
  }
  const unknown = args.suites.filter((name) => !suites.some((s) => s.name === name))
  if (unknown.length > 0) {
    console.error(`unknown suite(s): ${unknown.join(", ")}; known: ${suites.map((s) => s.name).join(", ")}`)
    return 2
  }
  const chosen: ReadonlyArray<Suite> = args.suites.length === 0 ? suites : suites.filter((s) => args.suites.includes(s.name))

  const cpus = os.cpus()
  console.log(
    `Tether bench — ${new Date().toISOString()} — node ${process.version}, effect ${effectVersion()}, ` +
      `${cpus.length} × ${cpus[0]?.model.trim() ?? "?"}, ${os.platform()} ${os.arch()}, ${transform} transform` +
      `${args.quick ? " — quick mode" : ""}`
  )

  const ran = new Set<string>()
  const rows: Array<ResultRow> = []
  let failed = 0
  for (const suite of chosen) {
    console.log(`\n== ${suite.name}: ${suite.description}`)
    const missing: Array<string> = []
    for (const requirement of suite.requires ?? []) {
      const reason = await requirement.check()
      if (reason !== undefined) missing.push(reason)
    }
    if (missing.length > 0) {
      console.log(`SKIPPED ${suite.name}: unavailable here: ${missing.join("; ")}. Its previous rows in the results file are kept.`)
      continue
    }
    const started = Date.now()
    try {
      const result = await suite.run({ quick: args.quick, log: (line) => process.stderr.write(`${line}\n`) })
      console.log("")
      console.log(suiteTable(result, { markdown: args.markdown }))
      for (const note of result.notes ?? []) console.log(`  ${note}`)
      console.log(`  (${suite.name}: ${((Date.now() - started) / 1000).toFixed(1)} s)`)
      rows.push(...toRows(suite.name, result))
      ran.add(suite.name)
    } catch (error) {
      failed++
      console.error(`FAILED ${suite.name}: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`)
    }
  }

  if (ran.size > 0) {
    const merged = mergeResults(args.out, ran, rows)
    console.log(`\nwrote ${rows.length} rows (${[...ran].join(", ")}) to ${path.relative(process.cwd(), args.out) || args.out}; ${merged.length} rows in total`)
  }
  return failed > 0 ? 1 : 0
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    console.error(error)
    process.exit(1)
  }
)
