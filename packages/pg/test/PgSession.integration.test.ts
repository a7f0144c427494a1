/**
 * Session state under interruption: Tether switches a pooled session between
 * read-only (reads) and read-write (writes) with `SET default_transaction_read_only`.
 * An operation interrupted at any point — including while that `SET` is in flight —
 * must never leave a session whose real setting differs from Tether's record of it:
 * a write sent through `read` must always fail as read-only, and a `write` must never
 * fail as read-only.
 */
import { expect, layer } from "@effect/vitest"
import { PostgresCluster } from "@tether/testkit"
import { Effect, Fiber, Random } from "effect"
import { PgClient } from "../src/index.ts"

const urlOf = (node: PostgresCluster.Node) => `postgres://${node.host}:${node.port}/postgres`

layer(PostgresCluster.layer({ replicas: 0 }), { excludeTestServices: true })("session state under interruption", (it) => {
  it.effect("random interruptions of reads and writes: 0 writes accepted through read, 0 false read-only failures", () =>
    Effect.gen(function*() {
      const cluster = yield* PostgresCluster.PostgresCluster
      const db = yield* PgClient.make({
        endpoints: [{ url: urlOf(cluster.primary), role: "primary" }],
        user: "postgres",
        readFrom: "any",
        health: false,
        queryTimeout: "5 seconds",
        pool: { max: 2 }
      })
      yield* db.write`create table session_t (id serial primary key, via text not null)`
      const insertViaRead = db.read`insert into session_t (via) values ('read') returning id`
      const insertViaWrite = db.write`insert into session_t (via) values ('write') returning id`

      /** Runs `effect`, interrupted at a random point: a 0–2 ms timeout, or after 0–40 yields. */
      const interrupted = <A, E>(effect: Effect.Effect<A, E>) =>
        Effect.gen(function*() {
          if (yield* Random.nextBoolean) {
            const micros = yield* Random.nextIntBetween(0, 2_000)
            yield* Effect.ignore(Effect.timeout(effect, `${micros} micros`))
          } else {
            const fiber = yield* Effect.forkChild(effect)
            const yields = yield* Random.nextIntBetween(0, 40)
            for (let i = 0; i < yields; i++) yield* Effect.yieldNow
            yield* Fiber.interrupt(fiber)
          }
        })

      let readAccepted = 0
      let readRefused = 0
      let falseReadOnly = 0
      let writesOk = 0
      const otherFailures: Array<string> = []
      const worker = (seed: number) =>
        Effect.gen(function*() {
          for (let trial = 0; trial < 1_500; trial++) {
            // An operation interrupted somewhere, then a checked one on the same small pool.
            const interruptRead = yield* Random.nextBoolean
            yield* interrupted(interruptRead ? insertViaRead : insertViaWrite)
            if ((trial + seed) % 2 === 0) {
              const result = yield* Effect.result(insertViaRead)
              if (result._tag === "Success") readAccepted++
              else if (result.failure._tag === "PgQueryError" && result.failure.kind === "read-only") readRefused++
              else otherFailures.push(result.failure.message)
            } else {
              const result = yield* Effect.result(insertViaWrite)
              if (result._tag === "Success") writesOk++
              else if (result.failure._tag === "PgQueryError" && result.failure.kind === "read-only") falseReadOnly++
              else otherFailures.push(result.failure.message)
            }
          }
        }).pipe(Random.withSeed(seed))
      yield* Effect.all([worker(1), worker(2)], { concurrency: 2 })

      // And the table says the same: every row inserted through `read` is a bug.
      const [rows] = yield* db.write<{ n: number }>`select count(*)::int as n from session_t where via = 'read'`
      expect({ readAccepted, falseReadOnly, rowsViaRead: rows!.n }).toEqual({ readAccepted: 0, falseReadOnly: 0, rowsViaRead: 0 })
      expect(otherFailures).toEqual([])
      expect(readRefused + writesOk).toBe(3_000)
    }).pipe(Effect.scoped))
})
