/**
 * Locating server binaries and OS users.
 *
 * @internal
 */
import { execFileSync } from "node:child_process"
import * as fs from "node:fs"
import * as path from "node:path"
import { Effect } from "effect"
import { FixtureError } from "../FixtureError.ts"

const PROVISION_HINT = "run `npm run provision` (scripts/provision.sh) as root"

const isExecutable = (file: string): boolean => {
  try {
    fs.accessSync(file, fs.constants.X_OK)
    return fs.statSync(file).isFile()
  } catch {
    return false
  }
}

const pathDirs = (): ReadonlyArray<string> => (process.env.PATH ?? "").split(path.delimiter).filter((d) => d !== "")

/** The first executable `name` in `preferred` dirs, then PATH, then `fallback` dirs. */
export const findIn = (
  name: string,
  preferred: ReadonlyArray<string>,
  fallback: ReadonlyArray<string> = []
): string | undefined => {
  for (const dir of [...preferred, ...pathDirs(), ...fallback]) {
    const file = path.join(dir, name)
    if (isExecutable(file)) return file
  }
  return undefined
}

let pgBindir: string | undefined | null = null

/** `pg_config --bindir`, when pg_config exists (cached). */
const pgConfigBindir = (): string | undefined => {
  if (pgBindir === null) {
    try {
      pgBindir = execFileSync("pg_config", ["--bindir"], { encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] })
        .trim() || undefined
    } catch {
      pgBindir = undefined
    }
  }
  return pgBindir
}

/** PostgreSQL server binaries, looked up in `pg_config --bindir`, /usr/lib/postgresql/15/bin and PATH. */
export interface PgBinaries {
  readonly initdb: string
  readonly pg_ctl: string
  readonly pg_basebackup: string
  readonly postgres: string
}

export const postgres: Effect.Effect<PgBinaries, FixtureError> = Effect.suspend(() => {
  const configured = pgConfigBindir()
  const preferred = [...(configured === undefined ? [] : [configured]), "/usr/lib/postgresql/15/bin"]
  const names = ["initdb", "pg_ctl", "pg_basebackup", "postgres"] as const
  const found: Partial<Record<(typeof names)[number], string>> = {}
  const missing: Array<string> = []
  for (const name of names) {
    const file = findIn(name, preferred)
    if (file === undefined) missing.push(name)
    else found[name] = file
  }
  if (missing.length > 0) {
    return Effect.fail(
      new FixtureError({
        message: `PostgreSQL server binaries not found: ${missing.join(", ")} (looked in ${
          preferred.join(", ")
        } and PATH). Install PostgreSQL 15 (apt-get install -y postgresql-15), then ${PROVISION_HINT} to check.`
      })
    )
  }
  return Effect.succeed(found as PgBinaries)
})

/** OpenLDAP binaries: slapd and slapadd (from the `slapd` package), openssl for TLS certs. */
export interface LdapBinaries {
  readonly slapd: string
  readonly slapadd: string
  readonly openssl: string
}

export const openldap: Effect.Effect<LdapBinaries, FixtureError> = Effect.suspend(() => {
  const sbin = ["/usr/sbin", "/usr/local/sbin", "/sbin"]
  const slapd = findIn("slapd", [], sbin)
  const slapadd = findIn("slapadd", [], sbin)
  const openssl = findIn("openssl", [], ["/usr/bin"])
  if (slapd === undefined || slapadd === undefined) {
    return Effect.fail(
      new FixtureError({ message: `slapd not found (looked in PATH and ${sbin.join(", ")}): ${PROVISION_HINT}` })
    )
  }
  if (!fs.existsSync("/usr/lib/ldap/back_mdb.so")) {
    return Effect.fail(
      new FixtureError({ message: `/usr/lib/ldap/back_mdb.so not found (slapd's mdb backend): ${PROVISION_HINT}` })
    )
  }
  if (openssl === undefined) {
    return Effect.fail(new FixtureError({ message: `openssl not found (needed for TLS certs): ${PROVISION_HINT}` }))
  }
  return Effect.succeed({ slapd, slapadd, openssl })
})

/** Numeric ids of an OS user, from /etc/passwd via `id`. */
export const osUser = (name: string): Effect.Effect<{ readonly uid: number; readonly gid: number }, FixtureError> =>
  Effect.try({
    try: () => {
      const uid = Number(execFileSync("id", ["-u", name], { encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] }))
      const gid = Number(execFileSync("id", ["-g", name], { encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] }))
      if (!Number.isInteger(uid) || !Number.isInteger(gid)) throw new Error("unparsable id output")
      return { uid, gid }
    },
    catch: (cause) =>
      new FixtureError({
        message: `OS user '${name}' not found: PostgreSQL refuses to run as root, so the fixture runs it as '${name}'. ` +
          `Install PostgreSQL (it creates the user) or create it, then ${PROVISION_HINT} to check.`,
        cause
      })
  })
