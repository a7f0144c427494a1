import type { LdapClient } from "@tether/ldap"
import { Effect, Option } from "effect"
import { TetherCliError } from "../CliError.ts"
import * as ConfigFile from "./configFile.ts"
import { readSecret } from "./secrets.ts"

/** How the ldif commands reach the directory: a configuration file, or flags (+ a password from env or a file). */
export interface ConnectionFlags {
  readonly config: Option.Option<string>
  readonly url: Option.Option<string>
  readonly bindDn: Option.Option<string>
  readonly passwordFile: Option.Option<string>
}

export const ldapOptions = (flags: ConnectionFlags): Effect.Effect<LdapClient.Options, TetherCliError> =>
  Effect.gen(function*() {
    const password = yield* readSecret({ file: Option.getOrUndefined(flags.passwordFile), env: "TETHER_LDAP_PASSWORD" })
    if (Option.isSome(flags.config)) {
      const loaded = yield* ConfigFile.load(flags.config.value)
      if (loaded.ldap === undefined) {
        return yield* new TetherCliError({ message: `${flags.config.value} has no "ldap" section`, exitCode: 2 })
      }
      return {
        ...loaded.ldap,
        ...(Option.isSome(flags.url) ? { endpoints: flags.url.value.split(",").map((u) => u.trim()) } : {}),
        ...(Option.isSome(flags.bindDn) ? { bindDn: flags.bindDn.value } : {}),
        ...(password === undefined ? {} : { password })
      }
    }
    if (Option.isNone(flags.url)) {
      return yield* new TetherCliError({
        message: "say where the directory is: --config FILE, or --url ldap://host:port (and --bind-dn; the password from TETHER_LDAP_PASSWORD or --password-file)",
        exitCode: 2
      })
    }
    return {
      name: "ldap",
      endpoints: flags.url.value.split(",").map((u) => u.trim()).filter((u) => u !== ""),
      bindDn: Option.getOrUndefined(flags.bindDn),
      password,
      health: false
    }
  })
