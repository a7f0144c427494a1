import { Effect } from "effect"
import * as fs from "node:fs"
import * as path from "node:path"
import { fileURLToPath, pathToFileURL } from "node:url"
import { TetherCliError } from "../CliError.ts"

/**
 * `tether demo`: runs the repository's demo (`examples/demo.ts`, what
 * `npm start` runs), found by walking up from this package.
 */
export const demo = Effect.gen(function*() {
  let dir = path.dirname(fileURLToPath(import.meta.url))
  for (let i = 0; i < 8; i++) {
    const file = path.join(dir, "examples", "demo.ts")
    if (fs.existsSync(file)) {
      yield* Effect.promise(() => import(pathToFileURL(file).href))
      return
    }
    dir = path.dirname(dir)
  }
  return yield* new TetherCliError({
    message: "the demo (examples/demo.ts) ships with the Tether repository: run `tether demo` from a checkout (npm start)",
    exitCode: 2
  })
})
