import { expect, layer } from "@effect/vitest"
import { Slapd, SteadyLoad } from "@tether/testkit"
import { Effect, Option, Redacted, Schedule, SubscriptionRef } from "effect"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { LdapClient, LdapConfig } from "../src/index.ts"

layer(Slapd.layer({ servers: 2, replication: true, users: 2 }), { excludeTestServices: true })(
  "LdapClient reconfigured under load, from a watched file",
  (it) => {
    // Pipelined (the default), plain reads share a connection borrowed once and held while busy, so the
    // balancer (and the weights) pick per shared connection, not per read: the traffic share is checked
    // with pipelining off; every other guarantee in both modes.
    for (const pipeline of [false, undefined] as const) {
    it.effect(
      `servers added, drained, re-weighted, pools resized and removed while 6 fibers read (pipeline ${pipeline === false ? "off" : "on"}): 0 failed operations; a bad file changes nothing`,
      () =>
        Effect.gen(function*() {
          const directory = yield* Slapd.Slapd
          const [one, two] = directory.servers
          const user = directory.users[0]!
          const dir = fs.mkdtempSync(path.join(os.tmpdir(), "tether-ldap-watch-"))
          yield* Effect.addFinalizer(() => Effect.sync(() => fs.rmSync(dir, { recursive: true, force: true })))
          const file = path.join(dir, "tether.json")
          const write = (ldap: Record<string, unknown>) =>
            Effect.sync(() => fs.writeFileSync(file, JSON.stringify({ ldap: { bindDn: directory.adminDn, ...ldap } })))
          const base = { strategy: "weighted-round-robin", pool: { max: 4 } }
          yield* write({ ...base, endpoints: [one!.url] })

          const client = yield* LdapClient.make({
            name: "watched",
            endpoints: [one!.url],
            bindDn: directory.adminDn,
            password: Redacted.make(directory.adminPassword),
            strategy: "weighted-round-robin",
            pipeline,
            pool: { max: 4, acquireTimeout: "60 seconds", connectTimeout: "20 seconds" },
            health: { interval: "500 millis", timeout: "5 seconds" }
          })
          // The password is not in the file: it comes with the watch.
          const watch = yield* LdapConfig.watch(file, client.reconfigure, {
            interval: "1 hour", // reloads below are explicit
            password: Redacted.make(directory.adminPassword)
          })
          const requests = Effect.map(client.status, (s) => new Map(s.endpoints.map((e) => [e.id, e.requests])))
          const ids = Effect.map(client.status, (s) => s.endpoints.map((e) => `${e.id}:${e.weight}`))
          const traffic = yield* SteadyLoad.start(client.get(user.dn, ["cn"]), {
            fibers: 6,
            check: (entry) => Option.isSome(entry) ? undefined : "not found"
          })
          yield* traffic.progress(50)

          // The file adds the second server with weight 3.
          yield* write({ ...base, endpoints: [one!.url, { url: two!.url, weight: 3 }] })
          const added = yield* watch.reload
          expect(added.map((c) => c._tag)).toEqual(["EndpointAdded"])
          expect((yield* SubscriptionRef.get(watch.config)).endpoints.length).toBe(2)
          let before = yield* requests
          yield* traffic.progress(300)
          let after = yield* requests
          const toTwo = after.get(two!.url)! - (before.get(two!.url) ?? 0)
          const toOne = after.get(one!.url)! - before.get(one!.url)!
          if (pipeline === false) expect(toTwo).toBeGreaterThan(2 * toOne)

          // Drained by hand: no new work; enabled again.
          yield* client.reconfigure.drain(two!.url)
          yield* traffic.progress(20)
          before = yield* requests
          yield* traffic.progress(150)
          after = yield* requests
          expect(after.get(two!.url)).toBe(before.get(two!.url))
          yield* client.reconfigure.enable(two!.url)

          // A bad file: a typed error, never the password, nothing changed.
          fs.writeFileSync(file, `{ "ldap": { "password": "${directory.adminPassword}", "endpoints": [`)
          const bad = yield* Effect.flip(watch.reload)
          expect(bad._tag).toBe("InvalidLdapConfig")
          expect(bad.message).not.toContain(directory.adminPassword)
          yield* write({ ...base, endpoints: ["http://not-ldap"] })
          expect((yield* Effect.flip(watch.reload))._tag).toBe("InvalidLdapConfig")
          expect(yield* ids).toEqual([`${one!.url}:1`, `${two!.url}:3`])

          // Pools shrink to 1 per server through the file; open connections follow and stay there.
          yield* write({ ...base, pool: { max: 1 }, endpoints: [one!.url, { url: two!.url, weight: 3 }] })
          expect((yield* watch.reload).map((c) => c._tag)).toEqual(["PoolResized"])
          const open = Effect.map(client.status, (s) => Math.max(...s.endpoints.map((e) => e.pool.open)))
          yield* open.pipe(Effect.repeat({ until: (n) => n <= 1, schedule: Schedule.spaced("20 millis"), times: 3_000 }))
          for (let i = 0; i < 3; i++) {
            yield* traffic.progress(50)
            expect(yield* open).toBeLessThanOrEqual(1)
          }

          // The first server leaves the file: its work finishes, then it is gone.
          yield* write({ ...base, pool: { max: 3 }, endpoints: [{ url: two!.url, weight: 3 }] })
          expect((yield* watch.reload).map((c) => c._tag).sort()).toEqual(["EndpointRemoved", "PoolResized"])
          expect(yield* ids).toEqual([`${two!.url}:3`])
          yield* traffic.progress(200)

          yield* traffic.stop
          expect(traffic.counts.errors).toEqual([])
          expect(traffic.counts.failed).toBe(0)
          expect(traffic.counts.ok).toBeGreaterThan(700)
        }).pipe(Effect.scoped),
      { timeout: 300_000 }
    )
    }
  }
)
