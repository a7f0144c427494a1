/**
 * Pipelining on real slapd: plain operations of the default identity share
 * connections (many outstanding per connection), paged searches keep their
 * connection's paged-results state to themselves, and under connection
 * resets a write is reported as possibly executed whenever it was — a
 * failure that says it never reached the server left nothing behind.
 */
import { describe, expect, layer } from "@effect/vitest"
import { ServerSet } from "@tether/core"
import { FaultProxy, Slapd } from "@tether/testkit"
import { Clock, Effect, Exit, Option, Random } from "effect"
import { LdapClient } from "../src/index.ts"
import { adminClient } from "./support.ts"

/** Whether a failure may have reached the server, by what the error itself says. */
const mayHaveReachedServer = (error: unknown): boolean => {
  const e = error as { _tag?: string; mayHaveReachedServer?: boolean }
  switch (e._tag) {
    case "LdapConnectionError":
      return e.mayHaveReachedServer !== false
    case "PoolTimeout":
    case "ConnectTimeout":
    case "PoolClosed":
    case "BreakerOpen":
    case "NoEndpointAvailable":
      return false
    default:
      return true
  }
}

layer(Slapd.layer({ servers: 1, users: 20 }), { excludeTestServices: true })("LDAP pipelining on real slapd", (it) => {
  const clientOf = (directory: Slapd.Directory, options?: Partial<LdapClient.Options>) =>
    adminClient(directory, {
      allowPlaintext: true,
      ...options,
      pool: { acquireTimeout: "30 seconds", connectTimeout: "30 seconds", ...options?.pool }
    })

  describe("sharing", () => {
    it.effect("200 reads from 16 fibers on 2 connections: right answers, far fewer borrows than operations (and one borrow each with pipeline: false)", () =>
      Effect.gen(function*() {
        const directory = yield* Slapd.Slapd
        const run = (pipeline: false | undefined) =>
          Effect.gen(function*() {
            const ldap = yield* clientOf(directory, { pool: { min: 2, max: 2 }, ...(pipeline === false ? { pipeline } : {}) })
            const before = (yield* ldap.status).endpoints[0]!.pool.borrows
            const wrong: Array<string> = []
            yield* Effect.forEach(Array.from({ length: 200 }, (_, i) => directory.users[i % 20]!), (user) =>
              Effect.map(ldap.searchAll(directory.peopleDn, { filter: `(uid=${user.uid})`, pageSize: 0 }), (entries) => {
                if (entries.length !== 1 || entries[0]!.dn !== user.dn) wrong.push(user.uid)
              }), { concurrency: 16, discard: true })
            const status = (yield* ldap.status).endpoints[0]!
            return { wrong, borrows: status.pool.borrows - before, open: status.pool.open }
          }).pipe(Effect.scoped)
        const pipelined = yield* run(undefined)
        const exclusive = yield* run(false)
        expect(pipelined.wrong).toEqual([])
        expect(exclusive.wrong).toEqual([])
        expect(pipelined.open).toBeLessThanOrEqual(2)
        // Each borrow without pipelining is one operation; with it, a borrow carries many.
        expect(exclusive.borrows).toBeGreaterThanOrEqual(200)
        expect(pipelined.borrows).toBeLessThan(100)
      }))

    it.effect("the operation observer hears each pipelined operation, not the shared connection's borrow", () =>
      Effect.gen(function*() {
        const directory = yield* Slapd.Slapd
        const heard: Array<ServerSet.Observation> = []
        yield* Effect.gen(function*() {
          const ldap = yield* clientOf(directory, { pool: { min: 2, max: 2 } })
          yield* Effect.forEach(Array.from({ length: 100 }, (_, i) => directory.users[i % 20]!), (user) =>
            ldap.get(user.dn, ["cn"]), { concurrency: 16, discard: true })
          const borrows = (yield* ldap.status).endpoints[0]!.pool.borrows
          // Pipelined: far fewer borrows than operations, yet one observation per operation.
          expect(borrows).toBeLessThan(100)
        }).pipe(Effect.scoped, Effect.provideService(ServerSet.OperationObserver, (o) => heard.push(o)))
        const gets = heard.filter((o) => o.operation === "search")
        expect(gets.length, JSON.stringify([...new Set(heard.map((o) => o.operation))])).toBe(100)
        expect(gets.every((o) => o.outcome === "success" && o.endpoint === directory.server.url)).toBe(true)
        expect(heard.filter((o) => o.operation === "use")).toEqual([])
      }))

    it.effect("a paged search and plain reads share one connection; two paged searches at once both complete", () =>
      Effect.gen(function*() {
        const directory = yield* Slapd.Slapd
        const ldap = yield* clientOf(directory, { pool: { min: 1, max: 1 } })
        const user = directory.users[7]!
        const [paged, reads, second] = yield* Effect.all([
          ldap.searchAll(directory.peopleDn, { filter: "(uid=*)", pageSize: 2 }),
          Effect.forEach(Array.from({ length: 40 }), () => ldap.get(user.dn), { concurrency: 8 }),
          ldap.searchAll(directory.peopleDn, { filter: "(uid=*)", pageSize: 3 })
        ], { concurrency: "unbounded" })
        expect(paged.map((e) => e.dn).sort()).toEqual(directory.users.map((u) => u.dn).sort())
        expect(second.map((e) => e.dn).sort()).toEqual(directory.users.map((u) => u.dn).sort())
        expect(reads.every((e) => Option.isSome(e) && e.value.dn === user.dn)).toBe(true)
      }).pipe(Effect.scoped))

    it.effect("an anonymous client, 200 operations from 20 fibers on new connections: one socket each, no connection lost", () =>
      Effect.gen(function*() {
        const directory = yield* Slapd.Slapd
        const ldap = yield* LdapClient.make({ endpoints: [directory.server.url], health: false, pool: { min: 2, max: 2, acquireTimeout: "30 seconds" } })
        // The first operation borrows a connection of its own and opens a carrier on a second, new one.
        expect(yield* ldap.whoami).toBe("")
        const seen = yield* Effect.forEach(Array.from({ length: 200 }), () => ldap.whoami, { concurrency: 20 })
        expect(seen).toEqual(Array.from({ length: 200 }, () => ""))
        const pool = (yield* ldap.status).endpoints[0]!.pool
        // A second socket would have been refused (ERECONNECT) and the connection destroyed and replaced.
        expect(pool.destroyed).toBe(0)
        expect(pool.created).toBeLessThanOrEqual(2)
      }).pipe(Effect.scoped))

    it.effect("an invalid pipeline option is an InvalidPoolOptions naming it", () =>
      Effect.gen(function*() {
        const directory = yield* Slapd.Slapd
        const exit = yield* Effect.exit(clientOf(directory, { pipeline: 0 }))
        expect(Exit.isFailure(exit) && exit.cause.reasons[0]?._tag === "Fail" ? exit.cause.reasons[0].error : undefined)
          .toMatchObject({ _tag: "InvalidPoolOptions", option: "pipeline" })
      }).pipe(Effect.scoped))
  })

  describe("failures", () => {
    it.effect("writes and reads pipelined on connections reset every 50-150 ms: reads never fail; a write said not to have reached the server left no entry", () =>
      Effect.gen(function*() {
        const directory = yield* Slapd.Slapd
        const proxy = yield* FaultProxy.make({ target: directory.server })
        const ldap = yield* adminClient(directory, {
          endpoints: [proxy.url("ldap")],
          allowPlaintext: true,
          breaker: false,
          timeout: "10 seconds",
          pool: { max: 2, acquireTimeout: "30 seconds", connectTimeout: "30 seconds" }
        })
        const ou = `ou=pipelined,${directory.suffix}`
        yield* ldap.add(ou, { objectClass: ["organizationalUnit"], ou: "pipelined" })
        const user = directory.users[2]!
        const outcomes: Array<{ dn: string; ok: boolean; mayHave: boolean; error?: string }> = []
        const readFailures: Array<string> = []
        let reads = 0
        let resets = 0
        let next = 0
        const deadline = (yield* Clock.currentTimeMillis) + 5_000
        const running = Effect.map(Clock.currentTimeMillis, (now) => now < deadline)
        const writer = Effect.gen(function*() {
          while (yield* running) {
            const dn = `cn=w${next++},${ou}`
            const exit = yield* Effect.exit(ldap.add(dn, { objectClass: ["person"], cn: dn.slice(3, dn.indexOf(",")), sn: "w" }))
            if (Exit.isSuccess(exit)) outcomes.push({ dn, ok: true, mayHave: true })
            else {
              const reason = exit.cause.reasons[0]
              const error = reason?._tag === "Fail" ? reason.error : reason
              outcomes.push({ dn, ok: false, mayHave: mayHaveReachedServer(error), error: `${(error as { _tag?: string })?._tag}/${(error as { code?: string }).code}` })
            }
          }
        })
        const reader = Effect.gen(function*() {
          while (yield* running) {
            const exit = yield* Effect.exit(ldap.get(user.dn))
            if (Exit.isFailure(exit)) readFailures.push(String(exit.cause.reasons[0]?._tag === "Fail" ? (exit.cause.reasons[0].error as { _tag?: string })._tag : "defect"))
            else reads++
          }
        })
        const resetter = Effect.gen(function*() {
          while (yield* running) {
            yield* Effect.sleep(yield* Random.nextIntBetween(50, 150))
            resets += yield* proxy.resetAll
          }
        })
        yield* Effect.all([...Array.from({ length: 8 }, () => writer), ...Array.from({ length: 8 }, () => reader), resetter], {
          concurrency: "unbounded",
          discard: true
        })
        // Check what the server holds, directly (no proxy).
        const check = yield* adminClient(directory, {
          allowPlaintext: true
        })
        const present = new Set((yield* check.searchAll(ou, { scope: "one", attributes: ["cn"] })).map((e) => e.dn.toLowerCase()))
        const summary = JSON.stringify({
          resets,
          reads,
          readFailures: readFailures.length,
          writes: outcomes.length,
          failedWrites: outcomes.filter((o) => !o.ok).length,
          notReached: outcomes.filter((o) => !o.ok && !o.mayHave).length,
          failedButPresent: outcomes.filter((o) => !o.ok && present.has(o.dn.toLowerCase())).length,
          errors: [...new Set(outcomes.map((o) => o.error))]
        })
        expect(resets, summary).toBeGreaterThan(5)
        expect(reads, summary).toBeGreaterThan(50)
        expect(readFailures, summary).toEqual([])
        // Every successful write is there; every write reported as never having reached the server is not.
        expect(outcomes.filter((o) => o.ok && !present.has(o.dn.toLowerCase())).map((o) => o.dn), summary).toEqual([])
        expect(outcomes.filter((o) => !o.ok && !o.mayHave && present.has(o.dn.toLowerCase())).map((o) => o.dn), summary).toEqual([])
        // No write was handed to a connection already known to be gone (its socket's reconnect is refused: ERECONNECT).
        expect(outcomes.filter((o) => o.error?.endsWith("/ERECONNECT")).map((o) => o.dn), summary).toEqual([])
      }).pipe(Effect.scoped))
  })
})
