import type { LdapClient } from "@tether/ldap"
import { LdapConfig } from "@tether/ldap"
import type { PgClient } from "@tether/pg"
import { PgConfig } from "@tether/pg"
import { Effect, Redacted } from "effect"
import * as fs from "node:fs/promises"
import { TetherCliError } from "../CliError.ts"
import { readSecret } from "./secrets.ts"

/** A configuration file: an `ldap` section (`LdapConfig`), a `pg` section (`PgConfig`), or both. */
export interface Loaded {
  readonly ldap: LdapClient.Options | undefined
  readonly pg: PgClient.Options | undefined
}

const usage = (message: string) => new TetherCliError({ message, exitCode: 2 })

/**
 * Reads a JSON configuration file. Passwords may be in the file (keep it
 * private) or come from `TETHER_LDAP_PASSWORD` / `TETHER_PG_PASSWORD`, which win.
 */
export const load = (file: string): Effect.Effect<Loaded, TetherCliError> =>
  Effect.gen(function*() {
    const text = yield* Effect.tryPromise({
      try: () => fs.readFile(file, "utf8"),
      catch: (cause) => usage(`cannot read the configuration file ${file}: ${(cause as NodeJS.ErrnoException).code ?? String(cause)}`)
    })
    const json = yield* Effect.try({
      try: () => JSON.parse(text) as unknown,
      catch: (cause) => usage(`${file} is not valid JSON: ${(cause as Error).message}`)
    })
    if (typeof json !== "object" || json === null || (!("ldap" in json) && !("pg" in json))) {
      return yield* usage(`${file} must be a JSON object with an "ldap" and/or a "pg" section`)
    }
    const sections = json as { readonly ldap?: unknown; readonly pg?: unknown }
    const ldapPassword = yield* readSecret({ file: undefined, env: "TETHER_LDAP_PASSWORD" })
    const pgPassword = yield* readSecret({ file: undefined, env: "TETHER_PG_PASSWORD" })
    // The environment's password goes in before decoding, so that the rules that need it (a
    // `bindDn` needs a password) see it; decoding makes it `Redacted` again at once.
    const withPassword = (section: unknown, password: Redacted.Redacted<string> | undefined): unknown =>
      password === undefined || typeof section !== "object" || section === null
        ? section
        : { ...section, password: Redacted.value(password) }
    const ldap = sections.ldap === undefined ? undefined : yield* LdapConfig.decode(
      withPassword(sections.ldap, ldapPassword)
    ).pipe(Effect.mapError((e) => usage(`${file}: ${e.message}`)))
    const pg = sections.pg === undefined ? undefined : yield* PgConfig.decode(
      withPassword(sections.pg, pgPassword)
    ).pipe(Effect.mapError((e) => usage(`${file}: ${e.message}`)))
    return { ldap, pg }
  })
