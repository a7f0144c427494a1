// Module load hook for the bench (registered by bench/harness/transpile.ts).
//
// tsx compiles TypeScript with esbuild's `keepNames`, which wraps every named
// function in `__name(fn, "name")` — an `Object.defineProperty` each time a
// closure is created. Code that builds closures per call (our pool does, per
// borrow) pays for it under tsx but not once built with `tsc`, and the peers
// (effect, generic-pool, tarn) ship plain JavaScript and never pay. So the
// bench compiles the repository's own .ts files with TypeScript's
// `transpileModule` (what `tsc` emits: no name wrappers), and leaves module
// resolution and everything else to tsx.
import { readFile } from "node:fs/promises"
import { fileURLToPath } from "node:url"
import ts from "typescript"

const compilerOptions = {
  target: ts.ScriptTarget.ES2022,
  module: ts.ModuleKind.ESNext,
  verbatimModuleSyntax: true,
  inlineSourceMap: true,
  inlineSources: false
}

export async function load(url, context, nextLoad) {
  if (url.startsWith("file:") && !url.includes("/node_modules/")) {
    const fileName = fileURLToPath(url)
    if (fileName.endsWith(".ts") || fileName.endsWith(".mts")) {
      const source = await readFile(fileName, "utf8")
      const output = ts.transpileModule(source, { fileName, compilerOptions })
      return { format: "module", source: output.outputText, shortCircuit: true }
    }
  }
  return nextLoad(url, context)
}
