import { Effect, Redacted } from "effect"
import * as fs from "node:fs/promises"
import { TetherCliError } from "../CliError.ts"

/**
 * A secret from a file (first line, trailing newline dropped) or, without
 * one, from the environment variable `env`. Never from the command line.
 */
export const readSecret = (options: {
  readonly file: string | undefined
  readonly env: string
}): Effect.Effect<Redacted.Redacted<string> | undefined, TetherCliError> =>
  options.file !== undefined
    ? Effect.tryPromise({
      try: () => fs.readFile(options.file!, "utf8"),
      catch: (cause) =>
        new TetherCliError({
          message: `cannot read the password file ${options.file}: ${(cause as NodeJS.ErrnoException).code ?? String(cause)}`,
          exitCode: 2
        })
    }).pipe(Effect.map((text) => Redacted.make(text.replace(/\r?\n$/, ""))))
    : Effect.sync(() => {
      const value = process.env[options.env]
      return value === undefined || value === "" ? undefined : Redacted.make(value)
    })
