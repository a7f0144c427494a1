import { describe, expect, layer } from "@effect/vitest"
import { Effect, Exit, Scope } from "effect"
import postgres from "postgres"
import { PgBouncer, PostgresCluster } from "../src/index.ts"
import { isAlive } from "../src/internal/process.ts"

const run = <A>(url: string, options: postgres.Options<Record<string, postgres.PostgresType>>, text: string) =>
  Effect.acquireUseRelease(
    Effect.sync(() => postgres(url, { max: 1, connect_timeout: 5, prepare: false, fetch_types: false, ...options })),
    (sql) => Effect.tryPromise({ try: () => sql.unsafe(text) as unknown as Promise<A>, catch: (e) => e }),
    (sql) => Effect.promise(() => sql.end({ timeout: 0 }).catch(() => undefined))
  )

layer(PostgresCluster.layer({ replicas: 1 }), { excludeTestServices: true })("PgBouncer fixture", (it) => {
  describe("a real PgBouncer in transaction mode", () => {
    it.effect("passes queries through, checks passwords, retargets, and stops with its scope", () =>
      Effect.gen(function*() {
        const cluster = yield* PostgresCluster.PostgresCluster
        const scope = yield* Scope.make()
        const bouncer = yield* PgBouncer.make({
          target: cluster.primary,
          poolMode: "transaction",
          poolSize: 2,
          users: [cluster.passwordUser]
        }).pipe(Scope.provide(scope))
        expect(bouncer.url).not.toContain(bouncer.password)
        const [row] = yield* run<Array<{ replica: boolean; who: string }>>(
          bouncer.url,
          { username: "postgres", password: bouncer.password },
          "select pg_is_in_recovery() as replica, current_user as who"
        )
        expect(row).toEqual({ replica: false, who: "postgres" })
        // The password role logs in through it with its own password; a wrong one is refused.
        const [me] = yield* run<Array<{ who: string }>>(
          bouncer.url,
          { username: cluster.passwordUser.user, password: cluster.passwordUser.password },
          "select current_user as who"
        )
        expect(me!.who).toBe(cluster.passwordUser.user)
        const refused = yield* Effect.flip(
          run(bouncer.url, { username: cluster.passwordUser.user, password: "wrong" }, "select 1")
        )
        expect(String((refused as { message?: string }).message ?? refused)).toMatch(/password|auth/i)
        // Transaction pooling: pools and pool mode on the admin console.
        const pools = yield* bouncer.admin("SHOW POOLS")
        expect(pools.some((p) => p["database"] === "postgres" && p["pool_mode"] === "transaction")).toBe(true)
        // Retarget to the replica: new transactions land there.
        yield* bouncer.retarget(cluster.replicas[0]!)
        const [after] = yield* run<Array<{ replica: boolean }>>(
          bouncer.url,
          { username: "postgres", password: bouncer.password },
          "select pg_is_in_recovery() as replica"
        )
        expect(after!.replica).toBe(true)
        const pid = bouncer.pid
        expect(pid).toBeGreaterThan(0)
        yield* Scope.close(scope, Exit.void)
        expect(isAlive(pid!)).toBe(false)
      }))
  })
})
