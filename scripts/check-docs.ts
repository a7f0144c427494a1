/**
 * Docs that compile: typechecks every ```ts block of an `@example` in the doc
 * comments under packages/*\/src, and every ```ts block of README.md and
 * packages/*\/README.md, against the workspace's sources (the `@tether/source`
 * condition) with the project's strict settings.
 *
 *   npm run docs:check                       # everything
 *   npm run docs:check -- packages/pg README.md   # only files under these paths
 *
 * Prints one line per error, `file:line:column - error TSnnnn: message`, with
 * the line in the file the example is written in, then a summary.
 *
 * Any failing block fails the run (exit 1): there is no list of known
 * failures, every example must compile. Each block is compiled as its own module (names do not
 * clash, top-level `await` works); a block needs complete imports and may
 * `declare const` what it leaves out. A block fenced as ```ts no-check is
 * skipped (say why next to it).
 */
import * as fs from "node:fs"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import ts from "typescript"

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..")

/** One extracted block: where it is written, and its code. */
interface Block {
  readonly file: string
  /** 1-based line of the block's first code line. */
  readonly line: number
  /** Column offset of the code in the file (the ` * ` prefix in doc comments). */
  readonly column: number
  readonly code: string
}

const FENCE_OPEN = /^```(ts|typescript)(\s+.*)?$/
const listFiles = (dir: string, keep: (file: string) => boolean): Array<string> =>
  fs.existsSync(dir)
    ? fs.readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
      const full = path.join(dir, entry.name)
      if (entry.isDirectory()) return entry.name === "node_modules" || entry.name === "dist" ? [] : listFiles(full, keep)
      return keep(full) ? [full] : []
    })
    : []

/** ```ts blocks of a Markdown file. */
export const markdownBlocks = (file: string, text: string): Array<Block> => {
  const blocks: Array<Block> = []
  const lines = text.split("\n")
  for (let i = 0; i < lines.length; i++) {
    const open = FENCE_OPEN.exec(lines[i]!.trim())
    if (open === null || lines[i]!.startsWith(" ")) continue
    const start = i + 1
    let end = start
    while (end < lines.length && lines[end]!.trim() !== "```") end++
    if (!(open[2] ?? "").includes("no-check")) {
      blocks.push({ file, line: start + 1, column: 0, code: lines.slice(start, end).join("\n") })
    }
    i = end
  }
  return blocks
}

/** ```ts blocks that follow an `@example` tag in the doc comments of a source file. */
export const docCommentBlocks = (file: string, text: string): Array<Block> => {
  const blocks: Array<Block> = []
  const lines = text.split("\n")
  let inComment = false
  let afterExample = false
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!
    if (!inComment) {
      if (/^\s*\/\*\*/.test(line) && !/\*\/\s*$/.test(line)) {
        inComment = true
        afterExample = false
      }
      continue
    }
    if (/\*\/\s*$/.test(line)) {
      inComment = false
      continue
    }
    const prefix = /^\s*\* ?/.exec(line)
    const content = prefix === null ? line : line.slice(prefix[0].length)
    if (/^@example\b/.test(content)) afterExample = true
    else if (/^@\w+/.test(content)) afterExample = false
    const open = FENCE_OPEN.exec(content.trim())
    if (afterExample && open !== null) {
      const start = i + 1
      const code: Array<string> = []
      let end = start
      for (; end < lines.length; end++) {
        const l = lines[end]!
        if (/\*\/\s*$/.test(l)) break
        const p = /^\s*\* ?/.exec(l)
        const c = p === null ? l : l.slice(p[0].length)
        if (c.trim() === "```") break
        code.push(c)
      }
      const column = (/^\s*\* ?/.exec(lines[start] ?? "")?.[0].length) ?? 0
      if (!(open[2] ?? "").includes("no-check")) blocks.push({ file, line: start + 1, column, code: code.join("\n") })
      i = end
    }
  }
  return blocks
}

const collect = (filters: ReadonlyArray<string>): Array<Block> => {
  const packages = path.join(root, "packages")
  const sources = listFiles(packages, (f) => f.endsWith(".ts") && f.includes(`${path.sep}src${path.sep}`))
  const readmes = [path.join(root, "README.md"), ...listFiles(packages, (f) => path.basename(f) === "README.md")]
  const wanted = (file: string) =>
    filters.length === 0 || filters.some((f) => path.resolve(root, f) === file || file.startsWith(path.resolve(root, f) + path.sep))
  return [
    ...sources.filter(wanted).flatMap((f) => docCommentBlocks(f, fs.readFileSync(f, "utf8"))),
    ...readmes.filter((f) => fs.existsSync(f) && wanted(f)).flatMap((f) => markdownBlocks(f, fs.readFileSync(f, "utf8")))
  ]
}

const main = () => {
  const filters = process.argv.slice(2).filter((a) => !a.startsWith("--"))
  const blocks = collect(filters)
  // The blocks are written inside the repository so that `@tether/*` and `effect` resolve from its node_modules.
  const dir = path.join(root, "node_modules", ".cache", "tether-docs-check")
  fs.rmSync(dir, { recursive: true, force: true })
  fs.mkdirSync(dir, { recursive: true })
  const byFile = new Map<string, Block>()
  blocks.forEach((block, i) => {
    const name = path.join(dir, `example${i}.ts`)
    // `export {}` makes every block a module: its own scope, top-level await allowed.
    fs.writeFileSync(name, `${block.code}\nexport {}\n`)
    byFile.set(name, block)
  })
  const base = ts.readConfigFile(path.join(root, "tsconfig.base.json"), ts.sys.readFile)
  const parsed = ts.parseJsonConfigFileContent(base.config, ts.sys, root)
  const options: ts.CompilerOptions = {
    ...parsed.options,
    noEmit: true,
    composite: false,
    incremental: false,
    declaration: false,
    declarationMap: false,
    sourceMap: false,
    // An example shows a call; it need not use every name it binds.
    noUnusedLocals: false,
    noUnusedParameters: false
  }
  const program = ts.createProgram([...byFile.keys()], options)
  const failed = new Map<Block, string>()
  const outside: Array<string> = []
  for (const diagnostic of ts.getPreEmitDiagnostics(program)) {
    const message = ts.flattenDiagnosticMessageText(diagnostic.messageText, "\n").split("\n").join("\n    ")
    const block = diagnostic.file === undefined ? undefined : byFile.get(path.resolve(diagnostic.file.fileName))
    if (block === undefined || diagnostic.file === undefined || diagnostic.start === undefined) {
      // An error outside the examples (in a source file they import) is reported where it is.
      let where = "(global)"
      if (diagnostic.file !== undefined && diagnostic.start !== undefined) {
        const { line, character } = diagnostic.file.getLineAndCharacterOfPosition(diagnostic.start)
        where = `${path.relative(root, diagnostic.file.fileName)}:${line + 1}:${character + 1}`
      }
      outside.push(`${where} - error TS${diagnostic.code}: ${message}`)
      continue
    }
    const { line, character } = diagnostic.file.getLineAndCharacterOfPosition(diagnostic.start)
    const text = `${path.relative(root, block.file)}:${block.line + line}:${block.column + character + 1} - error TS${diagnostic.code}: ${message}`
    failed.set(block, failed.has(block) ? `${failed.get(block)}\n${text}` : text)
  }
  for (const text of failed.values()) console.log(text)
  for (const line of outside) console.log(line)
  const files = new Set(blocks.map((b) => b.file)).size
  console.log(
    `docs:check: ${blocks.length} examples in ${files} files: ${blocks.length - failed.size} compile, ` +
      `${failed.size} fail` +
      (outside.length > 0 ? `, ${outside.length} errors outside the examples` : "")
  )
  if (failed.size > 0 || outside.length > 0) process.exitCode = 1
  if (process.exitCode !== 1) fs.rmSync(dir, { recursive: true, force: true })
}

main()
