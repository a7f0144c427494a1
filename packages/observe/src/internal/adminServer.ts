import * as NodeHttpServer from "@effect/platform-node/NodeHttpServer"
import type { Endpoint } from "@tether/core"
import { Context, Data, Effect, Layer, Redacted, Schema, Stream } from "effect"
import { HttpRouter, HttpServer, HttpServerRequest, HttpServerResponse } from "effect/http"
import { timingSafeEqual } from "node:crypto"
import * as Http from "node:http"
import type * as AdminServer from "../AdminServer.ts"
import { Monitor, type Watched } from "../Monitor.ts"
import * as Prometheus from "../Prometheus.ts"
import * as Snapshot from "../Snapshot.ts"
import { dashboardHtml } from "./dashboard.ts"

/** @internal */
export class AdminServerError extends Data.TaggedError("AdminServerError")<{
  readonly address: string
  readonly cause: unknown
}> {
  override get message(): string {
    return `the admin server could not listen on ${this.address}: ${
      this.cause instanceof Error ? this.cause.message : String(this.cause)
    }. Choose another port (AdminServer.layer({ port })) or stop what holds it.`
  }
}

const json = (body: unknown, status = 200) =>
  HttpServerResponse.text(JSON.stringify(body), {
    status,
    contentType: "application/json; charset=utf-8",
    headers: { "cache-control": "no-store" }
  })

const encodeSnapshot = Schema.encodeSync(Snapshot.Snapshot)

/** @internal */
export const make = (options: AdminServer.Options) =>
  Effect.gen(function*() {
    const monitor = yield* Monitor
    const host = options.host ?? "127.0.0.1"
    const port = options.port ?? 9464
    const router = yield* HttpRouter.make
    const title = options.title ?? "Tether"
    const page = dashboardHtml({ title, mutable: options.token !== undefined })

    yield* router.add("GET", "/", HttpServerResponse.html(page))
    yield* router.add(
      "GET",
      "/metrics",
      Effect.map(Prometheus.format, (body) => HttpServerResponse.text(body, { contentType: Prometheus.contentType }))
    )
    yield* router.add("GET", "/health/live", json({ status: "ok" }))
    yield* router.add(
      "GET",
      "/health/ready",
      Effect.map(monitor.snapshot, (snapshot) => {
        const reasons = Snapshot.notReady(snapshot)
        return reasons.length === 0 ? json({ status: "ready" }) : json({ status: "unavailable", reasons }, 503)
      })
    )
    yield* router.add("GET", "/status", Effect.map(monitor.snapshot, (s) => json(encodeSnapshot(s))))
    yield* router.add(
      "GET",
      "/events",
      HttpServerResponse.stream(
        Stream.merge(
          monitor.changes.pipe(Stream.map((s) => `event: snapshot\ndata: ${JSON.stringify(encodeSnapshot(s))}\n\n`)),
          // A comment every 15 s keeps proxies from closing an idle stream.
          Stream.tick("15 seconds").pipe(Stream.map(() => ": keep-alive\n\n"))
        ).pipe(Stream.encodeText),
        {
          contentType: "text/event-stream",
          headers: { "cache-control": "no-store", "x-accel-buffering": "no" }
        }
      )
    )

    if (options.token !== undefined) yield* addMutatingRoutes(router, monitor, options.token)

    const address = `${host}:${port}`
    const serverContext = yield* Layer.build(NodeHttpServer.layer(() => Http.createServer(), { host, port })).pipe(
      Effect.mapError((error) => new AdminServerError({ address, cause: error.cause }))
    )
    const server = Context.get(serverContext, HttpServer.HttpServer)
    yield* server.serve(router.asHttpEffect())
    const bound = server.address._tag === "UnixPathAddress" ? port : server.address.port
    const shownHost = host.includes(":") ? `[${host}]` : host
    return { url: `http://${shownHost}:${bound}`, port: bound } satisfies AdminServer.Running
  })

/** Endpoint definitions taken out by `drain`, to put back on `enable`. */
type Drained = Map<string, Endpoint.EndpointInput>

const addMutatingRoutes = (router: HttpRouter.HttpRouter, monitor: typeof Monitor.Service, token: Redacted.Redacted<string>) =>
  Effect.gen(function*() {
    const expected = Buffer.from(Redacted.value(token), "utf8")
    const drained: Drained = new Map()
    const authorized = (request: HttpServerRequest.HttpServerRequest): boolean => {
      const header = request.headers["authorization"] ?? ""
      const match = /^Bearer (.+)$/.exec(header)
      if (match === null) return false
      const given = Buffer.from(match[1]!, "utf8")
      return given.length === expected.length && timingSafeEqual(given, expected)
    }
    const findSet = (name: string | undefined) =>
      Effect.map(monitor.watched, (all) => all.find((w) => w.name === name))

    /** Runs `f` on the named set when the caller holds the token; answers with JSON. */
    const guarded = (
      f: (
        set: Watched,
        params: Readonly<Record<string, string | undefined>>,
        request: HttpServerRequest.HttpServerRequest
      ) => Effect.Effect<HttpServerResponse.HttpServerResponse>
    ) =>
      Effect.gen(function*() {
        const request = yield* HttpServerRequest.HttpServerRequest
        if (!authorized(request)) {
          return json({ error: "missing or wrong bearer token (Authorization: Bearer <token>)" }, 401)
        }
        const params = yield* HttpRouter.params
        const set = yield* findSet(params.set)
        if (set === undefined) return json({ error: `no watched set named ${JSON.stringify(params.set)}` }, 404)
        return yield* f(set, params, request)
      })

    const body = (request: HttpServerRequest.HttpServerRequest) =>
      request.json.pipe(Effect.map((u) => (typeof u === "object" && u !== null ? u as Record<string, unknown> : {})))

    const endpointOf = (set: Watched, id: string) =>
      Effect.map(set.target.status, (status) => status.endpoints.find((e) => e.id === id))

    const add = (set: Watched, input: Endpoint.EndpointInput) =>
      set.reconfigure === undefined
        ? Effect.succeed(json({ error: `set "${set.name}" cannot add endpoints at run time` }, 501))
        : set.reconfigure.add(input).pipe(
          Effect.as(json({ ok: true })),
          Effect.catch((error) => Effect.succeed(json({ error: messageOf(error) }, 400)))
        )

    const remove = (set: Watched, id: string) =>
      set.reconfigure === undefined
        ? Effect.succeed(json({ error: `set "${set.name}" cannot remove endpoints at run time` }, 501))
        : Effect.as(set.reconfigure.remove(id), json({ ok: true }))

    yield* router.add(
      "POST",
      "/api/sets/:set/endpoints",
      guarded((set, _params, request) =>
        Effect.gen(function*() {
          const input = yield* body(request).pipe(Effect.orElseSucceed(() => ({} as Record<string, unknown>)))
          if (typeof input.url !== "string") return json({ error: "the body must be JSON with a \"url\"" }, 400)
          return yield* add(set, input as unknown as Endpoint.EndpointInput)
        })
      )
    )
    yield* router.add(
      "DELETE",
      "/api/sets/:set/endpoints/:id",
      guarded((set, params) => remove(set, params.id!))
    )
    yield* router.add(
      "POST",
      "/api/sets/:set/endpoints/:id/drain",
      guarded((set, params) =>
        Effect.gen(function*() {
          const endpoint = yield* endpointOf(set, params.id!)
          if (endpoint === undefined) return json({ error: `no endpoint ${params.id} in set "${set.name}"` }, 404)
          if (set.reconfigure === undefined) {
            return json({ error: `set "${set.name}" cannot change its endpoints at run time` }, 501)
          }
          drained.set(`${set.name}\u0000${endpoint.id}`, definitionOf(endpoint))
          return yield* remove(set, endpoint.id)
        })
      )
    )
    yield* router.add(
      "POST",
      "/api/sets/:set/endpoints/:id/enable",
      guarded((set, params) =>
        Effect.gen(function*() {
          const key = `${set.name}\u0000${params.id}`
          const definition = drained.get(key)
          if (definition === undefined) return json({ error: `endpoint ${params.id} was not drained` }, 404)
          const response = yield* add(set, definition)
          if (response.status === 200) drained.delete(key)
          return response
        })
      )
    )
    yield* router.add(
      "POST",
      "/api/sets/:set/endpoints/:id/weight",
      guarded((set, params, request) =>
        Effect.gen(function*() {
          const input = yield* body(request).pipe(Effect.orElseSucceed(() => ({} as Record<string, unknown>)))
          const weight = input.weight
          if (typeof weight !== "number" || !Number.isFinite(weight) || weight < 0) {
            return json({ error: "the body must be JSON with a \"weight\" >= 0" }, 400)
          }
          const endpoint = yield* endpointOf(set, params.id!)
          if (endpoint === undefined) return json({ error: `no endpoint ${params.id} in set "${set.name}"` }, 404)
          if (set.reconfigure === undefined) {
            return json({ error: `set "${set.name}" cannot change its endpoints at run time` }, 501)
          }
          yield* set.reconfigure.remove(endpoint.id)
          return yield* add(set, { ...definitionOf(endpoint), weight })
        })
      )
    )
  })

const definitionOf = (e: {
  readonly id: string
  readonly url: string
  readonly weight: number
  readonly priority: number
  readonly role: Endpoint.Role | "stale-primary"
}): Endpoint.EndpointInput => ({
  id: e.id,
  url: e.url,
  weight: e.weight,
  priority: e.priority,
  // A fenced endpoint is re-added as "any": its probes tell its role again, and fencing applies anew.
  role: e.role === "stale-primary" ? "any" : e.role
})

const messageOf = (error: unknown): string =>
  error instanceof Error ? error.message : typeof error === "object" && error !== null && "message" in error
    ? String((error as { message: unknown }).message)
    : String(error)
