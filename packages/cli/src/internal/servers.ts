import type { ServerSet } from "@tether/core"
import { LdapClient } from "@tether/ldap"
import { Snapshot } from "@tether/observe"
import { PgClient } from "@tether/pg"
import { Effect, Schedule } from "effect"
import { TetherCliError } from "../CliError.ts"
import * as ConfigFile from "./configFile.ts"

const say = (line: string) => Effect.sync(() => process.stdout.write(`${line}\n`))

const startFailure = (e: { readonly message: string }) => new TetherCliError({ message: e.message, exitCode: 2 })

/** The clients a configuration file describes, probing every 250 ms. */
const clients = (file: string) =>
  Effect.gen(function*() {
    const loaded = yield* ConfigFile.load(file)
    const health = { interval: "250 millis", timeout: "2 seconds" } as const
    const sets: Array<{ readonly status: Effect.Effect<ServerSet.Status> }> = []
    if (loaded.ldap !== undefined) {
      sets.push(yield* LdapClient.make({ ...loaded.ldap, health }).pipe(Effect.mapError(startFailure)))
    }
    if (loaded.pg !== undefined) {
      sets.push(yield* PgClient.make({ ...loaded.pg, health }).pipe(Effect.mapError(startFailure)))
    }
    return sets
  })

const table = (rows: ReadonlyArray<ReadonlyArray<string>>): ReadonlyArray<string> => {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)))
  return rows.map((r) => r.map((cell, i) => cell.padEnd(widths[i]!)).join("  ").trimEnd())
}

/**
 * `tether status --config FILE`: waits for the first probe of every endpoint
 * (at most `waitMillis`), then prints a table (or JSON) of sets, endpoints,
 * health, breakers and pools. Holds no secret (URLs lose their user-info).
 */
export const status = (options: { readonly config: string; readonly json: boolean; readonly waitMillis: number }) =>
  Effect.gen(function*() {
    const sets = yield* clients(options.config)
    const all = Effect.forEach(sets, (s) => s.status)
    yield* all.pipe(
      Effect.repeat({
        until: (statuses) => statuses.every((s) => s.endpoints.every((e) => e.health !== "unknown")),
        schedule: Schedule.spaced("100 millis")
      }),
      Effect.timeoutOption(options.waitMillis)
    )
    const statuses = yield* all
    const views = statuses.map((s) => ({
      name: s.name,
      strategy: s.strategy,
      endpoints: s.endpoints.map((e) => Snapshot.endpointView(e, []))
    }))
    if (options.json) {
      yield* say(JSON.stringify(views, null, 2))
      return
    }
    const rows: Array<Array<string>> = [["SET", "ENDPOINT", "ROLE", "HEALTH", "BREAKER", "POOL open/max", "IDLE", "IN USE", "PENDING", "LATENCY"]]
    for (const set of views) {
      for (const e of set.endpoints) {
        rows.push([
          set.name,
          e.url,
          e.role,
          e.health,
          e.breaker?.status ?? "off",
          `${e.pool.open}/${e.pool.max}`,
          String(e.pool.idle),
          String(e.pool.inUse),
          String(e.pool.pending),
          e.latencyMillis === null ? "-" : `${e.latencyMillis.toFixed(1)} ms`
        ])
      }
    }
    for (const line of table(rows)) yield* say(line)
    const problems = views.flatMap((s) => s.endpoints.filter((e) => e.lastError !== null).map((e) => `${s.name} ${e.url}: ${e.lastError}`))
    for (const p of problems) yield* say(`  ! ${p}`)
  })

/**
 * `tether check --config FILE`: connects, binds (LDAP) or logs in (PostgreSQL)
 * and runs a probe on every endpoint on its own — no failover, no retry — and
 * prints one line per endpoint. Exit code 1 when any fails.
 */
export const check = (options: { readonly config: string }) =>
  Effect.gen(function*() {
    const loaded = yield* ConfigFile.load(options.config)
    const off = { health: false, breaker: false, retry: false } as const
    let failures = 0
    const report = (ok: boolean, kind: string, url: string, detail: string, millis: number) =>
      Effect.suspend(() => {
        if (!ok) failures++
        return say(`${ok ? "OK  " : "FAIL"}  ${kind.padEnd(4)} ${Snapshot.redactUrl(url)}  ${detail}${ok ? ` (${millis.toFixed(1)} ms)` : ""}`)
      })
    const timed = <A, E>(effect: Effect.Effect<A, E>) =>
      Effect.gen(function*() {
        const start = performance.now()
        const result = yield* Effect.result(effect)
        return { result, millis: performance.now() - start }
      })
    if (loaded.ldap !== undefined) {
      const whole = yield* LdapClient.make({ ...loaded.ldap, ...off }).pipe(Effect.mapError(startFailure))
      for (const endpoint of (yield* whole.status).endpoints) {
        const { result, millis } = yield* timed(Effect.scoped(Effect.gen(function*() {
          const one = yield* LdapClient.make({ ...loaded.ldap!, ...off, endpoints: [endpoint.url] })
          return yield* one.whoami
        })))
        yield* result._tag === "Success"
          ? report(true, "ldap", endpoint.url, `bound as ${result.success === "" ? "anonymous" : result.success}`, millis)
          : report(false, "ldap", endpoint.url, result.failure.message, millis)
      }
    }
    if (loaded.pg !== undefined) {
      const whole = yield* PgClient.make({ ...loaded.pg, ...off }).pipe(Effect.mapError(startFailure))
      for (const endpoint of (yield* whole.status).endpoints) {
        const { result, millis } = yield* timed(Effect.scoped(Effect.gen(function*() {
          const one = yield* PgClient.make({ ...loaded.pg!, ...off, readFrom: "any", endpoints: [{ url: endpoint.url, role: "any" }] })
          return yield* one.read<{ replica: boolean; version: string }>`select pg_is_in_recovery() as replica, current_setting('server_version') as version`
        })))
        yield* result._tag === "Success"
          ? report(true, "pg", endpoint.url, `PostgreSQL ${result.success[0]!.version}, ${result.success[0]!.replica ? "replica" : "primary"}`, millis)
          : report(false, "pg", endpoint.url, result.failure.message, millis)
      }
    }
    yield* say(failures === 0 ? "all endpoints answered" : `${failures} endpoint(s) failed`)
    if (failures > 0) process.exitCode = 1
  })
