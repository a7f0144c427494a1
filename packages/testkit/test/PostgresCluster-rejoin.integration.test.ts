/**
 * `PostgresCluster.rejoin`: after a failover the old primary can come back as a (stale) primary on
 * the old timeline — a split brain — and is then rebuilt as a streaming replica of the new one.
 */
import { expect, it } from "@effect/vitest"
import { Effect, Exit } from "effect"
import postgres from "postgres"
import { PostgresCluster } from "../src/index.ts"
import { eventually } from "./eventually.ts"

/** One statement on a fresh connection, closed afterwards. */
const scalar = (url: string, text: string) =>
  Effect.tryPromise({
    try: async () => {
      const sql = postgres(url, { max: 1, connect_timeout: 2, onnotice: () => undefined })
      try {
        const rows = await sql.unsafe(text)
        return rows[0] === undefined ? undefined : Object.values(rows[0])[0]
      } finally {
        await sql.end({ timeout: 0 }).catch(() => undefined)
      }
    },
    catch: (e) => e
  })

it.live("an old primary restarted after a failover is a second primary until it rejoins as a replica", () =>
  Effect.gen(function*() {
    const cluster = yield* PostgresCluster.make({ replicas: 1 })
    const [old, next] = [cluster.primary, cluster.replicas[0]!]
    yield* scalar(old.url, "create table t (v text)")
    yield* eventually(Effect.map(scalar(next.url, "select count(*)::int from pg_tables where tablename = 't'"), (n) => n === 1))

    // Bad targets are typed errors, and leave the node alone.
    expect(Exit.isFailure(yield* Effect.exit(cluster.rejoin(old, old)))).toBe(true)
    expect(Exit.isFailure(yield* Effect.exit(cluster.rejoin(old, next)))).toBe(true) // next is a replica
    expect(old.state).toBe("running")

    yield* cluster.kill(old)
    yield* cluster.promote(next)
    yield* cluster.restart(old)
    // Split brain: both accept writes, on diverging timelines.
    expect(yield* scalar(old.url, "select pg_is_in_recovery()")).toBe(false)
    expect(yield* scalar(next.url, "select pg_is_in_recovery()")).toBe(false)
    yield* scalar(old.url, "insert into t values ('stale')")
    yield* scalar(next.url, "insert into t values ('new')")

    yield* cluster.rejoin(old, next)
    expect(old.role).toBe("replica")
    expect(old.state).toBe("running")
    yield* cluster.awaitStreaming(old)
    expect(yield* scalar(old.url, "select pg_is_in_recovery()")).toBe(true)
    // The old node now holds the new primary's data: its own stale write is gone.
    yield* scalar(next.url, "insert into t values ('after')")
    yield* eventually(Effect.map(scalar(old.url, "select string_agg(v, ',' order by v) from t"), (v) => v === "after,new"))
  }).pipe(Effect.scoped), 120_000)
