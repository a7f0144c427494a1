/**
 * Scoped temp dirs.
 *
 * @internal
 */
import * as fs from "node:fs/promises"
import * as os from "node:os"
import * as path from "node:path"
import { Effect } from "effect"
import type { Scope } from "effect"
import { FixtureError } from "../FixtureError.ts"
import { killAllUnder } from "./process.ts"
import { trackDir, untrackDir } from "./reaper.ts"

/**
 * Creates a fresh private (0700) temp dir, optionally owned by another user, and removes it when
 * the scope closes, after SIGKILLing any process still running inside it.
 */
export const make = (
  prefix: string,
  owner?: { readonly uid: number; readonly gid: number }
): Effect.Effect<string, FixtureError, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.tryPromise({
      try: async () => {
        const dir = await fs.mkdtemp(path.join(os.tmpdir(), prefix))
        trackDir(dir)
        await fs.chmod(dir, 0o700)
        if (owner !== undefined) await fs.chown(dir, owner.uid, owner.gid)
        return dir
      },
      catch: (cause) =>
        new FixtureError({ message: `cannot create a temp dir in ${os.tmpdir()}: ${String(cause)}`, cause })
    }),
    (dir) =>
      killAllUnder(dir).pipe(
        Effect.andThen(Effect.promise(() => fs.rm(dir, { recursive: true, force: true }).catch(() => undefined))),
        Effect.andThen(Effect.sync(() => untrackDir(dir)))
      )
  )

/** Writes a file (mode 0600 by default). */
export const writeFile = (file: string, content: string, mode = 0o600): Effect.Effect<void, FixtureError> =>
  Effect.tryPromise({
    try: () => fs.writeFile(file, content, { mode }),
    catch: (cause) => new FixtureError({ message: `cannot write ${file}: ${String(cause)}`, cause })
  })

/** Appends to a file. */
export const appendFile = (file: string, content: string): Effect.Effect<void, FixtureError> =>
  Effect.tryPromise({
    try: () => fs.appendFile(file, content),
    catch: (cause) => new FixtureError({ message: `cannot write ${file}: ${String(cause)}`, cause })
  })

/** Reads a text file. */
export const readFile = (file: string): Effect.Effect<string, FixtureError> =>
  Effect.tryPromise({
    try: () => fs.readFile(file, "utf8"),
    catch: (cause) => new FixtureError({ message: `cannot read ${file}: ${String(cause)}`, cause })
  })

/** Removes a file if it exists. */
export const remove = (file: string): Effect.Effect<void> =>
  Effect.promise(() => fs.rm(file, { force: true }).catch(() => undefined))
