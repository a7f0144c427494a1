import { performance } from "node:perf_hooks"
import { expect, layer } from "@effect/vitest"
import { Duration, Effect, Fiber } from "effect"
import { Client } from "ldapts"
import postgres from "postgres"
import { FaultProxy, PostgresCluster, Slapd } from "../src/index.ts"

type Sql = ReturnType<typeof postgres>
type PgOptions = NonNullable<Parameters<typeof postgres>[1]>

/** A one-connection postgres.js client for the test, closed with the scope. */
const pgClient = (url: string, options: PgOptions = {}) =>
  Effect.acquireRelease(
    Effect.sync(() => postgres(url, { max: 1, connect_timeout: 2, onnotice: () => undefined, fetch_types: false, ...options })),
    (sql) => Effect.promise(() => sql.end({ timeout: 0 }).catch(() => undefined))
  )

const query = (sql: Sql, text: string) =>
  Effect.tryPromise({
    try: () => sql.unsafe(text) as unknown as Promise<ReadonlyArray<Record<string, unknown>>>,
    catch: (e) => e
  })

/** An ldapts client for the test, unbound with the scope. */
const ldapClient = (url: string) =>
  Effect.acquireRelease(
    Effect.sync(() => new Client({ url, connectTimeout: 1000, timeout: 1000 })),
    (c) => Effect.promise(() => c.unbind().catch(() => undefined))
  )

const attempt = <A>(f: () => Promise<A>) => Effect.tryPromise({ try: f, catch: (e) => e })

const WHO_AM_I = "1.3.6.1.4.1.4203.1.11.3"

const errorCode = (error: unknown): string | undefined =>
  typeof error === "object" && error !== null && "code" in error ? String((error as { code: unknown }).code) : undefined

const errorText = (error: unknown): string =>
  `${errorCode(error) ?? ""} ${error instanceof Error ? error.message : String(error)}`

// `excludeTestServices`: the tests run on the real clock (latency and timeouts are measured).
layer(PostgresCluster.layer({ replicas: 0 }), { excludeTestServices: true })("FaultProxy with PostgreSQL", (it) => {
  it.effect("queries work through the proxy", () =>
    Effect.gen(function*() {
      const cluster = yield* PostgresCluster.PostgresCluster
      const proxy = yield* FaultProxy.make({ target: cluster.primary })
      const url = yield* proxy.rewrite(cluster.primary.url)
      expect(url).toBe(`postgres://postgres@127.0.0.1:${proxy.port}/postgres`)
      const sql = yield* pgClient(url)
      expect(yield* query(sql, "select 1 as one")).toEqual([{ one: 1 }])
      // The server sees the proxy as the client.
      const [row] = yield* query(sql, "select inet_client_addr()::text as addr, inet_server_port() as port")
      expect(row).toEqual({ addr: "127.0.0.1/32", port: cluster.primary.port })
      const stats = yield* proxy.stats
      expect(stats.accepted).toBe(1)
      expect(stats.active).toBe(1)
      expect(stats.bytesToServer).toBeGreaterThan(0)
      expect(stats.bytesToClient).toBeGreaterThan(0)
    }))

  it.effect("setLatency slows every round trip", () =>
    Effect.gen(function*() {
      const cluster = yield* PostgresCluster.PostgresCluster
      const proxy = yield* FaultProxy.make({ target: cluster.primary })
      const sql = yield* pgClient(yield* proxy.rewrite(cluster.primary.url))
      yield* query(sql, "select 1")
      yield* proxy.setLatency(Duration.millis(100))
      const start = performance.now()
      expect(yield* query(sql, "select 2 as two")).toEqual([{ two: 2 }])
      expect(performance.now() - start).toBeGreaterThanOrEqual(200)
    }))

  it.effect("resetAll breaks the connection in the middle of a query; the client reconnects", () =>
    Effect.gen(function*() {
      const cluster = yield* PostgresCluster.PostgresCluster
      const proxy = yield* FaultProxy.make({ target: cluster.primary })
      const sql = yield* pgClient(yield* proxy.rewrite(cluster.primary.url))
      yield* query(sql, "select 1")

      const running = yield* Effect.forkChild(Effect.flip(query(sql, "select pg_sleep(5)")))
      yield* Effect.sleep(Duration.millis(200))
      expect(yield* proxy.resetAll).toBe(1)
      const error = yield* Fiber.join(running)
      expect(["ECONNRESET", "CONNECTION_CLOSED"]).toContain(errorCode(error))

      // postgres.js opens a new connection (through the proxy) for the next query. (Give it a
      // moment to see the socket close: postgres.js 3.4 sends a query issued between a socket's
      // "error" and "close" events into the dead connection and never settles it.)
      yield* Effect.sleep(Duration.millis(100))
      expect(yield* query(sql, "select 3 as three")).toEqual([{ three: 3 }])
      expect((yield* proxy.stats).accepted).toBe(2)
    }))

  it.effect("blackhole makes queries hang until a client timeout; heal lets them finish", () =>
    Effect.gen(function*() {
      const cluster = yield* PostgresCluster.PostgresCluster
      const proxy = yield* FaultProxy.make({ target: cluster.primary })
      const url = yield* proxy.rewrite(cluster.primary.url)
      const sql = yield* pgClient(url)
      yield* query(sql, "select 1")

      yield* proxy.blackhole(true)
      const held = yield* Effect.forkChild(query(sql, "select 4 as four"))
      // The query on the open connection hangs...
      const hung = yield* Fiber.join(held).pipe(Effect.timeoutOption(Duration.millis(500)))
      expect(hung._tag).toBe("None")
      // ...and a new connection times out (the proxy accepts it; nothing answers).
      const fresh = yield* pgClient(url, { connect_timeout: 1 })
      const error = yield* Effect.flip(query(fresh, "select 5"))
      expect(errorCode(error)).toBe("CONNECT_TIMEOUT")

      // The black hole held the query back rather than dropping it: it completes after heal.
      yield* proxy.heal
      expect(yield* Fiber.join(held)).toEqual([{ four: 4 }])
      expect(yield* query(sql, "select 6 as six")).toEqual([{ six: 6 }])
    }))

  it.effect("refuseNew makes new connections fail; open ones keep working", () =>
    Effect.gen(function*() {
      const cluster = yield* PostgresCluster.PostgresCluster
      const proxy = yield* FaultProxy.make({ target: cluster.primary })
      const url = yield* proxy.rewrite(cluster.primary.url)
      const open = yield* pgClient(url)
      yield* query(open, "select 1")

      yield* proxy.refuseNew(true, "unlisten")
      const refused = yield* pgClient(url)
      expect(errorCode(yield* Effect.flip(query(refused, "select 1")))).toBe("ECONNREFUSED")

      yield* proxy.refuseNew(true, "reset")
      const reset = yield* pgClient(url)
      const error = yield* Effect.flip(query(reset, "select 1"))
      expect(["ECONNRESET", "CONNECTION_CLOSED", "CONNECTION_ENDED"]).toContain(errorCode(error))

      expect(yield* query(open, "select 7 as seven")).toEqual([{ seven: 7 }])
      yield* proxy.heal
      const healed = yield* pgClient(url)
      expect(yield* query(healed, "select 8 as eight")).toEqual([{ eight: 8 }])
    }))

  it.effect("closeAfterBytes cuts a connection in the middle of a result", () =>
    Effect.gen(function*() {
      const cluster = yield* PostgresCluster.PostgresCluster
      const proxy = yield* FaultProxy.make({ target: cluster.primary })
      const url = yield* proxy.rewrite(cluster.primary.url)
      // What a connection's startup and first query cost, in bytes from the server.
      const probe = yield* pgClient(url)
      yield* query(probe, "select 1")
      const startup = (yield* proxy.stats).bytesToClient

      yield* proxy.closeAfterBytes(startup + 100)
      const sql = yield* pgClient(url)
      expect(yield* query(sql, "select 1 as one")).toEqual([{ one: 1 }])
      const error = yield* Effect.flip(query(sql, "select repeat('x', 100000) as big"))
      expect(errorCode(error)).toBe("CONNECTION_CLOSED")
      expect((yield* proxy.stats).bytesToClient).toBe(2 * startup + 100)
      // The probe's connection, accepted before, is not cut.
      expect((yield* query(probe, "select repeat('x', 100000) as big"))[0]!.big).toHaveLength(100000)
    }))
})

layer(Slapd.layer(), { excludeTestServices: true })("FaultProxy with slapd", (it) => {
  it.effect("binds through the proxy", () =>
    Effect.gen(function*() {
      const ldap = yield* Slapd.Slapd
      const proxy = yield* FaultProxy.make({ target: ldap.server })
      const user = ldap.users[0]!
      const client = yield* ldapClient(proxy.url("ldap"))
      yield* attempt(() => client.bind(user.dn, user.password))
      expect((yield* attempt(() => client.exop(WHO_AM_I))).value).toBe(`dn:${user.dn}`)
      expect((yield* proxy.stats).accepted).toBe(1)
    }))

  it.effect("refuseNew makes a new connect fail, in both modes", () =>
    Effect.gen(function*() {
      const ldap = yield* Slapd.Slapd
      const proxy = yield* FaultProxy.make({ target: ldap.server })
      const open = yield* ldapClient(proxy.url("ldap"))
      yield* attempt(() => open.bind(ldap.adminDn, ldap.adminPassword))

      yield* proxy.refuseNew(true)
      const reset = yield* ldapClient(proxy.url("ldap"))
      const resetError = yield* Effect.flip(attempt(() => reset.bind(ldap.adminDn, ldap.adminPassword)))
      expect(errorText(resetError)).toMatch(/ECONNRESET|closed|ended/i)

      yield* proxy.refuseNew(true, "unlisten")
      const refused = yield* ldapClient(proxy.url("ldap"))
      const refusedError = yield* Effect.flip(attempt(() => refused.bind(ldap.adminDn, ldap.adminPassword)))
      expect(errorText(refusedError)).toMatch(/ECONNREFUSED/)

      // The connection opened before is untouched.
      expect((yield* attempt(() => open.exop(WHO_AM_I))).value).toBe(`dn:${ldap.adminDn}`)
      yield* proxy.heal
      const healed = yield* ldapClient(proxy.url("ldap"))
      yield* attempt(() => healed.bind(ldap.adminDn, ldap.adminPassword))
    }))

  it.effect("blackhole makes an operation time out; resetAll breaks the connection", () =>
    Effect.gen(function*() {
      const ldap = yield* Slapd.Slapd
      const proxy = yield* FaultProxy.make({ target: ldap.server })
      const client = yield* ldapClient(proxy.url("ldap"))
      yield* attempt(() => client.bind(ldap.adminDn, ldap.adminPassword))

      yield* proxy.blackhole(true)
      const start = performance.now()
      const timedOut = yield* Effect.flip(attempt(() => client.exop(WHO_AM_I)))
      expect(performance.now() - start).toBeGreaterThanOrEqual(900) // ldapts `timeout: 1000`
      expect(errorText(timedOut)).toMatch(/timeout|timed out/i)
      yield* proxy.heal

      // A request in flight when the connection is reset fails at once (not by timing out).
      const other = yield* ldapClient(proxy.url("ldap"))
      yield* attempt(() => other.bind(ldap.adminDn, ldap.adminPassword))
      yield* proxy.blackhole(true) // keep the request in flight
      const inFlight = yield* Effect.forkChild(Effect.flip(attempt(() => other.exop(WHO_AM_I))))
      yield* Effect.sleep(Duration.millis(100))
      expect(yield* proxy.resetAll).toBeGreaterThanOrEqual(1)
      const broken = yield* Fiber.join(inFlight)
      expect(errorText(broken)).not.toMatch(/timeout|timed out/i)
      yield* proxy.heal
    }))
})
