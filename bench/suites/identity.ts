/**
 * The `identity` suite: credential-aware pooling.
 *
 * 1. Reuse rate on real slapd (`set.as(key).use`, one endpoint, pool max 8,
 *    4 per identity, re-binding on): one user sequential, 3 users rotating,
 *    10 users concurrent. A borrow is a reuse when an open connection already
 *    bound as its identity served it. The seed's reported rates are the peers.
 * 2. Acquire throughput with 1,000 distinct identities (one open connection
 *    each, borrowed round robin) against the same workload with 1 identity,
 *    on an in-memory driver: what the per-identity lookup costs.
 * 3. Latency of one "Who am I?" on real slapd: pooled (same user) and re-bind
 *    (a user with no connection, pool full of others) against connect + bind
 *    + unbind per request with raw ldapts.
 */
import { Fault, Identity, IdentityPool, ServerSet } from "@tether/core"
import type { Driver } from "@tether/core"
import { Slapd } from "@tether/testkit"
import { Data, Effect, Exit, Redacted, Scope } from "effect"
import { Client } from "ldapts"
import { alternating, effectLoop, type LoopOptions, runScoped } from "../harness/loops.ts"
import * as requirements from "../harness/requirements.ts"
import { nextTurn, now, percentile } from "../harness/measure.ts"
import * as Tagged from "../../packages/core/src/internal/pool/identityPool.ts"
import type { Measurement, Suite } from "../harness/types.ts"

class LdapError extends Data.TaggedError("LdapError")<{ readonly cause: unknown }> {}
const attempt = <A>(f: () => Promise<A>) => Effect.tryPromise({ try: f, catch: (cause) => new LdapError({ cause }) })

const WHO_AM_I = "1.3.6.1.4.1.4203.1.11.3"

/** A minimal ldapts driver: bind as the identity (or the admin), re-bind an open connection. */
const ldapDriver = (adminDn: string, adminPassword: string): Driver.Driver<Client, LdapError> => {
  const bind = (client: Client, identity: Identity.Credentials | undefined) =>
    attempt(() =>
      identity === undefined
        ? client.bind(adminDn, adminPassword)
        : client.bind(identity.principal, identity.secret === undefined ? "" : Redacted.value(identity.secret))
    )
  return {
    connect: (endpoint, identity) =>
      Effect.acquireRelease(
        Effect.sync(() => new Client({ url: endpoint.url, connectTimeout: 2_000, timeout: 5_000 })),
        (client) => Effect.promise(() => client.unbind().catch(() => undefined))
      ).pipe(Effect.tap((client) => bind(client, identity))),
    rebind: bind,
    classify: () => Fault.make("semantic")
  }
}

/** A user of the bench directory. */
const userIdentity = (user: Slapd.User) => Identity.make(user.dn, Redacted.make(user.password), { label: user.uid })

/** An in-memory driver: connections are plain objects that know whom they are bound as. */
const memoryDriver = {
  connect: (identity: Identity.Credentials | undefined) => Effect.succeed({ principal: identity?.principal ?? "service" })
}

/** Median latency (µs) of `n` sequential runs of `op`. */
const medianMicros = <E>(op: (i: number) => Effect.Effect<unknown, E>, n: number) =>
  Effect.gen(function*() {
    const samples = new Float64Array(n)
    for (let i = 0; i < n; i++) {
      const t0 = now()
      yield* op(i)
      samples[i] = now() - t0
    }
    return percentile(samples.sort(), 0.5) * 1000
  })

export const identitySuite: Suite = {
  name: "identity",
  description: "Identity-aware pooling: reuse rates on real slapd, 1,000 identities vs 1, pooled vs re-bind vs connect+bind latency",
  requires: [requirements.slapd],
  run: async ({ quick, log }) => {
    const millis = quick ? 1_000 : 3_000
    const requests = quick ? 300 : 1_000
    const measurements: Array<Measurement> = []
    const notes: Array<string> = []

    const program = Effect.gen(function*() {
      log("identity: starting slapd with 10 users")
      const ldap = yield* Slapd.make({ servers: 1, users: 10 })
      const users = ldap.users.map(userIdentity)
      const driver = ldapDriver(ldap.adminDn, ldap.adminPassword)

      // 1. Reuse rates.
      class User extends Identity.Service<User>()("bench/User") {}
      const whoami = (client: Client) => attempt(() => client.exop(WHO_AM_I))
      const reuse = (label: string, seed: number, run: (set: ServerSet.ServerSet<Client, LdapError>) => Effect.Effect<void, unknown>) =>
        Effect.gen(function*() {
          const scope = yield* Scope.make()
          const set = yield* ServerSet.make({
            name: "reuse",
            endpoints: [ldap.server.url],
            driver,
            pool: { max: 8, maxPerIdentity: 4 },
            health: false
          }).pipe(Scope.provide(scope))
          yield* run(set)
          const pool = (yield* set.status).endpoints[0]!.pool
          yield* Scope.close(scope, Exit.void)
          measurements.push({
            case: label,
            metric: "reuse %",
            unit: "%",
            higherIsBetter: true,
            tether: pool.reuseRate * 100,
            peers: { "seed (reported)": seed }
          })
          notes.push(
            `${label}: ${pool.borrows} borrows, ${pool.created - pool.rebinds} connections opened, ${pool.rebinds} re-binds, ${pool.evictions} evictions.`
          )
          log(`identity: ${label}: reuse ${(pool.reuseRate * 100).toFixed(1)}% (${pool.created - pool.rebinds} opened, ${pool.rebinds} re-binds)`)
        })
      const as = (set: ServerSet.ServerSet<Client, LdapError>, user: Identity.Credentials) =>
        set.as(User).use(whoami, { idempotent: true }).pipe(Effect.provideService(User, user))
      yield* reuse("one user sequential", 100, (set) =>
        Effect.forEach(Array.from({ length: requests }), () => as(set, users[0]!), { discard: true }))
      yield* reuse("3 users rotating", 85, (set) =>
        Effect.forEach(Array.from({ length: requests }, (_, i) => i), (i) => as(set, users[i % 3]!), { discard: true }))
      yield* reuse("10 users concurrent", 80, (set) =>
        Effect.forEach(
          users,
          (user) => Effect.forEach(Array.from({ length: Math.ceil(requests / 10) }), () => as(set, user), { discard: true }),
          { concurrency: "unbounded", discard: true }
        ))

      // 2. 1,000 identities vs 1 identity, in memory.
      const many = Array.from({ length: 1_000 }, (_, i) =>
        Identity.make(`uid=u${i},ou=people,dc=example,dc=com`, Redacted.make(`password-${i}`), { label: `u${i}` }))
      /**
       * Borrow + return from 16 fibers over `identities` (each one's connection opened before
       * measuring): one window per call, on a pool kept open between windows.
       */
      const windowsScope = yield* Scope.make()
      const borrowWindows = (identities: ReadonlyArray<Identity.Credentials>) =>
        Effect.gen(function*() {
          const pool = yield* IdentityPool.make({ name: "memory", connect: memoryDriver.connect, max: 1_000 }).pipe(
            Scope.provide(windowsScope)
          )
          const op = (i: number) => pool.use(identities[i % identities.length]!, (c) => Effect.succeed(c.principal))
          // Warm up: every identity has its connection open before measuring.
          yield* Effect.forEach(identities, (identity) => pool.use(identity, () => Effect.void), { discard: true })
          yield* effectLoop(op, 16, 300)
          return (options: LoopOptions) => effectLoop(op, 16, millis / 2, options)
        })
      // Windows of the two alternate (see `alternating`): a machine whose speed drifts during the
      // run affects both alike. The medians are reported.
      const rounds = quick ? 4 : 8
      const windows = yield* alternating([
        ["one", yield* borrowWindows(many.slice(0, 1))],
        ["thousand", yield* borrowWindows(many)]
      ], { rounds, first: {}, rest: {} })
      yield* Scope.close(windowsScope, Exit.void)
      const oneIdentity = windows["one"]!.opsPerSecond
      const thousand = windows["thousand"]!.opsPerSecond
      const ratios = windows["thousand"]!.windows.map((w, i) => w.opsPerSecond / windows["one"]!.windows[i]!.opsPerSecond)
      measurements.push({
        case: "borrow + return, 16 fibers, in-memory driver",
        metric: "throughput, 1,000 identities",
        unit: "ops/s",
        higherIsBetter: true,
        tether: thousand,
        peers: { "1 identity": oneIdentity }
      })
      log(
        `identity: 1,000 identities ${Math.round(thousand)} ops/s, 1 identity ${Math.round(oneIdentity)} ops/s ` +
          `(medians of ${rounds} alternating windows; per-round ratios ${
            ratios.map((r) => r.toFixed(2)).join(", ")
          })`
      )

      // 2b. Reuse with and without bounded fairness on the pool IdentityPool.make builds (internal/pool),
      // on an in-memory driver whose work takes one event-loop turn.
      const rebindMemory = (c: { principal: string }, identity: Identity.Credentials | undefined) =>
        Effect.sync(() => {
          c.principal = identity?.principal ?? "service"
        })
      /** `users` closed-loop borrowers (one identity each) on `max` connections; reuse % and p99 acquire time. */
      const taggedReuse = (users: number, max: number, maxReuseStreak: number, rotating: boolean) =>
        Effect.gen(function*() {
          const scope = yield* Scope.make()
          const pool = yield* Tagged.make({
            name: "memory",
            connect: (identity) => Effect.sync(() => ({ principal: identity?.principal ?? "service" })),
            rebind: rebindMemory,
            max,
            maxPerIdentity: Math.min(4, max),
            maxReuseStreak
          }).pipe(Scope.provide(scope))
          const acquire: Array<number> = []
          const borrow = (user: number) =>
            Effect.suspend(() => {
              const t0 = now()
              return pool.use(many[user]!, () =>
                Effect.andThen(Effect.sync(() => acquire.push(now() - t0)), Effect.promise(nextTurn)))
            })
          if (rotating) {
            yield* Effect.forEach(Array.from({ length: requests }, (_, i) => i % users), borrow, { discard: true })
          } else {
            yield* Effect.forEach(
              Array.from({ length: users }, (_, u) => u),
              (u) => Effect.forEach(Array.from({ length: Math.ceil(requests / users) }), () => borrow(u), { discard: true }),
              { concurrency: "unbounded", discard: true }
            )
          }
          const stats = yield* pool.stats
          yield* Scope.close(scope, Exit.void)
          return { reuse: stats.reuseRate * 100, p99: percentile(acquire.sort((a, b) => a - b), 0.99) * 1000 }
        })
      for (const [label, users, rotating, seed] of [
        ["one user sequential", 1, true, 100],
        ["3 users rotating", 3, true, 85],
        ["10 users concurrent", 10, false, 80]
      ] as const) {
        const fair = yield* taggedReuse(users, 8, Tagged.defaultMaxReuseStreak, rotating)
        const strict = yield* taggedReuse(users, 8, 0, rotating)
        measurements.push({
          case: `tagged pool, in-memory: ${label}, max 8, 4 per identity`,
          metric: `reuse % (bounded fairness, N=${Tagged.defaultMaxReuseStreak})`,
          unit: "%",
          higherIsBetter: true,
          tether: fair.reuse,
          peers: { "strict order (N=0)": strict.reuse, "seed (reported)": seed }
        })
        measurements.push({
          case: `tagged pool, in-memory: ${label}, max 8, 4 per identity`,
          metric: "p99 acquire time",
          unit: "µs",
          higherIsBetter: false,
          tether: fair.p99,
          peers: { "strict order (N=0)": strict.p99 }
        })
        log(`identity: tagged ${label}: reuse ${fair.reuse.toFixed(1)}% (strict order ${strict.reuse.toFixed(1)}%), p99 acquire ${fair.p99.toFixed(0)} µs (strict ${strict.p99.toFixed(0)} µs)`)
      }

      // 3. Latency: pooled, re-bind, connect + bind per request.
      const n = quick ? 200 : 1_000
      const latencyScope = yield* Scope.make()
      const pooledSet = yield* ServerSet.make({ name: "pooled", endpoints: [ldap.server.url], driver, pool: { max: 1 }, health: false })
        .pipe(Scope.provide(latencyScope))
      yield* as(pooledSet, users[0]!)
      const pooled = yield* medianMicros(() => as(pooledSet, users[0]!), n)
      // One connection, two users alternating: every request re-binds it.
      const rebindSet = yield* ServerSet.make({ name: "rebind", endpoints: [ldap.server.url], driver, pool: { max: 1 }, health: false })
        .pipe(Scope.provide(latencyScope))
      const rebind = yield* medianMicros((i) => as(rebindSet, users[i % 2]!), n)
      const rebinds = (yield* rebindSet.status).endpoints[0]!.pool.rebinds
      yield* Scope.close(latencyScope, Exit.void)
      const connectBind = yield* medianMicros((i) =>
        attempt(async () => {
          const client = new Client({ url: ldap.server.url, connectTimeout: 2_000, timeout: 5_000 })
          try {
            const user = ldap.users[i % 2]!
            await client.bind(user.dn, user.password)
            return await client.exop(WHO_AM_I)
          } finally {
            await client.unbind().catch(() => undefined)
          }
        }), n)
      measurements.push({
        case: "Who am I?, same user, sequential",
        metric: "p50 latency (pooled)",
        unit: "µs",
        higherIsBetter: false,
        tether: pooled,
        peers: { "connect+bind per request": connectBind }
      })
      measurements.push({
        case: "Who am I?, alternating users, 1 connection",
        metric: "p50 latency (re-bind)",
        unit: "µs",
        higherIsBetter: false,
        tether: rebind,
        peers: { "connect+bind per request": connectBind }
      })
      notes.push(`Re-bind case: ${rebinds} re-binds over ${n} requests.`)
      log(`identity: pooled ${pooled.toFixed(0)} µs, re-bind ${rebind.toFixed(0)} µs, connect+bind ${connectBind.toFixed(0)} µs`)
    })

    await runScoped(program)
    return {
      tetherLabel: "Tether",
      peers: ["seed (reported)", "1 identity", "strict order (N=0)", "connect+bind per request"],
      measurements,
      notes: [
        "Reuse: one slapd, ServerSet pool max 8, 4 per identity, re-binding on; reuse = borrows served by an open connection already bound as the borrower's identity. The seed's rates are the figures it reports, not a run here.",
        "1,000 identities: IdentityPool max 1,000 on an in-memory driver, every identity warmed with one connection; the peer is the same pool and workload with one identity (target ≥ 0.9x).",
        "Tagged pool (internal/pool, IdentityPool.make builds it): the same in-memory workloads over it; reuse rows use an in-memory driver with re-bind whose work takes one event-loop turn (setImmediate), N = maxReuseStreak; the strict-order peer is the same pool with N = 0.",
        "Latency: median of sequential requests; connect+bind opens a new ldapts client, binds, asks, unbinds.",
        ...notes
      ]
    }
  }
}
