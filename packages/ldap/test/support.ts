/** What the LDAP integration tests share. */
import type { Slapd } from "@tether/testkit"
import { Redacted } from "effect"
import { LdapClient } from "../src/index.ts"

/**
 * A client bound as the directory's service account, on its first server,
 * without health checks; `options` add to or replace any of these.
 */
export const adminClient = (
  directory: Slapd.Directory,
  options?: Partial<LdapClient.Options>
): ReturnType<typeof LdapClient.make> =>
  LdapClient.make({
    endpoints: [directory.server.url],
    bindDn: directory.adminDn,
    password: Redacted.make(directory.adminPassword),
    health: false,
    ...options
  })
