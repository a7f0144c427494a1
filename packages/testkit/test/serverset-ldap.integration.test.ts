import { describe, expect, layer } from "@effect/vitest"
import { ServerSet } from "@tether/core"
import { Effect, Schedule } from "effect"
import { Client } from "ldapts"
import { Slapd } from "../src/index.ts"
import { attempt, bounded, type ClientError, ldapDriver } from "./drivers.ts"

layer(Slapd.layer({ servers: 2 }), { excludeTestServices: true })("ServerSet on two replicating slapd servers", (it) => {
  /** A search for one user through the set: returns the endpoint that answered. */
  const search = (set: ServerSet.ServerSet<Client, ClientError>, ldap: Slapd.Directory, i: number) =>
    set.as().use(
      (client, endpoint) =>
        bounded(
          endpoint.id,
          attempt(() => client.search(ldap.peopleDn, { filter: `(uid=user${(i % ldap.users.length) + 1})` }))
        ).pipe(Effect.map((r) => ({ endpoint: endpoint.id, found: r.searchEntries.length }))),
      { idempotent: true }
    )

  /** How many users a server returns to the admin, asked directly (not through a set). */
  const usersOn = (ldap: Slapd.Directory, url: string) =>
    Effect.acquireUseRelease(
      Effect.sync(() => new Client({ url, connectTimeout: 1_000, timeout: 2_000 })),
      (client) =>
        attempt(async () => {
          await client.bind(ldap.adminDn, ldap.adminPassword)
          return (await client.search(ldap.peopleDn, { filter: "(objectClass=inetOrgPerson)", attributes: ["uid"] })).searchEntries.length
        }).pipe(Effect.orElseSucceed(() => -1)),
      (client) => Effect.promise(() => client.unbind().catch(() => undefined))
    )

  describe("failover", () => {
    it.effect("a directory server killed mid-load: every search still succeeds on the other", () =>
      Effect.gen(function*() {
        const ldap = yield* Slapd.Slapd
        const set = yield* ServerSet.make({
          name: "directory",
          endpoints: ldap.servers.map((s) => s.url),
          driver: ldapDriver(ldap.adminDn, ldap.adminPassword),
          strategy: "least-connections",
          pool: { min: 1, max: 4, validationWindow: "50 millis" },
          health: { interval: "250 millis", timeout: "500 millis" },
          breaker: { openDuration: Schedule.spaced("250 millis") },
          retry: { schedule: Schedule.spaced("20 millis").pipe(Schedule.upTo({ times: 5 })) }
        })
        const victim = ldap.servers[1]!
        const victimId = victim.url
        const first = yield* Effect.forEach(Array.from({ length: 40 }, (_, i) => i), (i) => search(set, ldap, i), {
          concurrency: 8
        })
        expect(first.some((r) => r.endpoint === victimId)).toBe(true)
        yield* ldap.kill(victim)
        const after = yield* Effect.forEach(Array.from({ length: 200 }, (_, i) => i), (i) => search(set, ldap, i), {
          concurrency: 8
        })
        expect(after.every((r) => r.found === 1 && r.endpoint !== victimId)).toBe(true)
        yield* Effect.sleep("500 millis")
        const status = yield* set.status
        expect(status.endpoints.find((e) => e.id === victimId)!.health).toBe("unhealthy")
        yield* ldap.restart(victim)
        // Once a probe sees it again, it serves again.
        let back = false
        for (let i = 0; i < 40 && !back; i++) {
          yield* Effect.sleep("100 millis")
          const round = yield* Effect.forEach(Array.from({ length: 8 }, (_, j) => j), (j) => search(set, ldap, j), {
            concurrency: 8
          })
          back = round.some((r) => r.endpoint === victimId)
        }
        expect(back).toBe(true)
      }).pipe(Effect.scoped))

    it.effect("a hung (SIGSTOPped) directory server is avoided; SIGCONT brings it back", () =>
      Effect.gen(function*() {
        const ldap = yield* Slapd.Slapd
        const set = yield* ServerSet.make({
          name: "directory",
          endpoints: ldap.servers.map((s) => s.url),
          driver: ldapDriver(ldap.adminDn, ldap.adminPassword),
          strategy: "round-robin",
          pool: { min: 1, max: 4, connectTimeout: "500 millis", drainTimeout: "1 second" },
          health: { interval: "200 millis", timeout: "300 millis" },
          breaker: { consecutiveFailures: 2, openDuration: Schedule.spaced("500 millis") },
          retry: { schedule: Schedule.recurs(4) }
        })
        // The server restarted by the previous test may still be catching up with its provider
        // (syncrepl refresh): wait until both serve every user before taking one away.
        yield* Effect.forEach(ldap.servers, (server) => usersOn(ldap, server.url).pipe(
          Effect.repeat({ until: (n) => n === ldap.users.length, schedule: Schedule.spaced("100 millis"), times: 50 })
        ), { discard: true })
        const victim = ldap.servers[1]!
        yield* Effect.forEach(Array.from({ length: 4 }, (_, i) => i), (i) => search(set, ldap, i), { discard: true })
        yield* ldap.stop(victim)
        const during = yield* Effect.forEach(Array.from({ length: 20 }, (_, i) => i), (i) => search(set, ldap, i), {
          concurrency: 2
        })
        expect(during.filter((r) => r.endpoint === victim.url || r.found !== 1)).toEqual([])
        yield* ldap.cont(victim)
        let back = false
        for (let i = 0; i < 60 && !back; i++) {
          yield* Effect.sleep("100 millis")
          back = (yield* search(set, ldap, i)).endpoint === victim.url
        }
        expect(back).toBe(true)
      }).pipe(Effect.scoped))
  })
})
