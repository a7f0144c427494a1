import type { LdapClient} from "@tether/ldap";
import { LdapConfig } from "@tether/ldap"
import type { PgClient} from "@tether/pg";
import { PgConfig } from "@tether/pg"
import { Effect } from "effect"
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
    const ldap = sections.ldap === undefined ? undefined : yield* LdapConfig.decode(sections.ldap).pipe(
      Effect.mapError((e) => usage(`${file}: ${e.message}`)),
      Effect.map((o): LdapClient.Options => (ldapPassword === undefined ? o : { ...o, password: ldapPassword }))
    )
    const pg = sections.pg === undefined ? undefined : yield* PgConfig.decode(sections.pg).pipe(
      Effect.mapError((e) => usage(`${file}: ${e.message}`)),
      Effect.map((o): PgClient.Options => (pgPassword === undefined ? o : { ...o, password: pgPassword }))
    )
    return { ldap, pg }
  })
