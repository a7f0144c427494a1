// A consumer of the packed packages, as a new user writes it: Effect API.
// Typechecked strictly (NodeNext, exactOptionalPropertyTypes, no skipLibCheck)
// and run against PostgreSQL and slapd from the installed @tether/testkit.
import { ConnectionPool } from "@tether/core"
import { Filter, LdapClient } from "@tether/ldap"
import { PgClient, PgError } from "@tether/pg"
import type * as PgClientLite from "@tether/pg/lite"
import { PostgresCluster, Slapd } from "@tether/testkit"
import { Effect, Layer, Redacted } from "effect"

export type Lite = typeof PgClientLite
export const poolModule: object = ConnectionPool

export const effectProgram = Effect.gen(function*() {
  const cluster = yield* PostgresCluster.PostgresCluster
  const directory = yield* Slapd.Slapd
  const db = yield* PgClient.make({
    endpoints: [`postgres://${cluster.primary.host}:${cluster.primary.port}/postgres`],
    user: "postgres"
  })
  const rows = yield* db.read<{ one: number }>`select 1 as one`
  if (rows[0]?.one !== 1) return yield* Effect.die(new Error(`select 1 returned ${JSON.stringify(rows)}`))
  const failure = yield* Effect.flip(db.read`select * from no_such_table`)
  if (!PgError.isPgError(failure)) return yield* Effect.die(new Error(`expected a PgError, got ${String(failure)}`))

  const ldap = yield* LdapClient.make({
    endpoints: [directory.server.url],
    bindDn: directory.adminDn,
    password: Redacted.make(directory.adminPassword)
  })
  const user = directory.users[0]!
  const entries = yield* ldap.searchAll(directory.peopleDn, { filter: Filter.filter`(uid=${user.uid})` })
  if (entries.length !== 1) return yield* Effect.die(new Error(`expected 1 entry, got ${entries.length}`))
  return { pg: rows.length, ldap: entries.length }
}).pipe(Effect.scoped)

export const fixtures = Layer.mergeAll(PostgresCluster.layer(), Slapd.layer({ users: 3 }))

if (import.meta.url === `file://${process.argv[1]}`) {
  const result = await Effect.runPromise(Effect.provide(effectProgram, fixtures))
  console.log(`effect consumer ok: ${JSON.stringify(result)}`)
}
