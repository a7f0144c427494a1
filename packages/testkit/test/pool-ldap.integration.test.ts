import { describe, expect, layer } from "@effect/vitest"
import { ConnectionPool } from "@tether/core"
import { Data, Effect } from "effect"
import { Client } from "ldapts"
import { Slapd } from "../src/index.ts"

/** An ldapts failure, as the pool's driver error. */
class LdapError extends Data.TaggedError("LdapError")<{ readonly cause: unknown }> {}

const tryLdap = <A>(f: () => Promise<A>) => Effect.tryPromise({ try: f, catch: (cause) => new LdapError({ cause }) })

const WHO_AM_I = "1.3.6.1.4.1.4203.1.11.3"

/** One real ldapts connection, bound as `dn`, per pooled item. */
const ldapConnection = (url: string, dn: string, password: string) =>
  Effect.acquireRelease(
    Effect.sync(() => new Client({ url, connectTimeout: 2_000, timeout: 5_000 })),
    (client) => Effect.promise(() => client.unbind().catch(() => undefined))
  ).pipe(Effect.tap((client) => tryLdap(() => client.bind(dn, password))))

const whoami = (client: Client) =>
  tryLdap(() => client.exop(WHO_AM_I)).pipe(Effect.map((r) => String(r.value ?? "")))

/**
 * Valid while the connection is still bound as `dn`. A plain liveness check
 * is not enough: ldapts silently reconnects a lost connection on the next
 * operation, and the new connection is anonymous.
 */
const boundAs = (dn: string) => (client: Client) => Effect.map(whoami(client), (identity) => identity === `dn:${dn}`)

layer(Slapd.layer({ servers: 1 }), { excludeTestServices: true })("ConnectionPool on real slapd", (it) => {
  describe("pooling", () => {
    it.effect("serves many concurrent searches over at most max bound connections", () =>
      Effect.gen(function*() {
        const ldap = yield* Slapd.Slapd
        const pool = yield* ConnectionPool.make({
          name: ldap.server.url,
          acquire: ldapConnection(ldap.server.url, ldap.adminDn, ldap.adminPassword),
          validate: boundAs(ldap.adminDn),
          min: 1,
          max: 3
        })
        const counts = yield* Effect.forEach(
          Array.from({ length: 50 }, (_, i) => i),
          (i) =>
            pool.use((client) =>
              tryLdap(() =>
                client.search(ldap.peopleDn, { filter: `(uid=user${(i % ldap.users.length) + 1})`, attributes: ["cn"] })
              ).pipe(Effect.map((r) => r.searchEntries.length))
            ),
          { concurrency: 10 }
        )
        expect(counts.every((n) => n === 1)).toBe(true)
        const stats = yield* pool.stats
        expect(stats.created).toBeLessThanOrEqual(3)
        expect(stats.borrows).toBe(50)
        // Every pooled connection is bound as the admin.
        const identities = yield* Effect.forEach([1, 2, 3], () => pool.use(whoami), { concurrency: "unbounded" })
        expect(new Set(identities)).toEqual(new Set([`dn:${ldap.adminDn}`]))
      }).pipe(Effect.scoped))

    it.effect("a wrong password fails the borrower with the driver's typed error and keeps nothing", () =>
      Effect.gen(function*() {
        const ldap = yield* Slapd.Slapd
        const user = ldap.users[0]!
        const pool = yield* ConnectionPool.make({
          name: ldap.server.url,
          acquire: ldapConnection(ldap.server.url, user.dn, "not-the-password"),
          max: 2
        })
        const error = yield* Effect.flip(pool.use(whoami))
        expect(error._tag).toBe("LdapError")
        expect(String((error as LdapError).cause)).toMatch(/InvalidCredentials/)
        const stats = yield* pool.stats
        expect(stats.idle + stats.inUse).toBe(0)
        expect(stats.acquireFailures).toBe(1)
      }).pipe(Effect.scoped))
  })

  describe("failures", () => {
    it.effect("after the server restarts, dead idle connections are replaced on borrow", () =>
      Effect.gen(function*() {
        const ldap = yield* Slapd.Slapd
        const pool = yield* ConnectionPool.make({
          name: ldap.server.url,
          acquire: ldapConnection(ldap.server.url, ldap.adminDn, ldap.adminPassword),
          validate: boundAs(ldap.adminDn),
          min: 2,
          max: 2,
          validationWindow: 0
        })
        yield* ldap.kill(ldap.server)
        yield* ldap.restart(ldap.server)
        const identity = yield* pool.use(whoami)
        expect(identity).toBe(`dn:${ldap.adminDn}`)
        const stats = yield* pool.stats
        expect(stats.validationFailures).toBeGreaterThanOrEqual(1)
      }).pipe(Effect.scoped))
  })
})
