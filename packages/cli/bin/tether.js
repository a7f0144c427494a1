#!/usr/bin/env node
/* global URL */
// The `tether` command. In this workspace (sources present and tsx installed) it runs the TypeScript
// sources with tsx, in a child Node process with `--import tsx` (a loader registered from here would
// not reach every module on Node 20); a published package runs its built `dist/`.
import { spawn } from "node:child_process"
import { existsSync } from "node:fs"
import { fileURLToPath } from "node:url"

const source = fileURLToPath(new URL("../src/main.ts", import.meta.url))
let tsx
try {
  tsx = import.meta.resolve("tsx")
} catch {
  tsx = undefined
}
if (tsx !== undefined && existsSync(source)) {
  const child = spawn(process.execPath, ["--conditions=@tether/source", "--import", tsx, source, ...process.argv.slice(2)], { stdio: "inherit" })
  // Ctrl-C reaches the child through the terminal's process group; forward what is sent to us alone.
  for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"]) process.on(signal, () => child.kill(signal))
  child.on("exit", (code, signal) => {
    process.exitCode = code ?? (signal === "SIGINT" ? 130 : 1)
  })
} else {
  await import(new URL("../dist/main.js", import.meta.url).href)
}
