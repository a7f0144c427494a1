import { LdapClient, Ldif } from "@tether/ldap"
import { Cause, Effect, Stream } from "effect"
import * as fs from "node:fs"
import { TetherCliError } from "../CliError.ts"
import type { ConnectionFlags } from "./ldapConnection.ts"
import { ldapOptions } from "./ldapConnection.ts"
import { Progress } from "./progress.ts"

const say = (line: string) => Effect.sync(() => process.stdout.write(`${line}\n`))

/** Where the progress goes: stderr, a bar on a terminal unless told otherwise. */
const progressStream = () => process.stderr

export interface ImportOptions extends ConnectionFlags {
  readonly file: string
  readonly concurrency: number
  readonly onExists: LdapClient.OnExists
  readonly tty: "auto" | "always" | "never"
}

const ttyOf = (mode: "auto" | "always" | "never") => (mode === "auto" ? undefined : mode === "always")

/**
 * `tether ldif import FILE`: applies every record, with progress; prints the
 * report; exit code 1 when any record failed.
 */
export const importFile = (options: ImportOptions) =>
  Effect.gen(function*() {
    if (!fs.existsSync(options.file)) {
      return yield* new TetherCliError({ message: `no such file: ${options.file}`, exitCode: 2 })
    }
    const readFailure = (error: Ldif.LdifReadError) =>
      new TetherCliError({ message: `${options.file}: ${error.message}`, exitCode: 2 })
    // Bad records are reported (with their line) and every good record is still imported.
    const parse = () => Ldif.parseFile(options.file, { keepGoing: true })
    // A first pass counts the records, for the percentage and the ETA (parsing is cheap next to the server).
    const total = yield* Stream.runCount(parse()).pipe(Effect.mapError(readFailure))
    const client = yield* LdapClient.make(yield* ldapOptions(options)).pipe(
      Effect.mapError((e) => new TetherCliError({ message: e.message, exitCode: 2 }))
    )
    const progress = new Progress({
      label: "import",
      total,
      unit: "entries",
      stream: progressStream(),
      tty: ttyOf(options.tty)
    })
    let read = 0
    let failed = 0
    const records = parse().pipe(
      Stream.tap(() =>
        Effect.sync(() => {
          read++
          progress.update(Math.max(0, read - options.concurrency), failed)
        })
      )
    )
    const report = yield* client.importLdif(records, {
      concurrency: options.concurrency,
      onExists: options.onExists,
      onProgress: (p) => Effect.sync(() => (failed = p.failed))
    }).pipe(
      Effect.mapError(readFailure),
      Effect.tap((r) => Effect.sync(() => progress.update(r.done + r.skipped + r.failed.length, r.failed.length))),
      Effect.ensuring(Effect.sync(() => progress.finish()))
    )
    yield* say(
      `imported ${report.done}, skipped ${report.skipped}, failed ${report.failed.length} of ${total} records from ${options.file}`
    )
    for (const failure of report.failed.slice(0, 50)) {
      yield* say(`  FAILED ${failure.dn}: ${failure.error.message}`)
    }
    if (report.failed.length > 50) yield* say(`  …and ${report.failed.length - 50} more`)
    if (report.failed.length > 0) process.exitCode = 1
  })

export interface ExportOptions extends ConnectionFlags {
  readonly base: string
  readonly filter: string
  readonly scope: "base" | "one" | "sub" | "children"
  readonly attributes: ReadonlyArray<string>
  readonly out: string | undefined
  readonly tty: "auto" | "always" | "never"
}

/** `tether ldif export BASE`: streams the entries as LDIF to a file (or stdout), with progress. */
export const exportEntries = (options: ExportOptions) =>
  Effect.gen(function*() {
    const client = yield* LdapClient.make(yield* ldapOptions(options)).pipe(
      Effect.mapError((e) => new TetherCliError({ message: e.message, exitCode: 2 }))
    )
    const progress = options.out === undefined
      ? undefined
      : new Progress({ label: "export", total: undefined, unit: "entries", stream: progressStream(), tty: ttyOf(options.tty) })
    let count = 0
    const text = Ldif.write(
      client.search(options.base, {
        filter: options.filter,
        scope: options.scope,
        ...(options.attributes.length === 0 ? {} : { attributes: options.attributes })
      }).pipe(
        Stream.map((entry) => Ldif.entry(entry.dn, entry.attributes)),
        Stream.tap(() => Effect.sync(() => progress?.update(++count, 0)))
      )
    )
    const written = options.out === undefined
      ? Stream.runForEach(text, (chunk) => Effect.sync(() => process.stdout.write(chunk)))
      : writeToFile(text, options.out)
    yield* written.pipe(
      Effect.mapError((error) => new TetherCliError({ message: `export failed after ${count} entries: ${messageOf(error)}`, exitCode: 1 })),
      Effect.ensuring(Effect.sync(() => progress?.finish()))
    )
    if (options.out !== undefined) yield* say(`exported ${count} entries under ${options.base} to ${options.out}`)
  })

const writeToFile = <E>(text: Stream.Stream<string, E>, file: string) =>
  Effect.acquireUseRelease(
    Effect.sync(() => fs.createWriteStream(file, { encoding: "utf8" })),
    (out) =>
      Stream.runForEach(text, (chunk) =>
        Effect.callback<void>((resume) => {
          if (out.write(chunk)) resume(Effect.void)
          else out.once("drain", () => resume(Effect.void))
        })),
    (out) => Effect.callback<void>((resume) => void out.end(() => resume(Effect.void)))
  )

const messageOf = (error: unknown): string =>
  error instanceof Error ? error.message : Cause.isCause(error) ? Cause.pretty(error) : String(error)
