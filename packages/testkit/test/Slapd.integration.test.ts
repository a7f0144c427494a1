import * as fs from "node:fs"
import type * as tls from "node:tls"
import { describe, expect, it, layer } from "@effect/vitest"
import { Duration, Effect, Exit } from "effect"
import { Attribute, Change, Client, InvalidCredentialsError } from "ldapts"
import { FixtureError, Slapd } from "../src/index.ts"
import { isAlive } from "../src/internal/process.ts"
import { eventually } from "./eventually.ts"

const WHO_AM_I = "1.3.6.1.4.1.4203.1.11.3"

/** An ldapts client for the test, unbound with the scope. */
const client = (url: string, tlsOptions?: tls.ConnectionOptions) =>
  Effect.acquireRelease(
    Effect.sync(() =>
      new Client({ url, connectTimeout: 1000, timeout: 5000, ...(tlsOptions === undefined ? {} : { tlsOptions }) })
    ),
    (c) => Effect.promise(() => c.unbind().catch(() => undefined))
  )

const attempt = <A>(f: () => Promise<A>) => Effect.tryPromise({ try: f, catch: (e) => e })

const whoAmI = (c: Client) => Effect.map(attempt(() => c.exop(WHO_AM_I)), (r) => r.value)

const findUid = (c: Client, base: string, uid: string) =>
  Effect.map(
    attempt(() => c.search(base, { filter: `(uid=${uid})`, attributes: ["uid", "description"] })),
    (r) => r.searchEntries
  )

layer(Slapd.layer({ servers: 2, tls: true }), { excludeTestServices: true })("Slapd (two servers, TLS)", (it) => {
  it.effect("describes its servers, admin and users", () =>
    Effect.gen(function*() {
      const ldap = yield* Slapd.Slapd
      expect(ldap.servers).toHaveLength(2)
      expect(ldap.replicating).toBe(true)
      expect(ldap.server).toBe(ldap.servers[0])
      for (const server of ldap.servers) {
        expect(server.url).toBe(`ldap://127.0.0.1:${server.port}`)
        expect(server.ldapsUrl).toBe(`ldaps://127.0.0.1:${server.ldapsPort}`)
        expect(server.state).toBe("running")
        expect(server.pid).toBeGreaterThan(0)
      }
      expect(ldap.adminDn).toBe("cn=admin,dc=example,dc=com")
      expect(ldap.users).toHaveLength(20)
      expect(ldap.users[0]).toMatchObject({ dn: "uid=user1,ou=people,dc=example,dc=com", password: "password-1" })
      expect(ldap.caCertPem).toContain("BEGIN CERTIFICATE")
      expect(fs.readFileSync(ldap.caCertPath!, "utf8")).toBe(ldap.caCertPem)
    }))

  it.effect("the admin and a user bind; Who am I? names them", () =>
    Effect.gen(function*() {
      const ldap = yield* Slapd.Slapd
      const admin = yield* client(ldap.server.url)
      yield* attempt(() => admin.bind(ldap.adminDn, ldap.adminPassword))
      expect(yield* whoAmI(admin)).toBe(`dn:${ldap.adminDn}`)

      const user = ldap.users[4]!
      const c = yield* client(ldap.servers[1]!.url)
      yield* attempt(() => c.bind(user.dn, user.password))
      expect(yield* whoAmI(c)).toBe(`dn:${user.dn}`)
      const people = yield* attempt(() => c.search(ldap.peopleDn, { filter: "(objectClass=inetOrgPerson)" }))
      expect(people.searchEntries).toHaveLength(20)
      // Users read entries but never another user's password.
      const other = yield* attempt(() =>
        c.search(ldap.users[0]!.dn, { scope: "base", attributes: ["cn", "userPassword"] })
      )
      expect(other.searchEntries[0]).toMatchObject({ cn: "User 1" })
      expect(other.searchEntries[0]!.userPassword ?? []).toEqual([])
      const own = yield* attempt(() => c.search(user.dn, { scope: "base", attributes: ["userPassword"] }))
      expect(String(own.searchEntries[0]!.userPassword)).toMatch(/^\{SSHA\}/)
      const group = yield* attempt(() => c.search(`cn=users,${ldap.groupsDn}`, { scope: "base" }))
      expect(group.searchEntries[0]!.member).toHaveLength(20)
    }))

  it.effect("a wrong password fails with invalid credentials", () =>
    Effect.gen(function*() {
      const ldap = yield* Slapd.Slapd
      const c = yield* client(ldap.server.url)
      const error = yield* Effect.flip(attempt(() => c.bind(ldap.users[0]!.dn, "wrong-password")))
      expect(error).toBeInstanceOf(InvalidCredentialsError)
      const adminError = yield* Effect.flip(attempt(() => c.bind(ldap.adminDn, "wrong-password")))
      expect(adminError).toBeInstanceOf(InvalidCredentialsError)
    }))

  it.effect("writes replicate both ways", () =>
    Effect.gen(function*() {
      const ldap = yield* Slapd.Slapd
      const [one, two] = ldap.servers
      const c1 = yield* client(one!.url)
      const c2 = yield* client(two!.url)
      yield* attempt(() => c1.bind(ldap.adminDn, ldap.adminPassword))
      yield* attempt(() => c2.bind(ldap.adminDn, ldap.adminPassword))

      const dn = `uid=replicated,${ldap.peopleDn}`
      yield* attempt(() =>
        c1.add(dn, { objectClass: "inetOrgPerson", uid: "replicated", cn: "Replicated", sn: "R" })
      )
      yield* eventually(Effect.map(findUid(c2, ldap.peopleDn, "replicated"), (entries) => entries.length === 1))

      yield* attempt(() =>
        c2.modify(
          dn,
          new Change({
            operation: "replace",
            modification: new Attribute({ type: "description", values: ["changed on ldap2"] })
          })
        )
      )
      yield* eventually(
        Effect.map(findUid(c1, ldap.peopleDn, "replicated"), (entries) =>
          entries[0]?.description === "changed on ldap2")
      )
    }))

  it.effect("ldaps and StartTLS work with the fixture's CA and fail without it", () =>
    Effect.gen(function*() {
      const ldap = yield* Slapd.Slapd
      const user = ldap.users[1]!
      const ca = { ca: [ldap.caCertPem!] }

      const secure = yield* client(ldap.server.ldapsUrl!, ca)
      yield* attempt(() => secure.bind(user.dn, user.password))
      expect(yield* whoAmI(secure)).toBe(`dn:${user.dn}`)

      const untrusted = yield* client(ldap.server.ldapsUrl!)
      const error = yield* Effect.flip(attempt(() => untrusted.bind(user.dn, user.password)))
      expect(String((error as Error).message)).toMatch(/certificate/i)

      const startTls = yield* client(ldap.servers[1]!.url)
      yield* attempt(() => startTls.startTLS({ ...ca, servername: "localhost" }))
      yield* attempt(() => startTls.bind(user.dn, user.password))
      expect(yield* whoAmI(startTls)).toBe(`dn:${user.dn}`)
    }))

  it.effect("SIGSTOP makes requests hang; SIGCONT resumes them", () =>
    Effect.gen(function*() {
      const ldap = yield* Slapd.Slapd
      const server = ldap.servers[1]!
      const c = yield* client(server.url)
      yield* attempt(() => c.bind(ldap.adminDn, ldap.adminPassword))

      yield* ldap.stop(server)
      yield* Effect.addFinalizer(() => ldap.cont(server).pipe(Effect.ignore))
      expect(server.state).toBe("stopped")
      const hung = yield* whoAmI(c).pipe(Effect.timeoutOption(Duration.millis(300)))
      expect(hung._tag).toBe("None")

      yield* ldap.cont(server)
      expect(server.state).toBe("running")
      const again = yield* client(server.url)
      yield* attempt(() => again.bind(ldap.adminDn, ldap.adminPassword))
      expect(yield* whoAmI(again)).toBe(`dn:${ldap.adminDn}`)
    }))

  it.effect("kill makes connections fail; restart brings the server back in sync", () =>
    Effect.gen(function*() {
      const ldap = yield* Slapd.Slapd
      const [one, two] = ldap.servers
      const oldPid = one!.pid
      yield* ldap.kill(one!)
      expect(one!.state).toBe("killed")
      expect(one!.pid).toBeUndefined()
      const dead = yield* client(one!.url)
      const error = yield* Effect.flip(attempt(() => dead.bind(ldap.adminDn, ldap.adminPassword)))
      expect(String((error as Error).message)).toMatch(/ECONNREFUSED/)

      // A write while ldap1 is down reaches it after the restart.
      const c2 = yield* client(two!.url)
      yield* attempt(() => c2.bind(ldap.adminDn, ldap.adminPassword))
      yield* attempt(() =>
        c2.add(`uid=while-down,${ldap.peopleDn}`, { objectClass: "inetOrgPerson", uid: "while-down", cn: "W", sn: "W" })
      )

      yield* ldap.restart(one!)
      expect(one!.state).toBe("running")
      expect(one!.pid).not.toBe(oldPid)
      const c1 = yield* client(one!.url)
      yield* attempt(() => c1.bind(ldap.users[0]!.dn, ldap.users[0]!.password))
      yield* eventually(Effect.map(findUid(c1, ldap.peopleDn, "while-down"), (entries) => entries.length === 1))
    }))
})

describe("Slapd (lifecycle)", () => {
  it.live("one plain server: no TLS, no replication", () =>
    Effect.gen(function*() {
      const ldap = yield* Slapd.make({ users: 3, adminPassword: "other-secret" })
      expect(ldap.servers).toHaveLength(1)
      expect(ldap.replicating).toBe(false)
      expect(ldap.server.ldapsUrl).toBeUndefined()
      expect(ldap.caCertPem).toBeUndefined()
      expect(ldap.users.map((u) => u.uid)).toEqual(["user1", "user2", "user3"])
      const c = yield* client(ldap.server.url)
      yield* attempt(() => c.bind(ldap.adminDn, "other-secret"))
      const users = yield* attempt(() => c.search(ldap.peopleDn, { scope: "one" }))
      expect(users.searchEntries).toHaveLength(3)
    }).pipe(Effect.scoped))

  it.live("closing the scope stops every server and deletes the temp dir, also on failure", () =>
    Effect.gen(function*() {
      let dir = ""
      let pids: Array<number> = []
      const exit = yield* Effect.exit(Effect.scoped(
        Effect.gen(function*() {
          const ldap = yield* Slapd.make({ servers: 2 })
          dir = ldap.dir
          pids = ldap.servers.map((s) => s.pid!)
          yield* ldap.stop(ldap.servers[1]!) // even a paused server is cleaned up
          return yield* Effect.fail("the test failed")
        })
      ))
      expect(Exit.isFailure(exit)).toBe(true)
      expect(pids).toHaveLength(2)
      expect(pids.filter(isAlive)).toEqual([])
      expect(fs.existsSync(dir)).toBe(false)
    }))

  it.live("rejects bad options with a FixtureError", () =>
    Effect.gen(function*() {
      const error = yield* Effect.flip(Effect.scoped(Slapd.make({ servers: 3 as 2 })))
      expect(error).toBeInstanceOf(FixtureError)
      expect(error.message).toContain("servers")
      const suffix = yield* Effect.flip(Effect.scoped(Slapd.make({ suffix: "o=nope" })))
      expect(suffix.message).toContain("dc=")
    }))
})
