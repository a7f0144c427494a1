/* global AbortSignal */
// Plain JavaScript ESM, no TypeScript, no Effect in the application's own
// code except to start the test servers: what a Node user of @tether/promise writes.
import { createPgClient, createLdapClient, PromiseError } from "@tether/promise"
import { PostgresCluster, Slapd } from "@tether/testkit"
import { Context, Layer, ManagedRuntime } from "effect"

const fixtures = ManagedRuntime.make(Layer.mergeAll(PostgresCluster.layer(), Slapd.layer({ users: 2 })))
try {
  const context = await fixtures.context()
  const cluster = Context.get(context, PostgresCluster.PostgresCluster)
  const directory = Context.get(context, Slapd.Slapd)
  const db = await createPgClient({ endpoints: [`postgres://${cluster.primary.host}:${cluster.primary.port}/postgres`], user: "postgres" })
  const rows = await db.read`select ${"plain js"}::text as hello`
  const aborted = await db.read({ signal: AbortSignal.timeout(200) })`select pg_sleep(30)`.catch((e) => e)
  if (!(aborted instanceof PromiseError.Aborted)) throw new Error(`expected Aborted, got ${aborted}`)
  await db.close()
  const ldap = await createLdapClient({ endpoints: [directory.server.url], bindDn: directory.adminDn, password: directory.adminPassword })
  const who = await ldap.whoami()
  await ldap.close()
  console.log(`js consumer ok: ${rows[0].hello}, ${who}`)
} finally {
  await fixtures.dispose()
}
