/**
 * The Promise API against real servers: PostgreSQL and slapd from the
 * testkit fixtures. Socket counts come from /proc/net/tcp (established
 * connections to the fixture's port), so "close() releases every socket" is
 * checked from the kernel's side, not from the pool's own bookkeeping.
 */
import { createLdapClient, createPgClient, PromiseError } from "@tether/promise"
import { PostgresCluster, Slapd } from "@tether/testkit"
import { Context, Layer, ManagedRuntime } from "effect"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "vitest"

const fixtures = ManagedRuntime.make(Layer.mergeAll(PostgresCluster.layer(), Slapd.layer({ users: 5 })))
let cluster: PostgresCluster.Cluster
let directory: Slapd.Directory

beforeAll(async () => {
  const context = await fixtures.context()
  cluster = Context.get(context, PostgresCluster.PostgresCluster)
  directory = Context.get(context, Slapd.Slapd)
})
afterAll(() => fixtures.dispose())

/** Established TCP connections from this machine to `port` (IPv4 loopback). */
const connectionsTo = (port: number): number => {
  const hex = port.toString(16).toUpperCase().padStart(4, "0")
  return fs.readFileSync("/proc/net/tcp", "utf8").split("\n").slice(1)
    .map((line) => line.trim().split(/\s+/))
    .filter((f) => f.length > 3 && f[2]!.endsWith(`:${hex}`) && f[3] === "01").length
}

/** Polls `check` until it holds (generous: the machine is shared). */
const eventually = async (check: () => boolean | Promise<boolean>, what: string, timeoutMs = 30_000) => {
  const deadline = Date.now() + timeoutMs
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`)
    await new Promise((r) => setTimeout(r, 50))
  }
}

const pgOptions = () => ({
  endpoints: [`postgres://${cluster.primary.host}:${cluster.primary.port}/postgres`],
  user: "postgres",
  health: false as const
})

describe("createPgClient", () => {
  it("reads, writes, and commits or rolls back transactions", async () => {
    const db = await createPgClient(pgOptions())
    try {
      await db.write`create table if not exists promise_items (id int primary key, name text)`
      await db.write`delete from promise_items`
      await db.write`insert into promise_items values (${1}, ${"one"})`
      const rows = await db.read<{ id: number; name: string }>`select id, name from promise_items order by id`
      expect(rows).toEqual([{ id: 1, name: "one" }])

      const inserted = await db.transaction(async (tx) => {
        await tx.sql`insert into promise_items values (${2}, ${"two"})`
        const [row] = await tx.sql<{ n: string }>`select count(*)::text as n from promise_items`
        return row!.n
      })
      expect(inserted).toBe("2")

      const mine = new Error("changed my mind")
      await expect(
        db.transaction(async (tx) => {
          await tx.sql`insert into promise_items values (${3}, ${"three"})`
          throw mine
        })
      ).rejects.toBe(mine)
      const after = await db.read<{ id: number }>`select id from promise_items order by id`
      expect(after.map((r) => r.id)).toEqual([1, 2])

      const streamed: Array<number> = []
      for await (const row of db.stream<{ id: number }>`select generate_series(1, 5) as id`) streamed.push(row.id)
      expect(streamed).toEqual([1, 2, 3, 4, 5])
    } finally {
      await db.close()
    }
  })

  it("rejects with the typed error: an Error with its _tag, fields and message", async () => {
    const db = await createPgClient(pgOptions())
    try {
      const error = await db.read`select * from no_such_table`.then(() => undefined, (e: unknown) => e)
      expect(error).toBeInstanceOf(Error)
      expect(PromiseError.tagOf(error)).toBe("PgQueryError")
      expect((error as { code: string }).code).toBe("42P01")
      expect((error as Error).message).toMatch(/no_such_table/)
      await expect(createPgClient({ ...pgOptions(), endpoints: ["not a url"] })).rejects.toMatchObject({
        _tag: "InvalidEndpoint"
      })
    } finally {
      await db.close()
    }
  })

  it("an AbortSignal cancels a slow query, and the connection is usable afterwards", async () => {
    const db = await createPgClient({ ...pgOptions(), pool: { max: 1 } })
    try {
      const observer = await createPgClient(pgOptions())
      const sleeping = async () => {
        const rows = await observer.read<{ n: number }>`
          select count(*)::int as n from pg_stat_activity where query like 'select pg_sleep(60)%' and state = 'active'`
        return rows[0]!.n
      }
      try {
        const controller = new AbortController()
        const slow = db.read({ signal: controller.signal })`select pg_sleep(60)`
        await eventually(async () => (await sleeping()) === 1, "the slow statement runs")
        controller.abort(new Error("user left"))
        const error = await slow.then(() => undefined, (e: unknown) => e)
        expect(error).toBeInstanceOf(PromiseError.Aborted)
        expect(PromiseError.tagOf(error)).toBe("Aborted")
        expect((error as Error).message).toMatch(/user left/)
        // The server is not left sleeping: the statement is gone from pg_stat_activity.
        await eventually(async () => (await sleeping()) === 0, "the slow statement is cancelled")

        // A transaction aborted in its body is rolled back: nothing it wrote is kept.
        await db.write`create table if not exists promise_abort (id int)`
        const txController = new AbortController()
        const tx = db.transaction(async (t) => {
          await t.sql`insert into promise_abort values (${9})`
          await t.sql`select pg_sleep(60)`
        }, { signal: txController.signal }).then(() => undefined, (e: unknown) => e)
        await eventually(async () => (await sleeping()) === 1, "the transaction's slow statement runs")
        txController.abort("cancel the transaction")
        expect(await tx).toBeInstanceOf(PromiseError.Aborted)
        await eventually(async () => (await sleeping()) === 0, "the transaction's statement is cancelled")
        expect(await observer.read`select id from promise_abort`).toEqual([])
      } finally {
        await observer.close()
      }
      // An already aborted signal rejects at once.
      await expect(db.read({ signal: AbortSignal.abort() })`select 1`).rejects.toBeInstanceOf(PromiseError.Aborted)
      expect(await db.read<{ one: number }>`select 1 as one`).toEqual([{ one: 1 }])
    } finally {
      await db.close()
    }
  })

  it("as(role) runs as that role, and a wrong password is a typed error", async () => {
    const db = await createPgClient(pgOptions())
    try {
      const { user, password } = cluster.passwordUser
      const [row] = await db.as({ user, password }).read<{ who: string }>`select current_user as who`
      expect(row!.who).toBe(user)
      const error = await db.as({ user, password: "wrong" }).read`select 1`.then(() => undefined, (e: unknown) => e)
      expect(PromiseError.tagOf(error)).toBe("PgAuthenticationError")
      expect(String(error)).not.toContain("wrong")
    } finally {
      await db.close()
    }
  })

  it("close() interrupts calls in flight and releases every socket", async () => {
    const port = cluster.primary.port
    const before = connectionsTo(port)
    const db = await createPgClient(pgOptions())
    await Promise.all([db.read`select 1`, db.read`select 2`, db.write`select 3`])
    const pending = db.read`select pg_sleep(60)`.then(() => undefined, (e: unknown) => e)
    await eventually(() => connectionsTo(port) > before, "connections are open")
    await db.close()
    expect(PromiseError.tagOf(await pending)).toBe("ClientClosed")
    await eventually(() => connectionsTo(port) <= before, "every socket is closed")
    await expect(db.read`select 1`).rejects.toBeInstanceOf(PromiseError.ClientClosed)
    await db.close() // idempotent
    const status = await createPgClient(pgOptions()).then(async (c) => {
      const s = await c.status()
      await c.close()
      return s
    })
    expect(status.endpoints.length).toBe(1)
  })
})

describe("createLdapClient", () => {
  const ldapOptions = () => ({
    endpoints: [directory.server.url],
    bindDn: directory.adminDn,
    password: directory.adminPassword,
    health: false as const
  })

  it("streams a search; an early break releases the connection", async () => {
    const ldap = await createLdapClient({ ...ldapOptions(), pool: { max: 1, acquireTimeout: "20 seconds" } })
    try {
      const seen: Array<string> = []
      for await (const entry of ldap.search(directory.peopleDn, { filter: "(uid=*)", pageSize: 1 })) {
        seen.push(entry.dn)
        break
      }
      expect(seen.length).toBe(1)
      // With one connection in the pool, these succeed only if the search gave it back.
      expect(await ldap.whoami()).toBe(`dn:${directory.adminDn}`)
      const all = await ldap.searchAll(directory.peopleDn, { filter: "(uid=*)" })
      expect(all.length).toBe(directory.users.length)
      // Pipelined operations hold a connection until it has been idle for a sweep (a few ms): wait for it.
      let inUse = (await ldap.status()).endpoints[0]!.pool.inUse
      for (let i = 0; i < 100 && inUse > 0; i++) {
        await new Promise((resolve) => setTimeout(resolve, 20))
        inUse = (await ldap.status()).endpoints[0]!.pool.inUse
      }
      expect(inUse).toBe(0)
    } finally {
      await ldap.close()
    }
  })

  it("adds entries, imports LDIF with progress, and rejects with typed errors", async () => {
    const ldap = await createLdapClient(ldapOptions())
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "tether-promise-"))
    try {
      const ou = `ou=promise,${directory.suffix}`
      await ldap.add(ou, { objectClass: ["organizationalUnit"], ou: "promise" })
      const duplicate = await ldap.add(ou, { objectClass: ["organizationalUnit"], ou: "promise" }).then(
        () => undefined,
        (e: unknown) => e
      )
      expect(duplicate).toBeInstanceOf(Error)
      expect(PromiseError.tagOf(duplicate)).toBe("LdapOperationError")

      const count = 1_100
      const ldif = Array.from({ length: count }, (_, i) =>
        `dn: cn=p${i},${ou}\nobjectClass: person\ncn: p${i}\nsn: S${i}\n`).join("\n")
      const file = path.join(dir, "people.ldif")
      fs.writeFileSync(file, ldif)
      const progress: Array<number> = []
      const report = await ldap.importLdif(file, { onProgress: (r) => progress.push(r.done + r.failed + r.skipped) })
      expect(report.done).toBe(count)
      expect(report.failed).toEqual([])
      expect(progress.length).toBeGreaterThan(0)
      const found = await ldap.searchAll(ou, { scope: "one", attributes: ["cn"] })
      expect(found.length).toBe(count)
      expect(await ldap.get(`cn=p7,${ou}`)).toMatchObject({ dn: `cn=p7,${ou}` })
      expect(await ldap.get(`cn=nobody,${ou}`)).toBeUndefined()

      const user = directory.users[0]!
      expect(await ldap.as({ dn: user.dn, password: user.password }).whoami()).toBe(`dn:${user.dn}`)
      const wrong = await ldap.as({ dn: user.dn, password: "wrong" }).whoami().then(() => undefined, (e: unknown) => e)
      expect(wrong).toBeInstanceOf(Error)
      expect(PromiseError.tagOf(wrong)).toBe("LdapInvalidCredentials")

      const missing = await ldap.importLdif(path.join(dir, "missing.ldif")).then(() => undefined, (e: unknown) => e)
      expect(PromiseError.tagOf(missing)).toBe("LdifReadError")
    } finally {
      fs.rmSync(dir, { recursive: true, force: true })
      await ldap.close()
    }
  })

  it("an aborted search rejects with Aborted; close() ends open searches and releases every socket", async () => {
    const port = directory.server.port
    const before = connectionsTo(port)
    const ldap = await createLdapClient(ldapOptions())
    const controller = new AbortController()
    const aborted = (async () => {
      for await (const _ of ldap.search(directory.peopleDn, { pageSize: 1, signal: controller.signal })) {
        controller.abort("enough")
      }
    })().then(() => undefined, (e: unknown) => e)
    expect(PromiseError.tagOf(await aborted)).toBe("Aborted")

    const open = ldap.search(directory.peopleDn, { pageSize: 1 })
    expect((await open.next()).done).toBe(false)
    await eventually(() => connectionsTo(port) > before, "connections are open")
    await ldap.close()
    await expect(open.next()).rejects.toBeInstanceOf(PromiseError.ClientClosed)
    await eventually(() => connectionsTo(port) <= before, "every socket is closed")
  })
})
