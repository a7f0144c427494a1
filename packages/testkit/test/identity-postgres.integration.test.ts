import { describe, expect, layer } from "@effect/vitest"
import { Identity, ServerSet } from "@tether/core"
import { Effect, Redacted, Schedule } from "effect"
import { PostgresCluster } from "../src/index.ts"
import { query } from "../src/internal/pg.ts"
import { attempt, endpointUrl, pgDriver } from "./drivers.ts"
import { EndUser, identityProperty } from "./identityProperty.ts"
import type { PgSession } from "./drivers.ts"


const currentUser = (session: PgSession) =>
  attempt(() => session.sql<Array<{ user: string }>>`select current_user as user`).pipe(Effect.map((rows) => rows[0]!.user))

const ROLES = 20
const roleName = (i: number) => `app_user_${i}`
const rolePassword = (i: number) => `role-password-${i}`

layer(PostgresCluster.layer({ replicas: 0 }), { excludeTestServices: true })("identities on real PostgreSQL", (it) => {
  const setUp = Effect.gen(function*() {
    const cluster = yield* PostgresCluster.PostgresCluster
    const statements = Array.from({ length: ROLES }, (_, i) =>
      `create role ${roleName(i)} login password '${rolePassword(i)}' in role ${cluster.passwordGroup};`)
    yield* query(cluster.primary.url, `do $$ begin if not exists (select from pg_roles where rolname = '${roleName(0)}') then ${statements.join(" ")} end if; end $$`)
    return cluster
  }).pipe(Effect.orDie)

  const makeSet = (url: string, max: number) =>
    ServerSet.make({
      name: "database",
      endpoints: [url],
      driver: pgDriver,
      pool: { max, maxPerIdentity: 4, validationWindow: "1 second" },
      health: false,
      retry: false
    })

  describe("identity-aware pooling", () => {
    it.effect("property: 20 roles over 200 concurrent fibers with interruptions — current_user is always the role the effect runs as", () =>
      Effect.gen(function*() {
        const cluster = yield* setUp
        yield* identityProperty({
          identities: Array.from({ length: ROLES }, (_, i) =>
            Identity.make(roleName(i), Redacted.make(rolePassword(i)), { label: `user${i}` })),
          makeSet: () => makeSet(endpointUrl(cluster.primary), 8),
          whoami: currentUser,
          expected: roleName,
          runs: 4,
          check: ({ failures, mismatches, status }) =>
            Effect.gen(function*() {
              // Every session the pool opened ends once its scope closed (a backend exits a moment after its client left).
              const left = yield* query(
                cluster.primary.url,
                `select count(*)::int as n from pg_stat_activity where usename like 'app_user_%'`
              ).pipe(
                Effect.repeat({ until: (rows) => rows[0]!["n"] === 0, schedule: Schedule.spaced("100 millis"), times: 30 })
              )
              const pool = status.endpoints[0]!.pool
              expect(mismatches).toEqual([])
              expect(failures).toEqual([])
              expect(pool.open).toBeLessThanOrEqual(8)
              expect(pool.inUse).toBe(0)
              expect(pool.evictions).toBeGreaterThan(0)
              expect(left[0]!["n"]).toBe(0)
            })
        })
      }))

    it.effect("a wrong password is that caller's typed error: no connection kept, the breaker stays closed", () =>
      Effect.gen(function*() {
        const cluster = yield* setUp
        const set = yield* ServerSet.make({
          name: "database",
          endpoints: [endpointUrl(cluster.primary)],
          driver: pgDriver,
          pool: { max: 4 },
          health: false,
          breaker: { consecutiveFailures: 1 }
        })
        const secret = "wrong-Secret-7c1e"
        const wrong = Identity.make(roleName(0), Redacted.make(secret), { label: "user0" })
        for (let i = 0; i < 3; i++) {
          const error = yield* Effect.flip(set.useAs(EndUser, currentUser).pipe(Effect.provideService(EndUser, wrong)))
          expect(error._tag).toBe("ClientError")
          expect(error._tag === "ClientError" ? error.code : undefined).toBe("28P01")
          expect(String(error)).not.toContain(secret)
        }
        yield* Effect.sleep("50 millis") // a failed connect's slot is released in the background
        const status = (yield* set.status).endpoints[0]!
        expect(status.breaker!.status).toBe("closed")
        expect(status.pool.open).toBe(0)
        const right = Identity.make(roleName(0), Redacted.make(rolePassword(0)))
        expect(yield* set.useAs(EndUser, currentUser).pipe(Effect.provideService(EndUser, right))).toBe(roleName(0))
      }).pipe(Effect.scoped))
  })
})
