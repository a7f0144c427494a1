/**
 * Trust on real slapd: an operation always runs as its identity (under
 * connection resets, timeouts and interruptions), a wrong password only
 * hurts its caller, a rotation fails no work in flight.
 */
import { describe, expect, layer } from "@effect/vitest"
import { Identity } from "@tether/core"
import { FaultProxy, Slapd } from "@tether/testkit"
import { Clock, Effect, Exit, Fiber, Metric, Random, Redacted, Stream } from "effect"
import { LdapClient } from "../src/index.ts"
import { adminClient } from "./support.ts"

class EndUser extends Identity.Service<EndUser>()("test/trust/EndUser") {}

const tagOf = (u: unknown) =>
  typeof u === "object" && u !== null && "_tag" in u ? String((u as { _tag: unknown })._tag) : String(u)

layer(Slapd.layer({ servers: 1, users: 20 }), { excludeTestServices: true })("LDAP trust on real slapd", (it) => {
  describe("an operation always runs as its identity", () => {
    it.effect(
      "20 identities, random timeouts and interruptions, resetAll every 100-200 ms: 0 operations as another identity, 0 as anonymous",
      () =>
        Effect.gen(function*() {
          const directory = yield* Slapd.Slapd
          const proxy = yield* FaultProxy.make({ target: directory.server })
          const ldap = yield* LdapClient.make({
            endpoints: [proxy.url("ldap")],
            bindDn: directory.adminDn,
            password: Redacted.make(directory.adminPassword),
            health: false,
            breaker: false,
            timeout: "2 seconds",
            // Room for every identity's connections, so they sit idle between operations when a reset hits them.
            pool: { max: 48, maxPerIdentity: 2, validationWindow: "10 seconds", acquireTimeout: "10 seconds" }
          })
          const users = directory.users.map((u) => Identity.make(u.dn, Redacted.make(u.password), { label: u.uid }))
          const tally = { ok: 0, wrong: [] as Array<string>, anonymous: 0, failed: new Map<string, number>(), interrupted: 0 }
          const deadline = (yield* Clock.currentTimeMillis) + 10_000
          const running = Effect.map(Clock.currentTimeMillis, (now) => now < deadline)

          const one = (i: number) =>
            Effect.gen(function*() {
              // i === 20: the service account (the default identity).
              const expected = i === 20 ? `dn:${directory.adminDn}` : `dn:${users[i]!.principal}`
              const op = i === 20 ? ldap.whoami : ldap.as(EndUser).whoami.pipe(Effect.provideService(EndUser, users[i]!))
              const check = Effect.tap(op, (seen) =>
                Effect.sync(() => {
                  if (seen === "") tally.anonymous++
                  else if (seen !== expected) tally.wrong.push(`${expected} saw ${seen}`)
                  else tally.ok++
                }))
              const style = yield* Random.nextIntBetween(0, 10)
              if (style === 0) {
                // Interrupted at a random point.
                const fiber = yield* Effect.forkChild(check)
                yield* Effect.sleep(yield* Random.nextIntBetween(0, 3))
                yield* Fiber.interrupt(fiber)
                tally.interrupted++
                return
              }
              const exit = yield* Effect.exit(
                style === 1 ? Effect.timeout(check, yield* Random.nextIntBetween(1, 5)) : check
              )
              if (Exit.isFailure(exit)) {
                const tag = Exit.hasInterrupts(exit) ? "Interrupt" : tagOf(exit.cause.reasons[0]?._tag === "Fail" ? exit.cause.reasons[0].error : exit.cause)
                tally.failed.set(tag, (tally.failed.get(tag) ?? 0) + 1)
              }
            })

          const workers = Effect.forEach(
            Array.from({ length: 21 * 2 }, (_, k) => k % 21),
            (i) => Effect.gen(function*() {
              while (yield* running) {
                yield* one(i)
                yield* Effect.sleep(yield* Random.nextIntBetween(0, 10))
              }
            }),
            { concurrency: "unbounded", discard: true }
          )
          let resets = 0
          const resetter = Effect.gen(function*() {
            while (yield* running) {
              yield* Effect.sleep(yield* Random.nextIntBetween(100, 200))
              resets += yield* proxy.resetAll
            }
          })
          // Bounded: a run that wedges (as ldapts's unbound reconnects can make it) fails with what it saw so far.
          const finished = yield* Effect.all([workers, resetter], { concurrency: "unbounded", discard: true }).pipe(
            Effect.timeoutOption("60 seconds")
          )
          const summary0 = { ...tally, failed: Object.fromEntries(tally.failed), resets }
          expect({ finished: finished._tag, anonymous: tally.anonymous, wrong: tally.wrong.length }, JSON.stringify(summary0))
            .toEqual({ finished: "Some", anonymous: 0, wrong: 0 })
          const status = (yield* ldap.status).endpoints[0]!
          expect(tally.wrong).toEqual([])
          expect(tally.anonymous).toBe(0)
          // The run did something: resets cut connections in use, and most operations went through.
          expect(resets).toBeGreaterThan(20)
          expect(tally.ok, JSON.stringify(summary0)).toBeGreaterThan(100)
          expect(status.pool.open).toBeLessThanOrEqual(48)
        }).pipe(Effect.scoped)
    )
  })

  describe("a wrong service-account password", () => {
    it.effect("does not make a healthy server unhealthy: end users keep working, status and metric show the probe's auth failure", () =>
      Effect.gen(function*() {
        const directory = yield* Slapd.Slapd
        const ldap = yield* LdapClient.make({
          name: "wrong-service-password",
          endpoints: [directory.server.url],
          bindDn: directory.adminDn,
          password: Redacted.make("not-the-service-password"),
          health: { interval: "100 millis", unhealthyAfter: 1 }
        })
        // Let several probes run.
        let status = (yield* ldap.status).endpoints[0]!
        for (let i = 0; i < 100 && (status.monitor?.probeAuthFailures ?? 0) < 3; i++) {
          yield* Effect.sleep("50 millis")
          status = (yield* ldap.status).endpoints[0]!
        }
        expect(status.monitor!.probeAuthFailures).toBeGreaterThanOrEqual(3)
        expect(status.health).toBe("healthy")
        expect(status.probeAuthFailure).toContain("refused the bind")
        expect(status.probeAuthFailure).not.toContain("not-the-service-password")
        for (const user of directory.users.slice(0, 5)) {
          const seen = yield* ldap.as(EndUser).whoami.pipe(
            Effect.provideService(EndUser, Identity.make(user.dn, Redacted.make(user.password)))
          )
          expect(seen).toBe(`dn:${user.dn}`)
        }
        // The service account itself gets its typed error.
        expect((yield* Effect.flip(ldap.whoami))._tag).toBe("LdapInvalidCredentials")
        const counted = (yield* Metric.snapshot).find((m) =>
          m.id === "tether_probe_auth_failures_total" && m.attributes?.["endpoint"] === status.id
        )
        expect((counted?.state as { count?: number } | undefined)?.count).toBeGreaterThanOrEqual(3)
      }).pipe(Effect.scoped))
  })

  describe("a wrong password hurts only its caller", () => {
    it.effect(
      "victims and attackers on the same DNs: 0 victim failures, every attacker call is LdapInvalidCredentials; a rotation fails no work in flight",
      () =>
        Effect.gen(function*() {
          const directory = yield* Slapd.Slapd
          const ldap = yield* adminClient(directory, {
            pool: { max: 8, maxPerIdentity: 2, acquireTimeout: "20 seconds" }
          })
          const victims = directory.users.slice(0, 10)
          const victimFailures: Array<string> = []
          const attackerOutcomes = new Map<string, number>()
          let victimOps = 0
          const asUser = (dn: string, password: string) =>
            <A, E>(effect: Effect.Effect<A, E, EndUser>) =>
              Effect.provideService(effect, EndUser, Identity.make(dn, Redacted.make(password), { label: "user" }))
          yield* Effect.forEach(
            Array.from({ length: 40 }, (_, k) => k),
            (k) =>
              Effect.gen(function*() {
                const victim = victims[k % victims.length]!
                for (let i = 0; i < 20; i++) {
                  if (i % 5 === k % 5) {
                    // One call in five is an attacker's with the victim's DN and a wrong password.
                    const exit = yield* Effect.exit(ldap.as(EndUser).whoami.pipe(asUser(victim.dn, `guess-${k}-${i}`)))
                    const tag = Exit.isSuccess(exit)
                      ? "Success"
                      : Exit.hasInterrupts(exit)
                      ? "Interrupt"
                      : tagOf(exit.cause.reasons[0]?._tag === "Fail" ? exit.cause.reasons[0].error : "Die")
                    attackerOutcomes.set(tag, (attackerOutcomes.get(tag) ?? 0) + 1)
                  }
                  const exit = yield* Effect.exit(ldap.as(EndUser).whoami.pipe(asUser(victim.dn, victim.password)))
                  victimOps++
                  if (Exit.isFailure(exit)) victimFailures.push(String(exit.cause))
                  else if (exit.value !== `dn:${victim.dn}`) victimFailures.push(`${victim.dn} saw ${exit.value}`)
                }
              }),
            { concurrency: "unbounded", discard: true }
          )
          expect(victimOps).toBe(800)
          expect(victimFailures).toEqual([])
          expect(Object.fromEntries(attackerOutcomes)).toEqual({ LdapInvalidCredentials: 160 })

          // Rotation: a stream holds a connection bound with the old password while the password changes.
          const user = directory.users[12]!
          const oldPassword = asUser(user.dn, user.password)
          const held = yield* ldap.as(EndUser).search(directory.peopleDn, { pageSize: 2, filter: "(objectClass=person)" }).pipe(
            Stream.tap(() => Effect.sleep("20 millis")),
            Stream.runCount,
            oldPassword,
            Effect.forkChild
          )
          yield* Effect.sleep("50 millis")
          const rotated = `${user.password}-rotated`
          yield* ldap.modify(user.dn, [{ operation: "replace", attribute: "userPassword", values: [rotated] }])
          expect(yield* ldap.as(EndUser).whoami.pipe(asUser(user.dn, rotated))).toBe(`dn:${user.dn}`)
          // The stream bound with the old password finishes.
          expect(yield* Fiber.join(held)).toBe(directory.users.length)
          // The old password is refused now, with the typed error.
          const stale = yield* Effect.flip(ldap.as(EndUser).whoami.pipe(oldPassword))
          expect(stale._tag).toBe("LdapInvalidCredentials")
          expect(yield* ldap.as(EndUser).whoami.pipe(asUser(user.dn, rotated))).toBe(`dn:${user.dn}`)
        }).pipe(Effect.scoped)
    )
  })
})
