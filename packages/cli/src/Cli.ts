/**
 * The `tether` command (on `effect/cli`):
 *
 * ```sh
 * TETHER_LDAP_PASSWORD=… tether ldif import people.ldif --url ldap://ldap1:389 --bind-dn cn=admin,dc=example,dc=com
 * tether ldif export ou=people,dc=example,dc=com --filter '(objectClass=person)' --out people.ldif --config tether.json
 * tether status --config tether.json
 * tether check --config tether.json
 * tether demo
 * ```
 *
 * Secrets never come from the command line: passwords are read from
 * `TETHER_LDAP_PASSWORD` / `TETHER_PG_PASSWORD`, from `--password-file`, or
 * from the configuration file.
 *
 * @since 0.1.0
 */
import { Effect, Option } from "effect"
import { Argument, Command, Flag } from "effect/cli"
import type { TetherCliError } from "./CliError.ts"
import { demo } from "./internal/demo.ts"
import { exportEntries, importFile } from "./internal/ldif.ts"
import { check, status } from "./internal/servers.ts"

const connectionFlags = {
  config: Flag.String("config").pipe(
    Flag.withDescription("JSON configuration file with an \"ldap\" section (LdapConfig); flags below override it"),
    Flag.optional
  ),
  url: Flag.String("url").pipe(
    Flag.withDescription("LDAP server URL(s), comma-separated, e.g. ldap://ldap1:389,ldap://ldap2:389"),
    Flag.optional
  ),
  bindDn: Flag.String("bind-dn").pipe(
    Flag.withDescription("DN to bind as (its password: TETHER_LDAP_PASSWORD or --password-file; never a flag)"),
    Flag.optional
  ),
  passwordFile: Flag.String("password-file").pipe(
    Flag.withDescription("File whose first line is the bind password (instead of TETHER_LDAP_PASSWORD)"),
    Flag.optional
  ),
  progress: Flag.Literals("progress", ["auto", "always", "never"]).pipe(
    Flag.withDescription("A progress bar: auto (when stderr is a terminal; plain periodic lines otherwise), always, never"),
    Flag.withDefault("auto" as const)
  )
}

const ldifImport = Command.make("import", {
  file: Argument.String("file").pipe(Argument.withDescription("The LDIF file to apply (entries and change records)")),
  ...connectionFlags,
  concurrency: Flag.Int("concurrency").pipe(
    Flag.withDescription("Records applied at once; 1 keeps the file's order (needed when records depend on each other)"),
    Flag.withDefault(1)
  ),
  onExists: Flag.Literals("on-exists", ["fail", "skip", "replace"]).pipe(
    Flag.withDescription("When an added entry already exists: fail it, skip it, or replace it (delete and re-add)"),
    Flag.withDefault("fail" as const)
  )
}, (flags) =>
  importFile({
    file: flags.file,
    config: flags.config,
    url: flags.url,
    bindDn: flags.bindDn,
    passwordFile: flags.passwordFile,
    concurrency: Math.max(1, flags.concurrency),
    onExists: flags.onExists,
    tty: flags.progress
  })).pipe(
    Command.withDescription("Import an LDIF file: progress on the terminal, a final report, exit code 1 when any record failed")
  )

const ldifExport = Command.make("export", {
  base: Argument.String("base").pipe(Argument.withDescription("The search base DN")),
  ...connectionFlags,
  filter: Flag.String("filter").pipe(
    Flag.withDescription("LDAP search filter (RFC 4515)"),
    Flag.withDefault("(objectClass=*)")
  ),
  scope: Flag.Literals("scope", ["base", "one", "sub", "children"]).pipe(
    Flag.withDescription("Search scope"),
    Flag.withDefault("sub" as const)
  ),
  attributes: Flag.String("attributes").pipe(
    Flag.withDescription("Comma-separated attributes to export (default: all user attributes)"),
    Flag.optional
  ),
  out: Flag.String("out").pipe(Flag.withDescription("Output file (default: standard output)"), Flag.optional)
}, (flags) =>
  exportEntries({
    base: flags.base,
    config: flags.config,
    url: flags.url,
    bindDn: flags.bindDn,
    passwordFile: flags.passwordFile,
    filter: flags.filter,
    scope: flags.scope,
    attributes: Option.match(flags.attributes, {
      onNone: () => [],
      onSome: (a) => a.split(",").map((s) => s.trim()).filter((s) => s !== "")
    }),
    out: Option.getOrUndefined(flags.out),
    tty: flags.progress
  })).pipe(Command.withDescription("Export the entries under BASE as LDIF, streaming (paged search)"))

const ldif = Command.make("ldif").pipe(
  Command.withDescription("Import and export LDIF"),
  Command.withSubcommands([ldifImport, ldifExport])
)

const configFlag = Flag.String("config").pipe(
  Flag.withDescription("JSON configuration file: an \"ldap\" section (LdapConfig) and/or a \"pg\" section (PgConfig); passwords from TETHER_LDAP_PASSWORD / TETHER_PG_PASSWORD")
)

const statusCommand = Command.make("status", {
  config: configFlag,
  json: Flag.Boolean("json").pipe(Flag.withDescription("Print JSON instead of a table"), Flag.withDefault(false)),
  wait: Flag.Int("wait").pipe(
    Flag.withDescription("Milliseconds to wait for the first health probe of every endpoint"),
    Flag.withDefault(5000)
  )
}, (flags) => status({ config: flags.config, json: flags.json, waitMillis: flags.wait })).pipe(
  Command.withDescription("A table of sets, endpoints, roles, health, breakers and pools")
)

const checkCommand = Command.make("check", { config: configFlag }, (flags) => check({ config: flags.config })).pipe(
  Command.withDescription("Connect, bind and probe every endpoint on its own; exit code 1 when any fails")
)

const demoCommand = Command.make("demo", {
  serve: Flag.Boolean("serve").pipe(
    Flag.withDescription("Keep the demo's servers and the dashboard up until interrupted (Ctrl-C)"),
    Flag.withDefault(false)
  )
}, () => demo).pipe(
  Command.withDescription("Run the demo against throwaway PostgreSQL and slapd servers, with the dashboard (what npm start runs)")
)

/**
 * The whole command tree.
 *
 * @since 0.1.0
 * @category commands
 */
export const command = Command.make("tether").pipe(
  Command.withDescription("Operate Tether: LDIF import/export, status and check of configured servers, the demo"),
  Command.withSubcommands([ldif, statusCommand, checkCommand, demoCommand])
)

/**
 * Runs the command on the process's arguments; a `TetherCliError` is printed
 * (its message says what to do) and sets the exit code.
 *
 * @since 0.1.0
 * @category running
 */
export const run = Command.run(command, { version: "0.1.0" }).pipe(
  Effect.catchTag("TetherCliError", (error: TetherCliError) =>
    Effect.sync(() => {
      process.stderr.write(`tether: ${error.message}\n`)
      process.exitCode = error.exitCode
    }))
)
