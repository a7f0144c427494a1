/**
 * The bench suites, in the order a full run runs them. Adding a suite is one
 * line here: write `bench/suites/NAME.ts` exporting a `Suite` (see
 * `bench/harness/types.ts`; a suite needing real servers lists them in
 * `requires`, e.g. `requires: [requirements.slapd]` from
 * `bench/harness/requirements.ts`) and add it to this array.
 */
import type { Suite } from "../harness/types.ts"
import { poolSuite } from "./pool.ts"
import { serversetSuite } from "./serverset.ts"
import { identitySuite } from "./identity.ts"
import { pgSuite } from "./pg.ts"
import { pgSqlSuite } from "./pgSql.ts"
import { ldapSuite } from "./ldap.ts"
import { promiseSuite } from "./promise.ts"
import { ldifSuite } from "./ldif.ts"
import { observeSuite } from "./observe.ts"

export const suites: ReadonlyArray<Suite> = [
  poolSuite,
  serversetSuite,
  identitySuite,
  pgSuite,
  pgSqlSuite,
  ldapSuite,
  promiseSuite,
  ldifSuite,
  observeSuite
]
