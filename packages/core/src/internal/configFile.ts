/**
 * A JSON configuration file as a watch source: its text, and the section a
 * client reads from it (`ldap`, `pg`, … when the document has one, else the
 * whole document), with a password filled in when the file leaves it out.
 * A file that cannot be read or parsed becomes the caller's typed error,
 * which never quotes the file (it may hold a password).
 *
 * @internal
 */
import * as fs from "node:fs/promises"
import { Effect, Redacted } from "effect"
import type { Scope } from "effect"
import type * as ServerSet from "../ServerSet.ts"
import * as reconfigureWatch from "./reconfigureWatch.ts"

/** @internal */
export const watch = <A, E>(
  options: ServerSet.WatchJsonFileOptions<A, E>
): Effect.Effect<ServerSet.ConfigWatch<A, E>, E | ServerSet.ApplyError, Scope.Scope> => {
  const file = source(options)
  return reconfigureWatch.make({
    label: options.label ?? options.file,
    read: file.read,
    decode: (text) => Effect.flatMap(file.section(text), options.decode),
    toReconfiguration: options.toReconfiguration,
    target: options.target,
    interval: options.interval
  })
}

const source = <A, E>(options: ServerSet.WatchJsonFileOptions<A, E>) => ({
  read: Effect.tryPromise({
    try: () => fs.readFile(options.file, "utf8"),
    catch: (cause) => options.invalid(`cannot read ${options.file}: ${(cause as NodeJS.ErrnoException).code ?? String(cause)}`)
  }),
  section: (text: string): Effect.Effect<unknown, E> =>
    Effect.suspend(() => {
      let json: unknown
      try {
        json = JSON.parse(text)
      } catch {
        // The parser's message may quote the file (and a password in it): only say what.
        return Effect.fail(options.invalid("not valid JSON"))
      }
      const record = typeof json === "object" && json !== null ? (json as Record<string, unknown>) : undefined
      const section = record !== undefined && options.section in record ? record[options.section] : json
      const password = options.password
      return Effect.succeed(
        password === undefined || typeof section !== "object" || section === null || "password" in section
          ? section
          : { ...section, password: Redacted.value(password) }
      )
    })
})
