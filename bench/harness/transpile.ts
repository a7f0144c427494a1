/**
 * Makes the TypeScript modules imported from now on compile as `tsc` would
 * (see ./transpile-hooks.mjs for why): call it, then `await import(…)` the
 * code to measure. Set BENCH_TSX_TRANSFORM=1 to keep tsx's own transform.
 */
import { register } from "node:module"

let registered = false

/** Answers which transform the modules imported afterwards get. */
export const useTscTransform = (): "tsc" | "tsx" => {
  if (process.env["BENCH_TSX_TRANSFORM"] === "1") return "tsx"
  if (!registered) {
    register("./transpile-hooks.mjs", import.meta.url)
    registered = true
  }
  return "tsc"
}
