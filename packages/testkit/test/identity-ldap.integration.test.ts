import { describe, expect, layer } from "@effect/vitest"
import { Identity, ServerSet } from "@tether/core"
import { Effect, Logger, Metric, Redacted, References, Tracer } from "effect"
import type { Client } from "ldapts"
import { Slapd } from "../src/index.ts"
import { attempt, ldapDriver } from "./drivers.ts"
import { EndUser, identityProperty } from "./identityProperty.ts"

const whoami = (client: Client) => attempt(() => client.exop("1.3.6.1.4.1.4203.1.11.3")).pipe(Effect.map((r) => r.value ?? ""))

layer(Slapd.layer({ servers: 1, users: 20 }), { excludeTestServices: true })("identities on real slapd", (it) => {
  const makeSet = (ldap: Slapd.Directory, max: number, rebind = true) =>
    ServerSet.make({
      name: "directory",
      endpoints: [ldap.server.url],
      driver: ldapDriver(ldap.adminDn, ldap.adminPassword, { rebind }),
      pool: { max, maxPerIdentity: 4, validationWindow: "1 second" },
      health: false,
      retry: false
    })

  describe("identity-aware pooling", () => {
    it.effect("property: 20 identities over 200 concurrent fibers with interruptions, re-binding or reconnecting — the server always sees the identity the effect runs as", () =>
      Effect.gen(function*() {
        const ldap = yield* Slapd.Slapd
        // Half of the runs re-bind evicted connections, half close them and reconnect.
        const rebinding = (run: number) => run % 2 === 0
        yield* identityProperty({
          identities: ldap.users.map((u) => Identity.make(u.dn, Redacted.make(u.password), { label: u.uid })),
          makeSet: (run) => makeSet(ldap, 8, rebinding(run)),
          whoami,
          expected: (i) => `dn:${ldap.users[i]!.dn}`,
          runs: 6,
          check: ({ failures, mismatches, status }, run) =>
            Effect.sync(() => {
              const pool = status.endpoints[0]!.pool
              expect(mismatches).toEqual([])
              expect(failures).toEqual([])
              expect(pool.open).toBeLessThanOrEqual(8)
              expect(pool.inUse).toBe(0)
              expect(pool.evictions).toBeGreaterThan(0)
              if (rebinding(run)) expect(pool.rebinds).toBeGreaterThan(0)
              else expect(pool.rebinds).toBe(0)
            })
        })
      }))

    it.effect("a wrong password is that caller's typed error: no connection kept, the breaker stays closed", () =>
      Effect.gen(function*() {
        const ldap = yield* Slapd.Slapd
        const set = yield* ServerSet.make({
          name: "directory",
          endpoints: [ldap.server.url],
          driver: ldapDriver(ldap.adminDn, ldap.adminPassword),
          pool: { max: 4 },
          health: false,
          breaker: { consecutiveFailures: 1 }
        })
        const wrong = Identity.make(ldap.users[0]!.dn, Redacted.make("not-the-password"))
        for (let i = 0; i < 3; i++) {
          const error = yield* Effect.flip(set.as(EndUser).use(whoami).pipe(Effect.provideService(EndUser, wrong)))
          expect(error._tag).toBe("ClientError")
        }
        yield* Effect.sleep("50 millis") // a failed connect's slot is released in the background
        const status = (yield* set.status).endpoints[0]!
        expect(status.breaker!.status).toBe("closed")
        expect(status.pool.open).toBe(0)
        const right = Identity.make(ldap.users[0]!.dn, Redacted.make(ldap.users[0]!.password))
        expect(yield* set.as(EndUser).use(whoami).pipe(Effect.provideService(EndUser, right))).toBe(`dn:${ldap.users[0]!.dn}`)
      }).pipe(Effect.scoped))

    it.effect("no secret appears in any log line, error, span, metric or status snapshot", () =>
      Effect.gen(function*() {
        const ldap = yield* Slapd.Slapd
        const secret = "Tr0ub4dor&3-recognisable-secret"
        const lines: Array<string> = []
        const spans: Array<Tracer.NativeSpan> = []
        const tracer = Tracer.make({
          span: (options) => {
            const span = new Tracer.NativeSpan(options)
            spans.push(span)
            return span
          }
        })
        const logger = Logger.make<unknown, void>((options) => {
          lines.push(JSON.stringify({ message: options.message, annotations: options.fiber.getRef(References.CurrentLogAnnotations) }, (_k, v) => (typeof v === "bigint" ? String(v) : v)))
        })
        const outputs = yield* Effect.gen(function*() {
          const set = yield* makeSet(ldap, 4)
          const wrong = Identity.make(ldap.users[1]!.dn, Redacted.make(secret), { label: "user2" })
          const error = yield* Effect.flip(set.as(EndUser).use(whoami).pipe(Effect.provideService(EndUser, wrong)))
          // A successful borrow too: its spans and metrics are searched as well.
          const right = Identity.make(ldap.users[0]!.dn, Redacted.make(ldap.users[0]!.password), { label: "user1" })
          yield* set.as(EndUser).use(whoami).pipe(Effect.provideService(EndUser, right))
          yield* Effect.sleep("1100 millis") // let the sweep publish its metrics
          const status = yield* set.status
          const metrics = yield* Metric.snapshot
          return [
            String(error),
            error.message,
            JSON.stringify(error),
            JSON.stringify(status),
            String(wrong.secret),
            JSON.stringify(wrong),
            JSON.stringify(metrics, (_k, v) => (typeof v === "bigint" ? String(v) : v))
          ]
        }).pipe(Effect.scoped, Effect.provide(Logger.layer([logger])), Effect.withSpan("request"), Effect.withTracer(tracer))
        const spanTexts = spans.map((span) =>
          JSON.stringify({
            name: span.name,
            attributes: Object.fromEntries(span.attributes),
            events: span.events,
            status: span.status._tag === "Ended" ? String(span.status.exit) : "open"
          }, (_k, v) => (typeof v === "bigint" ? String(v) : v))
        )
        // The capture works: the request span and the set's spans (with the identity's label) were seen.
        expect(spanTexts.some((t) => t.includes("tether.serverset.use") && t.includes("user2"))).toBe(true)
        for (const text of [...outputs, ...lines, ...spanTexts]) expect(text).not.toContain(secret)
      }))
  })
})
