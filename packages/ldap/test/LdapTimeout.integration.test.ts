import { describe, expect, layer } from "@effect/vitest"
import { Slapd } from "@tether/testkit"
import { Effect, Redacted, Schedule } from "effect"
import { LdapClient, LdapError } from "../src/index.ts"

/** Timeouts are `LdapTimeout`, a connection fault: idempotent reads are retried on another server. */
layer(Slapd.layer({ servers: 2, replication: true, users: 5 }), { excludeTestServices: true })("LDAP timeouts", (it) => {
  const clientOf = (directory: Slapd.Directory, options?: Partial<LdapClient.Options>) =>
    LdapClient.make({
      endpoints: directory.servers.map((s) => s.url),
      bindDn: directory.adminDn,
      password: Redacted.make(directory.adminPassword),
      timeout: "1 second",
      connectTimeout: "1 second",
      ...options
    })

  const usersOn = (directory: Slapd.Directory, url: string) =>
    Effect.gen(function*() {
      const one = yield* clientOf(directory, { endpoints: [url], health: false, retry: false })
      return (yield* one.searchAll(directory.peopleDn, { filter: "(objectClass=inetOrgPerson)", attributes: ["uid"] })).length
    }).pipe(Effect.scoped, Effect.orElseSucceed(() => -1))

  describe("SIGSTOP of one of two replicating servers", () => {
    it.effect("an operation timeout is LdapTimeout, classified as a retryable connection fault", () =>
      Effect.gen(function*() {
        const directory = yield* Slapd.Slapd
        const victim = directory.servers[1]!
        const only = yield* clientOf(directory, { endpoints: [victim.url], health: false, retry: false, breaker: false })
        expect((yield* only.whoami).startsWith("dn:")).toBe(true)
        yield* directory.stop(victim)
        const error = yield* Effect.flip(only.whoami).pipe(Effect.ensuring(Effect.orDie(directory.cont(victim))))
        expect(error._tag).toBe("LdapTimeout")
        const fault = LdapError.classify(error)
        expect(fault.kind).toBe("connection")
        expect(error.message).toContain("no answer within")
      }).pipe(Effect.scoped))

    it.effect("under a read load, 0 idempotent reads fail while one server is hung", () =>
      Effect.gen(function*() {
        const directory = yield* Slapd.Slapd
        // Both servers serve every user before one is taken away (replication has caught up).
        yield* Effect.forEach(directory.servers, (server) =>
          usersOn(directory, server.url).pipe(
            Effect.repeat({ until: (n) => n === directory.users.length, schedule: Schedule.spaced("100 millis"), times: 100 })
          ), { discard: true })
        const ldap = yield* clientOf(directory, {
          strategy: "round-robin",
          pool: { min: 1, max: 4 },
          // No health probes: only the error's classification can steer reads away from the hung server.
          health: false,
          breaker: { consecutiveFailures: 2, openDuration: Schedule.spaced("2 seconds") }
        })
        const victim = directory.servers[1]!
        let failed = 0
        let done = 0
        let slow = 0
        const reader = (j: number) =>
          Effect.gen(function*() {
            for (let i = 0; i < 25; i++) {
              const started = Date.now()
              const result = yield* Effect.result(
                i % 2 === 0
                  ? Effect.asVoid(ldap.searchAll(directory.peopleDn, { filter: `(uid=${directory.users[(i + j) % 5]!.uid})`, attributes: ["uid"] }))
                  : Effect.asVoid(ldap.get(directory.users[(i + j) % 5]!.dn))
              )
              if (result._tag === "Failure") {
                failed++
                yield* Effect.logWarning(`read failed: ${result.failure.message}`)
              } else done++
              // A read that took a timeout's length went to the hung server first.
              if (Date.now() - started >= 900) slow++
              if (i === 3 && j === 0) yield* directory.stop(victim)
              yield* Effect.sleep("20 millis")
            }
          })
        yield* Effect.forEach([0, 1, 2, 3], reader, { concurrency: 4, discard: true }).pipe(
          Effect.ensuring(Effect.orDie(directory.cont(victim)))
        )
        expect({ failed, done }).toEqual({ failed: 0, done: 100 })
        // The load did meet the hung server (else this test would prove nothing).
        expect(slow).toBeGreaterThan(0)
      }).pipe(Effect.scoped), 120_000)
  })
})
