/**
 * `Observe.layerConfig`: the admin server, its token and OpenTelemetry from
 * the environment (a `ConfigProvider`), and typed errors for bad values.
 */
import { describe, expect, it } from "@effect/vitest"
import { Cause, ConfigProvider, Effect, Exit, Layer, Logger } from "effect"
import * as http from "node:http"
import { Monitor, Observe } from "../src/index.ts"

const withEnv = (env: Record<string, string>) => Effect.provide(ConfigProvider.layer(ConfigProvider.fromEnv({ env })))

const get = (url: string, token?: string) =>
  Effect.callback<{ readonly status: number; readonly body: string }>((resume) => {
    const request = http.request(url, { method: "POST", headers: token === undefined ? {} : { authorization: `Bearer ${token}` } }, (response) => {
      let body = ""
      response.setEncoding("utf8")
      response.on("data", (chunk: string) => (body += chunk))
      response.on("end", () => resume(Effect.succeed({ status: response.statusCode ?? 0, body })))
    })
    request.on("error", (error) => resume(Effect.die(error)))
    request.end()
  })

describe("Observe.layerConfig", () => {
  it.live("no TETHER_ADMIN_PORT: the monitor only, no server", () =>
    Effect.gen(function*() {
      const monitor = yield* Monitor.Monitor
      expect(yield* monitor.watched).toEqual([])
    }).pipe(Effect.provide(Observe.layerConfig), withEnv({})))

  it.live("TETHER_ADMIN_PORT starts the admin server (its URL logged); TETHER_ADMIN_TOKEN guards the mutating routes, never logged", () =>
    Effect.gen(function*() {
      const lines: Array<string> = []
      const capture = Logger.make(({ message }) => {
        lines.push(Array.isArray(message) ? message.map(String).join(" ") : String(message))
      })
      const url = yield* Effect.gen(function*() {
        yield* Monitor.Monitor
        const logged = lines.find((l) => l.startsWith("tether admin server: "))
        expect(logged).toBeDefined()
        const url = logged!.slice("tether admin server: ".length)
        // A mutating route exists (a token was configured) and refuses a wrong token.
        expect((yield* get(`${url}/api/sets/none/endpoints/x/drain`, "wrong")).status).toBe(401)
        expect((yield* get(`${url}/api/sets/none/endpoints/x/drain`, "s3cret-token")).status).toBe(404)
        return url
      }).pipe(
        Effect.provide(Observe.layerConfig),
        withEnv({ TETHER_ADMIN_PORT: "0", TETHER_ADMIN_TOKEN: "s3cret-token" }),
        Effect.provide(Logger.layer([capture]))
      )
      expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/)
      expect(lines.join("\n")).not.toContain("s3cret-token")
    }))

  it.effect("a port that is not a number is a typed ConfigError naming the variable", () =>
    Effect.gen(function*() {
      const exit = yield* Effect.exit(Layer.build(Observe.layerConfig).pipe(Effect.scoped, withEnv({ TETHER_ADMIN_PORT: "eighty" })))
      expect(Exit.isFailure(exit)).toBe(true)
      const error = Exit.isFailure(exit) ? Cause.findErrorOption(exit.cause) : undefined
      expect(error?._tag === "Some" ? error.value._tag : undefined).toBe("ConfigError")
      expect(String(error?._tag === "Some" ? error.value : "")).toContain("TETHER_ADMIN_PORT")
    }))
})
