/**
 * A real Prometheus server (Debian's `prometheus` package) on a loopback port
 * with its data in a temp dir, scraping the targets you give it; stopped and
 * removed when its scope closes. Never the system service.
 *
 * @example
 * ```ts
 * import { Prometheus } from "@tether/testkit"
 * import { Effect } from "effect"
 *
 * const program = Effect.gen(function*() {
 *   const prometheus = yield* Prometheus.make({ targets: ["127.0.0.1:9464"], scrapeInterval: "1 second" })
 *   const series = yield* prometheus.query("tether_pool_connections")
 * }).pipe(Effect.scoped)
 * ```
 *
 * @since 0.1.0
 */
import { spawn } from "node:child_process"
import type { ChildProcess } from "node:child_process"
import * as path from "node:path"
import type { Scope } from "effect"
import { Context, Duration, Effect, Layer } from "effect"
import { FixtureError } from "./FixtureError.ts"
import { findIn } from "./internal/binaries.ts"
import { freePorts, HOST } from "./internal/ports.ts"
import { childEnv, signal, tail } from "./internal/process.ts"
import { trackPid, untrackPid } from "./internal/reaper.ts"
import * as TempDir from "./internal/tempdir.ts"
import * as Wait from "./internal/wait.ts"

/**
 * @since 0.1.0
 * @category models
 */
export interface Options {
  /** `host:port` of each server to scrape (e.g. the admin server). */
  readonly targets: ReadonlyArray<string>
  /** Default `/metrics`. */
  readonly metricsPath?: string | undefined
  /** Default 1 second. */
  readonly scrapeInterval?: Duration.Input | undefined
  /** How long to wait for the server to start. Default 30 seconds. */
  readonly timeout?: Duration.Input | undefined
}

/**
 * One instant-vector sample from the HTTP API.
 *
 * @since 0.1.0
 * @category models
 */
export interface Sample {
  readonly metric: Readonly<Record<string, string>>
  readonly value: readonly [number, string]
}

/**
 * A scrape target as Prometheus sees it.
 *
 * @since 0.1.0
 * @category models
 */
export interface Target {
  readonly scrapeUrl: string
  readonly health: "up" | "down" | "unknown"
  readonly lastError: string
}

/**
 * A running Prometheus.
 *
 * @since 0.1.0
 * @category models
 */
export interface Server {
  /** `http://127.0.0.1:PORT` */
  readonly url: string
  readonly port: number
  /** The data and config dir. */
  readonly dir: string
  /** Runs an instant query (`/api/v1/query`). */
  readonly query: (promql: string) => Effect.Effect<ReadonlyArray<Sample>, FixtureError>
  /** The active scrape targets (`/api/v1/targets`). */
  readonly targets: Effect.Effect<ReadonlyArray<Target>, FixtureError>
}

/**
 * @since 0.1.0
 * @category services
 */
export class Prometheus extends Context.Service<Prometheus, Server>()("@tether/testkit/Prometheus") {}

/**
 * @since 0.1.0
 * @category layers
 */
export const layer = (options: Options): Layer.Layer<Prometheus, FixtureError> => Layer.effect(Prometheus, make(options))

const getJson = (url: string, what: string): Effect.Effect<any, FixtureError> =>
  Effect.tryPromise({
    try: async (signal) => {
      const response = await fetch(url, { signal })
      const body = await response.json() as { status?: string; error?: string; data?: unknown }
      if (!response.ok || body.status !== "success") throw new Error(`${response.status}: ${body.error ?? "no data"}`)
      return body.data
    },
    catch: (cause) => new FixtureError({ message: `Prometheus ${what} failed: ${String(cause)}`, cause })
  })

/**
 * Starts Prometheus in the current scope.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (options: Options): Effect.Effect<Server, FixtureError, Scope.Scope> =>
  Effect.gen(function*() {
    const binary = findIn("prometheus", [], ["/usr/bin"])
    if (binary === undefined) {
      return yield* new FixtureError({
        message: "prometheus not found: install it with `bash scripts/provision.sh` (Debian package prometheus)"
      })
    }
    const [port] = yield* freePorts(1)
    const dir = yield* TempDir.make("tether-prometheus-")
    const interval = `${Math.max(1, Math.round(Duration.toMillis(Duration.fromInputUnsafe(options.scrapeInterval ?? "1 second"))))}ms`
    const config = [
      "global:",
      `  scrape_interval: ${interval}`,
      `  scrape_timeout: ${interval}`,
      "scrape_configs:",
      "  - job_name: tether",
      `    metrics_path: ${JSON.stringify(options.metricsPath ?? "/metrics")}`,
      "    static_configs:",
      `      - targets: [${options.targets.map((t) => JSON.stringify(t)).join(", ")}]`,
      ""
    ].join("\n")
    const configFile = path.join(dir, "prometheus.yml")
    yield* TempDir.writeFile(configFile, config)
    const url = `http://${HOST}:${port}`
    const state: { output: string; exit: string | undefined; child: ChildProcess | undefined } = {
      output: "",
      exit: undefined,
      child: undefined
    }
    yield* Effect.acquireRelease(
      Effect.sync(() => {
        const child = spawn(binary, [
          `--config.file=${configFile}`,
          `--storage.tsdb.path=${path.join(dir, "data")}`,
          `--web.listen-address=${HOST}:${port}`,
          "--log.level=warn"
        ], { env: childEnv(), cwd: dir, stdio: ["ignore", "pipe", "pipe"] })
        const collect = (chunk: string) => {
          state.output = (state.output + chunk).slice(-16384)
        }
        child.stdout?.setEncoding("utf8").on("data", collect)
        child.stderr?.setEncoding("utf8").on("data", collect)
        child.on("error", (error) => (state.exit = `cannot run ${binary}: ${error.message}`))
        child.on("exit", (code, sig) => {
          if (child.pid !== undefined) untrackPid(child.pid)
          state.exit = sig === null ? `exit code ${code}` : `signal ${sig}`
        })
        child.unref()
        if (child.pid !== undefined) trackPid(child.pid)
        state.child = child
        return child
      }),
      (child) =>
        Effect.callback<void>((resume) => {
          if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) return resume(Effect.void)
          const timer = setTimeout(() => {
            signal(child.pid!, "SIGKILL")
            resume(Effect.void)
          }, 5_000)
          child.once("exit", () => {
            clearTimeout(timer)
            resume(Effect.void)
          })
          signal(child.pid, "SIGTERM")
        })
    )
    yield* Wait.until(
      Effect.tryPromise(() => fetch(`${url}/-/ready`).then((r) => r.ok)),
      {
        what: `prometheus to be ready on ${url}`,
        timeout: options.timeout ?? Duration.seconds(30),
        interval: Duration.millis(50),
        abort: () => (state.exit === undefined ? undefined : `prometheus exited (${state.exit})`),
        detail: () => Effect.succeed(`prometheus output:\n${tail(state.output) || "(none)"}`)
      }
    )
    return {
      url,
      port: port!,
      dir,
      query: (promql) =>
        getJson(`${url}/api/v1/query?query=${encodeURIComponent(promql)}`, `query ${promql}`).pipe(
          Effect.map((data) => (data?.result ?? []) as ReadonlyArray<Sample>)
        ),
      targets: getJson(`${url}/api/v1/targets`, "targets").pipe(
        Effect.map((data) => ((data?.activeTargets ?? []) as ReadonlyArray<Target>).map((t) => ({
          scrapeUrl: t.scrapeUrl,
          health: t.health,
          lastError: t.lastError
        })))
      )
    } satisfies Server
  })
