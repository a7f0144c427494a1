// A consumer of the packed packages that does not use Effect for its own
// code: the Promise API, typechecked strictly, run against the servers of the
// installed @tether/testkit (started here through a ManagedRuntime).
import { createLdapClient, createPgClient, PromiseError } from "@tether/promise"
import type { Entry, PromisePgClient } from "@tether/promise"
import { PostgresCluster, Slapd } from "@tether/testkit"
import { Context, Layer, ManagedRuntime } from "effect"

const fixtures = ManagedRuntime.make(Layer.mergeAll(PostgresCluster.layer(), Slapd.layer({ users: 3 })))
try {
  const context = await fixtures.context()
  const cluster = Context.get(context, PostgresCluster.PostgresCluster)
  const directory = Context.get(context, Slapd.Slapd)

  const db: PromisePgClient = await createPgClient({
    endpoints: [`postgres://${cluster.primary.host}:${cluster.primary.port}/postgres`],
    user: "postgres"
  })
  const [row] = await db.read<{ one: number }>`select 1 as one`
  if (row?.one !== 1) throw new Error("select 1 failed")
  const total = await db.transaction(async (tx) => {
    await tx.sql`create temp table t (n int)`
    await tx.sql`insert into t values (${20}), (${22})`
    const [sum] = await tx.sql<{ n: number }>`select sum(n)::int as n from t`
    return sum?.n
  })
  if (total !== 42) throw new Error(`transaction returned ${total}`)
  const failure: unknown = await db.read`select * from missing`.then(() => undefined, (e: unknown) => e)
  if (PromiseError.tagOf(failure) !== "PgQueryError" || !(failure instanceof Error)) throw new Error("expected a PgQueryError")
  await db.close()

  const ldap = await createLdapClient({
    endpoints: [directory.server.url],
    bindDn: directory.adminDn,
    password: directory.adminPassword
  })
  const entries: Array<Entry> = []
  for await (const entry of ldap.search(directory.peopleDn, { filter: "(uid=*)", pageSize: 1 })) {
    entries.push(entry)
    if (entries.length === 2) break
  }
  if (entries.length !== 2) throw new Error(`expected 2 entries, got ${entries.length}`)
  await ldap.close()
  console.log(`promise consumer ok: pg ${total}, ldap ${entries.map((e) => e.dn).join("; ")}`)
} finally {
  await fixtures.dispose()
}
