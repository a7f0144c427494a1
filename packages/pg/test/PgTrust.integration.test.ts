/**
 * Trust (#10) through `@tether/pg` itself, on a real PostgreSQL server:
 *
 * - an operation always runs as its identity, under connection resets
 *   (FaultProxy `resetAll` every 100-200 ms), random timeouts and
 *   interruptions, through `PgClient` (`db.as(Identity)`) and `PgSql`
 *   (`PgSql.as(Identity)`): every operation checks `current_user` and
 *   `session_user`;
 * - a wrong password for someone's role hurts only its caller (the typed
 *   `PgAuthenticationError`), and a rotated password takes effect without
 *   failing work in flight;
 * - a wrong service-account password (the probes' credentials) does not make a
 *   healthy server unhealthy for end users.
 *
 * Progress is measured by counts (resets done, operations verified), never by
 * elapsed time.
 */
import { describe, expect, layer } from "@effect/vitest"
import { Identity } from "@tether/core"
import { FaultProxy, PostgresCluster } from "@tether/testkit"
import { Cause, Deferred, Effect, Exit, Fiber, Metric, Random, Redacted, Stream } from "effect"
import * as Reactivity from "effect/reactivity/Reactivity"
import { PgClient, PgSql } from "../src/index.ts"
import { chaoticCall, count, failureOf, type Storm, urlOf, withResets } from "./support.ts"

class EndUser extends Identity.Service<EndUser>()("test/PgTrust/EndUser") {}

const ROLES = 20
const roleName = (i: number) => `trust_user_${i}`
/** Distinct per role, so that a session of one role can never pass for another's. */
const rolePassword = (i: number) => `trust-Pw-${i}-${(i * 7919).toString(36)}`
const identity = (i: number, password = rolePassword(i)) =>
  Identity.make(roleName(i), Redacted.make(password), { label: `user${i}` })

/** Who the server says runs the statement. */
interface Who {
  readonly current: string
  readonly session: string
}

layer(PostgresCluster.layer({ replicas: 0 }), { excludeTestServices: true })("PostgreSQL trust through @tether/pg", (it) => {
  /** Creates the 20 password roles (once per cluster); returns the cluster and a superuser client. */
  const setUp = Effect.gen(function*() {
    const cluster = yield* PostgresCluster.PostgresCluster
    const admin = yield* PgClient.make({
      name: "admin",
      endpoints: [{ url: urlOf(cluster.primary), role: "primary" }],
      user: "postgres",
      health: false
    })
    const statements = Array.from({ length: ROLES }, (_, i) =>
      `create role ${roleName(i)} login password '${rolePassword(i)}' in role ${cluster.passwordGroup};`)
    yield* admin.unsafe(
      `do $$ begin if not exists (select from pg_roles where rolname = '${roleName(0)}') then ${statements.join(" ")} end if; end $$`,
      [],
      { mode: "write" }
    )
    return { cluster, admin }
  }).pipe(Effect.orDie)

  /**
   * Runs `operation(i)` as role `i` from 2 workers per role while resets go on
   * every 100-200 ms for at least `rounds` rounds and `during` operations (20
   * of them verified), then until every role has `after` more verified
   * operations. One call in ten is interrupted at a
   * random point, one in ten runs under a 1-4 ms timeout.
   */
  const storm = (options: {
    readonly proxy: FaultProxy.Proxy
    readonly rounds: number
    /** Operations to start while the resets go on (at least). */
    readonly during: number
    readonly after: number
    readonly operation: (i: number) => Effect.Effect<Who, unknown>
  }) =>
    Effect.gen(function*() {
      const tally = {
        ok: 0,
        /** Operations started while the resets went on. */
        duringStorm: 0,
        okDuringStorm: 0,
        interrupted: 0,
        wrong: [] as Array<string>,
        failed: new Map<string, number>(),
        okAfter: Array.from({ length: ROLES }, () => 0)
      }
      const one = (storm: Storm, i: number) =>
        Effect.gen(function*() {
          const check = Effect.tap(options.operation(i), (who) =>
            Effect.sync(() => {
              if (who.current !== roleName(i) || who.session !== roleName(i)) {
                tally.wrong.push(`${roleName(i)} saw current_user ${who.current}, session_user ${who.session}`)
              } else {
                tally.ok++
                if (storm.storming) tally.okDuringStorm++
                else tally.okAfter[i]!++
              }
            }))
          if (storm.storming) tally.duringStorm++
          const exit = yield* chaoticCall(check, 4)
          if (exit === undefined) tally.interrupted++
          else if (Exit.isFailure(exit)) count(tally.failed, failureOf(exit))
        })
      const { resets: reset, rounds } = yield* withResets(
        options.proxy,
        {
          every: [100, 200],
          // Until enough rounds were done and enough operations ran (and some succeeded) between resets, however loaded the machine.
          keepResetting: (rounds) =>
            Effect.sync(() => rounds < options.rounds || tally.duringStorm < options.during || tally.okDuringStorm < 20)
        },
        (storm) =>
          Effect.forEach(Array.from({ length: ROLES * 2 }, (_, k) => k % ROLES), (i) =>
            Effect.gen(function*() {
              while (storm.storming || tally.okAfter[i]! < options.after) {
                yield* one(storm, i)
                yield* Effect.sleep(yield* Random.nextIntBetween(0, 10))
              }
            }), { concurrency: "unbounded", discard: true })
      )
      const summary = JSON.stringify({ ...tally, failed: Object.fromEntries(tally.failed), rounds, reset })
      yield* Effect.logInfo(`storm: ${summary}`)
      return { tally, reset, summary }
    })

  describe("an operation always runs as its identity", () => {
    it.effect(
      "PgClient: 20 identities, random timeouts and interruptions, resetAll every 100-200 ms: 0 operations as another identity, every failure typed, the pool recovers",
      () =>
        Effect.gen(function*() {
          const { cluster } = yield* setUp
          const proxy = yield* FaultProxy.make({ target: cluster.primary })
          const db = yield* PgClient.make({
            name: "trust-storm",
            endpoints: [{ url: urlOf(proxy), role: "primary" }],
            user: "postgres",
            health: false,
            breaker: false,
            // A long validation window: only the loan-time readiness check (closed socket, unknown
            // session state) and the pid check stand between a reset session and the next borrower.
            pool: { max: 40, maxPerIdentity: 2, validationWindow: "1 hour", acquireTimeout: "1 hour" },
            // Reads share sessions too (pipelined), so shared sessions face the resets as well.
            multiplex: 2,
            queryTimeout: "1 hour",
            slowQueryThreshold: "1 hour",
            connectTimeout: "20 seconds"
          })
          const as = (i: number) => Effect.provideService(EndUser, identity(i))
          const who = "select current_user as current, session_user as session"
          const { reset, summary, tally } = yield* storm({
            proxy,
            rounds: 40,
            during: 200,
            after: 3,
            operation: (i) => {
              const user = db.as(EndUser)
              // Reads (read-only sessions), writes (read-write sessions) and transactions, mixed.
              const op = (kind: number) =>
                kind === 0
                  ? user.unsafe<Who>(who, [], { mode: "read" })
                  : kind === 1
                  ? user.unsafe<Who>(who, [], { mode: "write" })
                  : user.transaction((tx) => tx.unsafe<Who>(who))
              return Effect.flatMap(Random.nextIntBetween(0, 3), (k) => op(k)).pipe(
                Effect.map((rows) => rows[0]!),
                as(i)
              )
            }
          })
          expect(tally.wrong, summary).toEqual([])
          expect(reset, summary).toBeGreaterThan(40)
          expect(tally.duringStorm, summary).toBeGreaterThanOrEqual(200)
          expect(tally.okDuringStorm, summary).toBeGreaterThanOrEqual(20)
          expect(tally.interrupted, summary).toBeGreaterThan(0)
          // Every failure is a typed error: the client's, or the test's own timeout. No defect, no bare interruption.
          for (const tag of tally.failed.keys()) {
            expect(["PgConnectionError", "PgOutcomeUnknown", "PgTimeout", "TimeoutError"], summary).toContain(tag)
          }
          expect((yield* db.status).endpoints[0]!.pool.inUse, summary).toBe(0)
        }).pipe(Effect.scoped),
      120_000
    )

    it.effect(
      "PgSql: the same storm through PgSql.as (statements, transactions, cursors, read-only sessions): 0 operations as another identity, every failure typed",
      () =>
        Effect.gen(function*() {
          const { cluster } = yield* setUp
          const proxy = yield* FaultProxy.make({ target: cluster.primary })
          const sql = yield* PgSql.make({
            name: "trust-sql-storm",
            endpoints: [{ url: urlOf(proxy), role: "primary" }],
            user: "postgres",
            health: false,
            breaker: false,
            pool: { max: 20, maxPerIdentity: 1, validationWindow: "1 hour", acquireTimeout: "1 hour" },
            exclusivePool: { max: 20, maxPerIdentity: 1, validationWindow: "1 hour", acquireTimeout: "1 hour" },
            readPool: { max: 20, maxPerIdentity: 1, validationWindow: "1 hour", acquireTimeout: "1 hour" },
            queryTimeout: "1 hour",
            slowQueryThreshold: "1 hour",
            connectTimeout: "20 seconds"
          })
          const who = sql<Who>`select current_user as current, session_user as session`
          const { reset, summary, tally } = yield* storm({
            proxy,
            rounds: 25,
            during: 150,
            after: 2,
            operation: (i) =>
              Effect.flatMap(Random.nextIntBetween(0, 4), (k) =>
                k === 0
                  ? who
                  : k === 1
                  ? sql.withTransaction(who)
                  : k === 2
                  ? Stream.runCollect(who.stream)
                  : PgSql.readReplica(who)).pipe(
                  Effect.map((rows) => rows[0]!),
                  PgSql.as(EndUser),
                  Effect.provideService(EndUser, identity(i))
                )
          })
          expect(tally.wrong, summary).toEqual([])
          expect(reset, summary).toBeGreaterThan(25)
          expect(tally.duringStorm, summary).toBeGreaterThanOrEqual(150)
          expect(tally.okDuringStorm, summary).toBeGreaterThanOrEqual(20)
          for (const tag of tally.failed.keys()) expect(["SqlError", "TimeoutError"], summary).toContain(tag)
        }).pipe(Effect.scoped, Effect.provide(Reactivity.layer)),
      120_000
    )
  })

  describe("a wrong password hurts only its caller", () => {
    it.effect(
      "PgClient: victims and attackers on the same roles: 0 victim failures, every attacker call is PgAuthenticationError; a rotation fails no work in flight",
      () =>
        Effect.gen(function*() {
          const { admin, cluster } = yield* setUp
          const db = yield* PgClient.make({
            name: "trust-attack",
            endpoints: [{ url: urlOf(cluster.primary), role: "primary" }],
            user: "postgres",
            health: false,
            // Not under test: a slow SCRAM handshake on a loaded machine must not open it.
            breaker: false,
            pool: { max: 20, maxPerIdentity: 2, acquireTimeout: "1 hour" },
            connectTimeout: "20 seconds"
          })
          const victimFailures: Array<string> = []
          const attackerOutcomes = new Map<string, number>()
          /** Wrong passwords that showed up in their caller's error. */
          const printed: Array<string> = []
          let victimOps = 0
          const whoami = (i: number, password: string) =>
            db.as(EndUser).read<Who>`select current_user as current, session_user as session`.pipe(
              Effect.map((rows) => rows[0]!),
              Effect.provideService(EndUser, identity(i, password))
            )
          yield* Effect.forEach(Array.from({ length: 40 }, (_, k) => k), (k) =>
            Effect.gen(function*() {
              const i = k % 10
              for (let n = 0; n < 10; n++) {
                if (n % 5 === k % 5) {
                  // One call in five is an attacker's: the victim's role name, a wrong password.
                  const guess = `guess-${k}-${n}`
                  const exit = yield* Effect.exit(whoami(i, guess))
                  count(attackerOutcomes, failureOf(exit))
                  if (Exit.isFailure(exit) && Cause.pretty(exit.cause).includes(guess)) printed.push(guess)
                }
                const exit = yield* Effect.exit(whoami(i, rolePassword(i)))
                victimOps++
                if (Exit.isFailure(exit)) victimFailures.push(Cause.pretty(exit.cause))
                else if (exit.value.current !== roleName(i) || exit.value.session !== roleName(i)) {
                  victimFailures.push(`${roleName(i)} saw ${JSON.stringify(exit.value)}`)
                }
              }
            }), { concurrency: "unbounded", discard: true })
          expect(victimOps).toBe(400)
          expect(victimFailures).toEqual([])
          expect(Object.fromEntries(attackerOutcomes)).toEqual({ PgAuthenticationError: 80 })
          expect(printed).toEqual([])

          // Rotation: a transaction in flight on a session of the old password while the password changes.
          const i = 15
          const started = yield* Deferred.make<void>()
          const rotatedDone = yield* Deferred.make<void>()
          const held = yield* db.as(EndUser).transaction((tx) =>
            Effect.gen(function*() {
              const before = yield* tx.sql<Who>`select current_user as current, session_user as session`
              yield* Deferred.succeed(started, undefined)
              yield* Deferred.await(rotatedDone)
              const after = yield* tx.sql<Who>`select current_user as current, session_user as session`
              return [before[0]!, after[0]!]
            })
          ).pipe(Effect.provideService(EndUser, identity(i)), Effect.forkChild)
          yield* Deferred.await(started)
          const rotated = `${rolePassword(i)}-rotated`
          yield* admin.unsafe(`alter role ${roleName(i)} password '${rotated}'`, [], { mode: "write" })
          // The new secret binds and serves while the old session is still in its transaction.
          expect(yield* whoami(i, rotated)).toEqual({ current: roleName(i), session: roleName(i) })
          yield* Deferred.succeed(rotatedDone, undefined)
          expect(yield* Fiber.join(held)).toEqual([
            { current: roleName(i), session: roleName(i) },
            { current: roleName(i), session: roleName(i) }
          ])
          // The old password is refused now, with the typed error; the new one keeps working.
          expect((yield* Effect.flip(whoami(i, rolePassword(i))))._tag).toBe("PgAuthenticationError")
          expect(yield* whoami(i, rotated)).toEqual({ current: roleName(i), session: roleName(i) })
          yield* admin.unsafe(`alter role ${roleName(i)} password '${rolePassword(i)}'`, [], { mode: "write" })
        }).pipe(Effect.scoped),
      120_000
    )
  })

  describe("a wrong service-account password", () => {
    it.effect(
      "PgClient: the probes' auth failure does not make a healthy server unhealthy; end users keep working; status and metric show it",
      () =>
        Effect.gen(function*() {
          const { cluster } = yield* setUp
          const servicePassword = "not-the-Service-Password-4f2"
          const db = yield* PgClient.make({
            name: "trust-wrong-service-password",
            endpoints: [{ url: urlOf(cluster.primary), role: "primary" }],
            // The probes (and operations not run as an identity) log in as the service account.
            user: cluster.passwordUser.user,
            password: Redacted.make(servicePassword),
            health: { interval: "100 millis", unhealthyAfter: 1 },
            pool: { max: 20, maxPerIdentity: 2, acquireTimeout: "1 hour" },
            connectTimeout: "20 seconds"
          })
          const failures: Array<string> = []
          let ops = 0
          let status = (yield* db.status).endpoints[0]!
          // End users work while the probes keep failing to authenticate (at least 3 probes rejected).
          while ((status.monitor?.probeAuthFailures ?? 0) < 3 || ops < 200) {
            yield* Effect.forEach(Array.from({ length: ROLES }, (_, i) => i), (i) => {
              const user = db.as(EndUser)
              const op = i % 2 === 0
                ? user.read<Who>`select current_user as current, session_user as session`
                : user.write<Who>`select current_user as current, session_user as session`
              return Effect.exit(op).pipe(
                Effect.provideService(EndUser, identity(i)),
                Effect.map((exit) => {
                  ops++
                  if (Exit.isFailure(exit)) failures.push(Cause.pretty(exit.cause))
                  else if (exit.value[0]!.current !== roleName(i)) failures.push(`${roleName(i)} saw ${exit.value[0]!.current}`)
                })
              )
            }, { concurrency: "unbounded", discard: true })
            status = (yield* db.status).endpoints[0]!
            expect(status.health).not.toBe("unhealthy")
          }
          expect(failures).toEqual([])
          expect(status.monitor!.probeAuthFailures).toBeGreaterThanOrEqual(3)
          expect(status.health).toBe("healthy")
          expect(status.probeAuthFailure).toBeDefined()
          expect(JSON.stringify(status)).not.toContain(servicePassword)
          // The service account itself gets its typed error.
          const own = yield* Effect.flip(db.read`select 1`)
          expect(own._tag).toBe("PgAuthenticationError")
          expect(own.message).not.toContain(servicePassword)
          const counted = (yield* Metric.snapshot).find((m) =>
            m.id === "tether_probe_auth_failures_total" && m.attributes?.["endpoint"] === status.id
          )
          expect((counted?.state as { count?: number } | undefined)?.count).toBeGreaterThanOrEqual(3)
        }).pipe(Effect.scoped),
      60_000
    )
  })
})
