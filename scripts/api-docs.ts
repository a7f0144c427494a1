/**
 * `npm run docs`: API reference pages from the doc comments, one Markdown
 * page per public entry point (each `exports` key of each public package)
 * in docs/api/, plus docs/api/README.md as the index. For every export: its
 * kind, signature, doc comment, `@example` blocks and `@since`.
 *
 *   npm run docs            # writes docs/api/
 *   npm run docs -- --check # exits 1 when docs/api/ is not up to date
 */
import * as fs from "node:fs"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import ts from "typescript"

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..")
const out = path.join(root, "docs", "api")

interface EntryPoint {
  readonly specifier: string
  readonly source: string
  readonly page: string
  readonly description: string
}

const entryPoints = (): Array<EntryPoint> =>
  fs.readdirSync(path.join(root, "packages")).sort().flatMap((dir) => {
    const file = path.join(root, "packages", dir, "package.json")
    if (!fs.existsSync(file)) return []
    const manifest = JSON.parse(fs.readFileSync(file, "utf8"))
    if (manifest.private === true) return []
    return Object.entries<unknown>(manifest.exports ?? {}).flatMap(([subpath, target]) => {
      const source = typeof target === "object" && target !== null ? (target as Record<string, unknown>)["@tether/source"] : undefined
      if (typeof source !== "string") return []
      const specifier = subpath === "." ? manifest.name : `${manifest.name}/${subpath.slice(2)}`
      return [{
        specifier,
        source: path.join(root, "packages", dir, source),
        page: `${specifier.replace(/^@tether\//, "").replace(/\//g, "-")}.md`,
        description: manifest.description ?? ""
      }]
    })
  })

const options: ts.CompilerOptions = (() => {
  const base = ts.readConfigFile(path.join(root, "tsconfig.base.json"), ts.sys.readFile)
  return { ...ts.parseJsonConfigFileContent(base.config, ts.sys, root).options, noEmit: true, composite: false }
})()

const kindOf = (declaration: ts.Declaration): string => {
  if (ts.isClassDeclaration(declaration)) return "class"
  if (ts.isInterfaceDeclaration(declaration)) return "interface"
  if (ts.isTypeAliasDeclaration(declaration)) return "type"
  if (ts.isFunctionDeclaration(declaration)) return "function"
  if (ts.isVariableDeclaration(declaration)) return "const"
  if (ts.isModuleDeclaration(declaration) || ts.isSourceFile(declaration)) return "namespace"
  if (ts.isEnumDeclaration(declaration)) return "enum"
  return ts.SyntaxKind[declaration.kind]
}

/** The declaration's source without its doc comment (interfaces, types, classes: their shape is the doc). */
const declarationText = (declaration: ts.Declaration, checker: ts.TypeChecker, symbol: ts.Symbol): string => {
  const sourceFile = declaration.getSourceFile()
  if (ts.isVariableDeclaration(declaration) || ts.isFunctionDeclaration(declaration)) {
    const type = checker.typeToString(
      checker.getTypeOfSymbolAtLocation(symbol, declaration),
      declaration,
      ts.TypeFormatFlags.NoTruncation | ts.TypeFormatFlags.UseAliasDefinedOutsideCurrentScope
    )
    return `${ts.isFunctionDeclaration(declaration) ? "function" : "const"} ${symbol.name}: ${type}`
  }
  let text = sourceFile.text.slice(declaration.getStart(sourceFile), declaration.end)
  if (ts.isClassDeclaration(declaration)) text = text.slice(0, text.indexOf("{") + 1) + " … }"
  // Drop member doc comments: the shape stays readable.
  text = text.replace(/\n\s*\/\*\*[\s\S]*?\*\/\s*\n/g, "\n")
  const lines = text.split("\n")
  return lines.length > 60 ? [...lines.slice(0, 60), "  // …"].join("\n") : text
}

/**
 * A file's header: its first doc comment when a blank line or an `import`
 * follows it (otherwise that comment documents the first statement). The
 * text, and the `@example` blocks, without the other tags.
 */
const moduleHeader = (sourceFile: ts.SourceFile): string | undefined => {
  const text = sourceFile.text
  const first = ts.getLeadingCommentRanges(text, 0)?.[0]
  if (first === undefined || !text.startsWith("/**", first.pos)) return undefined
  const after = text.slice(first.end)
  if (!/^[ \t]*\n[ \t]*\n/.test(after) && !/^\s*import\b/.test(after)) return undefined
  const body = text.slice(first.pos + 3, first.end - 2).split("\n").map((l) => l.replace(/^\s*\* ?/, "")).join("\n")
  const parts = body.trim().split(/\n(?=@(?:example|since|category|see|internal|deprecated)\b)/)
  const examples = parts.filter((p) => p.startsWith("@example")).map((p) => p.replace(/^@example\s*/, ""))
  return [parts[0]!.trim(), ...examples.map((e) => `**Example**\n\n${e.trim()}`)].filter((p) => p !== "").join("\n\n")
}

const tagText = (tag: ts.JSDocTagInfo) => ts.displayPartsToString(tag.text ?? []).trim()

const render = (program: ts.Program, entry: EntryPoint): string => {
  const checker = program.getTypeChecker()
  const sourceFile = program.getSourceFile(entry.source)
  if (sourceFile === undefined) throw new Error(`api-docs: ${entry.source} is not in the program`)
  const moduleSymbol = checker.getSymbolAtLocation(sourceFile)!
  const lines: Array<string> = [`# ${entry.specifier}`, ""]
  lines.push(moduleHeader(sourceFile) ?? entry.description, "", "```sh", `npm i ${entry.specifier.split("/").slice(0, 2).join("/")} effect`, "```", "")

  const renderSymbol = (symbol: ts.Symbol, heading: string, prefix: string) => {
    const resolved = symbol.flags & ts.SymbolFlags.Alias ? checker.getAliasedSymbol(symbol) : symbol
    const declaration = resolved.declarations?.[0]
    if (declaration === undefined) return
    if (ts.isSourceFile(declaration)) {
      // `export * as Name from "./Name.ts"`: a module, rendered as a section of its own exports.
      lines.push(`${heading} ${prefix}${symbol.name}`, "")
      const exportDoc = symbol.declarations?.[0] !== undefined
        ? ts.displayPartsToString(symbol.getDocumentationComment(checker))
        : ""
      if (exportDoc !== "") lines.push(exportDoc, "")
      const inner = moduleHeader(declaration)
      if (inner !== undefined && inner !== exportDoc) lines.push(inner, "")
      for (const member of checker.getExportsOfModule(resolved)) renderSymbol(member, `${heading}#`, `${prefix}${symbol.name}.`)
      return
    }
    const docs = ts.displayPartsToString(resolved.getDocumentationComment(checker))
    const tags = resolved.getJsDocTags(checker)
    const category = tags.find((t) => t.name === "category")
    lines.push(`${heading} ${prefix}${symbol.name}`, "")
    lines.push(`*${kindOf(declaration)}*${category !== undefined ? ` · ${tagText(category)}` : ""}`, "")
    lines.push("```ts", declarationText(declaration, checker, resolved), "```", "")
    if (docs !== "") lines.push(docs, "")
    for (const tag of tags) {
      if (tag.name === "example") lines.push("**Example**", "", tagText(tag), "")
    }
    const since = tags.find((t) => t.name === "since")
    if (since !== undefined) lines.push(`Since ${tagText(since)}`, "")
    const source = path.relative(root, declaration.getSourceFile().fileName)
    const line = declaration.getSourceFile().getLineAndCharacterOfPosition(declaration.getStart()).line + 1
    lines.push(`Source: [${source}:${line}](../../${source}#L${line})`, "")
  }
  for (const symbol of checker.getExportsOfModule(moduleSymbol)) renderSymbol(symbol, "##", "")
  return lines.join("\n").replace(/\n{3,}/g, "\n\n")
}

const main = () => {
  const check = process.argv.includes("--check")
  // A sub-path that repeats another's source (an alias kept for compatibility) gets no page of its own.
  const entries = entryPoints().filter((e, i, all) => all.findIndex((o) => o.source === e.source) === i)
  const program = ts.createProgram(entries.map((e) => e.source), options)
  const pages = new Map<string, string>()
  for (const entry of entries) pages.set(entry.page, render(program, entry))
  pages.set(
    "README.md",
    [
      "# Tether API reference",
      "",
      "Generated from the doc comments by `npm run docs` (scripts/api-docs.ts); do not edit by hand.",
      "",
      "| entry point | page |",
      "| --- | --- |",
      ...entries.map((e) => `| \`${e.specifier}\` | [${e.page}](${e.page}) |`),
      ""
    ].join("\n")
  )
  if (check) {
    const stale = [...pages].filter(([page, text]) => {
      const file = path.join(out, page)
      return !fs.existsSync(file) || fs.readFileSync(file, "utf8") !== text
    })
    for (const [page] of stale) console.log(`docs/api/${page} is out of date: run npm run docs`)
    if (stale.length > 0) process.exitCode = 1
    return
  }
  fs.rmSync(out, { recursive: true, force: true })
  fs.mkdirSync(out, { recursive: true })
  for (const [page, text] of pages) fs.writeFileSync(path.join(out, page), text)
  console.log(`docs: wrote ${pages.size} pages to ${path.relative(root, out)}/`)
}

main()
