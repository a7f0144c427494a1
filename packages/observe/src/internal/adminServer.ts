import * as NodeHttpServer from "@effect/platform-node/NodeHttpServer"
import type { Balancer, Endpoint, ServerSet } from "@tether/core"
import { Context, Data, Effect, Layer, Redacted, Schema, Stream } from "effect"
import { HttpRouter, HttpServer, HttpServerRequest, HttpServerResponse } from "effect/http"
import { timingSafeEqual } from "node:crypto"
import * as Http from "node:http"
import type * as AdminServer from "../AdminServer.ts"
import { Monitor } from "../Monitor.ts"
import type * as MonitorTypes from "../Monitor.ts"
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

const addMutatingRoutes = (router: HttpRouter.HttpRouter, monitor: typeof Monitor.Service, token: Redacted.Redacted<string>) =>
  Effect.gen(function*() {
    const expected = Buffer.from(Redacted.value(token), "utf8")
    const authorized = (request: HttpServerRequest.HttpServerRequest): boolean => {
      const header = request.headers["authorization"] ?? ""
      const match = /^Bearer (.+)$/.exec(header)
      if (match === null) return false
      const given = Buffer.from(match[1]!, "utf8")
      return given.length === expected.length && timingSafeEqual(given, expected)
    }
    const findSet = (name: string | undefined) =>
      Effect.map(monitor.watched, (all) => all.find((w) => w.name === name))

    /**
     * Runs `f` on the named set's reconfiguration handle when the caller holds
     * the token; answers with JSON: 200, or the typed error's message (404 for
     * an unknown endpoint, 400 for a bad value).
     */
    const guarded = (
      f: (
        reconfigure: MonitorTypes.Reconfigurable,
        params: Readonly<Record<string, string | undefined>>,
        input: Record<string, unknown>
      ) => Effect.Effect<unknown, unknown>
    ) =>
      Effect.gen(function*() {
        const request = yield* HttpServerRequest.HttpServerRequest
        if (!authorized(request)) {
          return json({ error: "missing or wrong bearer token (Authorization: Bearer <token>)" }, 401)
        }
        const params = yield* HttpRouter.params
        const set = yield* findSet(params.set)
        if (set === undefined) return json({ error: `no watched set named ${JSON.stringify(params.set)}` }, 404)
        if (set.reconfigure === undefined) {
          return json({ error: `set "${set.name}" was watched with { reconfigure: false }: it is read-only` }, 403)
        }
        const input = yield* request.json.pipe(
          Effect.map((u) => (typeof u === "object" && u !== null ? u as Record<string, unknown> : {})),
          Effect.orElseSucceed(() => ({} as Record<string, unknown>))
        )
        return yield* f(set.reconfigure, params, input).pipe(
          Effect.as(json({ ok: true })),
          Effect.catch((error) =>
            Effect.succeed(json({ error: messageOf(error) }, tagOf(error) === "UnknownEndpoint" ? 404 : 400))
          )
        )
      })

    const bad = (message: string) => Effect.fail(new Error(message))

    yield* router.add(
      "POST",
      "/api/sets/:set/endpoints",
      guarded((set, _params, input) =>
        typeof input.url === "string"
          ? set.add(input as unknown as Endpoint.EndpointInput)
          : bad("the body must be JSON with a \"url\"")
      )
    )
    yield* router.add("DELETE", "/api/sets/:set/endpoints/:id", guarded((set, params) => set.remove(params.id!)))
    yield* router.add("POST", "/api/sets/:set/endpoints/:id/drain", guarded((set, params) => set.drain(params.id!)))
    yield* router.add("POST", "/api/sets/:set/endpoints/:id/enable", guarded((set, params) => set.enable(params.id!)))
    yield* router.add(
      "POST",
      "/api/sets/:set/endpoints/:id/weight",
      guarded((set, params, input) => {
        // A weight typed into the dashboard arrives as text.
        const weight = typeof input.weight === "string" && input.weight.trim() !== "" ? Number(input.weight) : input.weight
        return typeof weight === "number"
          ? set.setWeight(params.id!, weight)
          : bad("the body must be JSON with a \"weight\" (a positive integer)")
      })
    )
    yield* router.add(
      "POST",
      "/api/sets/:set/pool",
      guarded((set, _params, input) =>
        set.resizePool(
          { min: numberOr(input.min), max: numberOr(input.max), maxPerIdentity: numberOr(input.maxPerIdentity) },
          typeof input.endpoint === "string" ? input.endpoint : undefined
        )
      )
    )
    yield* router.add(
      "POST",
      "/api/sets/:set/breaker",
      guarded((set, _params, input) => set.setBreaker(input as ServerSet.BreakerThresholds))
    )
    yield* router.add(
      "POST",
      "/api/sets/:set/strategy",
      guarded((set, _params, input) =>
        typeof input.strategy === "string"
          ? set.setStrategy(input.strategy as Balancer.Strategy)
          : bad("the body must be JSON with a \"strategy\"")
      )
    )
  })

const numberOr = (u: unknown): number | undefined => (typeof u === "number" ? u : undefined)

const tagOf = (u: unknown): string | undefined =>
  typeof u === "object" && u !== null && "_tag" in u && typeof u._tag === "string" ? u._tag : undefined

const messageOf = (error: unknown): string =>
  error instanceof Error ? error.message : typeof error === "object" && error !== null && "message" in error
    ? String((error as { message: unknown }).message)
    : String(error)
