/** A `Migrator` loader of plain `.sql` files. */
import { Effect } from "effect"
import type { Loader, ResolvedMigration } from "effect/sql/Migrator"
import { MigrationError } from "effect/sql/Migrator"
import * as SqlClient from "effect/sql/SqlClient"
import * as fs from "node:fs/promises"
import * as path from "node:path"

const FILE = /^(\d+)_([^.]+)\.sql$/

/** `NNNN_name.sql` files of `directory`, in id order; each runs as one script. */
export const fromSqlFiles = (directory: string): Loader =>
  Effect.tryPromise({
    try: () => fs.readdir(directory),
    catch: (cause) =>
      new MigrationError({ kind: "Failed", cause, message: `cannot read the migrations directory ${directory}` })
  }).pipe(
    Effect.map((files) =>
      files
        .flatMap((file): ReadonlyArray<ResolvedMigration> => {
          const match = FILE.exec(file)
          if (match === null) return []
          const run = Effect.gen(function*() {
            const text = yield* Effect.promise(() => fs.readFile(path.join(directory, file), "utf8"))
            const sql = yield* SqlClient.SqlClient
            yield* sql.unsafe(text).unprepared
          })
          return [[Number(match[1]), match[2]!, Effect.succeed(run)]]
        })
        .sort(([a], [b]) => a - b)
    )
  )
