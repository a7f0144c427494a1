/** Ready-made {@link Requirement}s for suites that need real servers or tools. */
import { execFile } from "node:child_process"
import * as fs from "node:fs"
import * as path from "node:path"
import type { Requirement } from "./types.ts"

const onPath = (command: string, extraDirs: ReadonlyArray<string>): string | undefined => {
  const dirs = [...(process.env["PATH"] ?? "").split(path.delimiter), ...extraDirs]
  for (const dir of dirs) {
    if (dir === "") continue
    const candidate = path.join(dir, command)
    try {
      fs.accessSync(candidate, fs.constants.X_OK)
      return candidate
    } catch {
      // not here
    }
  }
  return undefined
}

/** An executable on PATH (or in one of `extraDirs`). */
export const command = (name: string, options: { readonly extraDirs?: ReadonlyArray<string>; readonly hint?: string } = {}): Requirement => ({
  name: `${name} executable`,
  check: async () =>
    onPath(name, options.extraDirs ?? []) === undefined
      ? `${name} not found on PATH${options.hint === undefined ? "" : ` (${options.hint})`}`
      : undefined
})

/** OpenLDAP's slapd (Debian installs it in /usr/sbin). */
export const slapd: Requirement = command("slapd", {
  extraDirs: ["/usr/sbin", "/usr/local/sbin"],
  hint: "run `npm run provision` or `apt-get install -y slapd ldap-utils`"
})

/** PostgreSQL server binaries (Debian keeps them in /usr/lib/postgresql/<version>/bin). */
export const postgres: Requirement = {
  name: "PostgreSQL server binaries (initdb, pg_ctl)",
  check: async () => {
    const versioned = fs.existsSync("/usr/lib/postgresql")
      ? fs.readdirSync("/usr/lib/postgresql").map((v) => path.join("/usr/lib/postgresql", v, "bin"))
      : []
    return onPath("initdb", versioned) === undefined || onPath("pg_ctl", versioned) === undefined
      ? "initdb/pg_ctl not found on PATH or in /usr/lib/postgresql/*/bin"
      : undefined
  }
}

/** An environment variable that must be set (e.g. the URL of an external server). */
export const env = (name: string): Requirement => ({
  name: `$${name}`,
  check: async () => (process.env[name] === undefined || process.env[name] === "" ? `$${name} is not set` : undefined)
})

/** Any check given as a command line that must exit 0. */
export const commandSucceeds = (name: string, file: string, args: ReadonlyArray<string>): Requirement => ({
  name,
  check: () =>
    new Promise((resolve) =>
      execFile(file, args, { timeout: 10_000 }, (error) => resolve(error === null ? undefined : `${name}: ${error.message}`))
    )
})
