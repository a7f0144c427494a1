import { describe, expect, it } from "@effect/vitest"
import type { Driver } from "@tether/core"
import { Fault, ServerSet } from "@tether/core"
import { Effect, Layer, Redacted, Schema } from "effect"
import { AdminServer, Monitor, Observe, Prometheus, Snapshot } from "../src/index.ts"

/** A driver whose connections are plain objects: the set's own logic, no server. */
const driver: Driver.Driver<{ readonly url: string }, never> = {
  connect: (endpoint) => Effect.succeed({ url: endpoint.url }),
  classify: () => Fault.make("unknown")
}

const call = (url: string, method: string, token?: string, body?: unknown) =>
  Effect.promise(async () => {
    const response = await fetch(url, {
      method,
      headers: {
        ...(token === undefined ? {} : { authorization: `Bearer ${token}` }),
        ...(body === undefined ? {} : { "content-type": "application/json" })
      },
      ...(body === undefined ? {} : { body: JSON.stringify(body) })
    })
    return { status: response.status, body: await response.text() }
  })

const token = "t0ken-for-tests"

describe("AdminServer", () => {
  it.live("with a token: drain, enable, weight, add, remove, pool, breaker and strategy steer the ServerSet; without the right token: 401", () =>
    Effect.gen(function*() {
      const admin = yield* AdminServer.AdminServer
      const monitor = yield* Monitor.Monitor
      const set = yield* ServerSet.make({
        name: "fake",
        endpoints: ["fake://a:1", "fake://b:2"],
        driver,
        health: false
      })
      // No `reconfigure` option: the set's own handle is used.
      yield* monitor.watch("fake", set)
      const api = `${admin.url}/api/sets/fake/endpoints`
      const ids = Effect.map(set.endpoints, (es) => es.map((e) => `${e.id}:${e.weight}`).sort())
      const [a] = (yield* set.endpoints).map((e) => e.id)
      const draining = Effect.map(set.status, (s) => s.endpoints.filter((e) => e.draining).map((e) => e.id))
      const at = (id: string) => `${api}/${encodeURIComponent(id)}`

      expect((yield* call(`${at(a!)}/drain`, "POST")).status).toBe(401)
      expect((yield* call(`${at(a!)}/drain`, "POST", "nope")).status).toBe(401)
      expect((yield* call(`${at(a!)}/drain`, "POST", token + "x")).status).toBe(401)
      expect(yield* draining).toEqual([])

      // Drained: still listed, marked draining, gets no new work.
      expect((yield* call(`${at(a!)}/drain`, "POST", token)).status).toBe(200)
      expect((yield* ids).length).toBe(2)
      expect(yield* draining).toEqual([a])
      for (let i = 0; i < 10; i++) expect(yield* set.as().use((c) => Effect.succeed(c.url))).toBe("fake://b:2")
      expect((yield* call(`${at(a!)}/enable`, "POST", token)).status).toBe(200)
      expect(yield* draining).toEqual([])
      expect((yield* call(`${at("fake://zz:9")}/drain`, "POST", token)).status).toBe(404)

      expect((yield* call(`${at(a!)}/weight`, "POST", token, { weight: 5 })).status).toBe(200)
      expect(yield* ids).toContain(`${a}:5`)
      const negative = yield* call(`${at(a!)}/weight`, "POST", token, { weight: -1 })
      expect(negative.status).toBe(400)
      expect(negative.body).toContain("positive integer")
      expect(yield* ids).toContain(`${a}:5`)
      expect((yield* call(api, "POST", token, { url: "fake://c:3", weight: 2 })).status).toBe(200)
      expect((yield* ids).length).toBe(3)
      const duplicate = yield* call(api, "POST", token, { url: "fake://c:3" })
      expect(duplicate.status).toBe(400)
      expect(duplicate.body).toContain("already in the set")
      expect((yield* call(at("fake://c:3"), "DELETE", token)).status).toBe(200)
      expect((yield* ids).length).toBe(2)
      expect((yield* call(`${admin.url}/api/sets/nope/endpoints/x/drain`, "POST", token)).status).toBe(404)

      // Pool limits, breaker thresholds, strategy.
      expect((yield* call(`${admin.url}/api/sets/fake/pool`, "POST", token, { max: 3 })).status).toBe(200)
      expect((yield* set.status).endpoints.map((e) => e.pool.max)).toEqual([3, 3])
      expect((yield* call(`${admin.url}/api/sets/fake/pool`, "POST", token, { max: 0 })).status).toBe(400)
      expect((yield* call(`${admin.url}/api/sets/fake/breaker`, "POST", token, { consecutiveFailures: 2 })).status).toBe(200)
      expect((yield* call(`${admin.url}/api/sets/fake/breaker`, "POST", token, { consecutiveFailures: 0 })).status).toBe(400)
      expect((yield* call(`${admin.url}/api/sets/fake/strategy`, "POST", token, { strategy: "least-connections" })).status).toBe(200)
      expect((yield* set.status).strategy).toBe("least-connections")
      expect((yield* call(`${admin.url}/api/sets/fake/strategy`, "POST", token, { strategy: "nope" })).status).toBe(400)

      // /status never carries the token; the set still works after all this.
      const status = yield* call(`${admin.url}/status`, "GET")
      expect(status.body).not.toContain(token)
      const snapshot = Schema.decodeUnknownSync(Snapshot.Snapshot)(JSON.parse(status.body))
      expect(snapshot.sets[0]!.endpoints.length).toBe(2)
      expect(yield* set.as().use((c) => Effect.succeed(c.url))).toMatch(/^fake:\/\//)
    }).pipe(Effect.scoped, Effect.provide(Observe.layer({ admin: { port: 0, token: Redacted.make(token) } }))))

  it.live("a set watched with { reconfigure: false } is read-only: 403", () =>
    Effect.gen(function*() {
      const admin = yield* AdminServer.AdminServer
      const monitor = yield* Monitor.Monitor
      const set = yield* ServerSet.make({ name: "ro", endpoints: ["fake://a:1"], driver, health: false })
      yield* monitor.watch("ro", set, { reconfigure: false })
      const response = yield* call(`${admin.url}/api/sets/ro/endpoints/${encodeURIComponent("fake://a:1")}/drain`, "POST", token)
      expect(response.status).toBe(403)
      expect((yield* set.status).endpoints[0]!.draining).toBe(false)
    }).pipe(Effect.scoped, Effect.provide(Observe.layer({ admin: { port: 0, token: Redacted.make(token) } }))))

  it.live("a port already taken is a typed error naming the address", () =>
    Effect.gen(function*() {
      const first = yield* AdminServer.AdminServer
      const second = yield* Effect.flip(Layer.build(AdminServer.layer({ port: first.port }))).pipe(Effect.scoped)
      expect(second._tag).toBe("AdminServerError")
      expect(second.message).toContain(`127.0.0.1:${first.port}`)
    }).pipe(Effect.scoped, Effect.provide(Observe.layer({ admin: { port: 0 } }))))
})

describe("Prometheus exposition", () => {
  it("follows Prometheus naming conventions", () => {
    expect(Prometheus.conventionalName("tether_pool_acquire_time_ms", "Histogram")).toEqual({ name: "tether_pool_acquire_time_seconds", scale: 0.001 })
    expect(Prometheus.conventionalName("tether_retries", "Counter").name).toBe("tether_retries_total")
    expect(Prometheus.conventionalName("tether_retries_total", "Counter").name).toBe("tether_retries_total")
    expect(Prometheus.conventionalName("a.b-c", "Gauge").name).toBe("a_b_c")
  })

  it("redacts credentials in URLs", () => {
    expect(Snapshot.redactUrl("ldap://admin:secret@ldap1:389")).toBe("ldap://ldap1:389")
    expect(Snapshot.redactUrl("postgres://u:p@db:5432/app")).toBe("postgres://db:5432/app")
    expect(Snapshot.redactUrl("ldap://ldap1:389")).toBe("ldap://ldap1:389")
    expect(Snapshot.redactUrl("not a url user:pw@host")).toBe("host")
  })
})
