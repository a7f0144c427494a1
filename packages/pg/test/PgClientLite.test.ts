import { expect, layer } from "@effect/vitest"
import { Identity } from "@tether/core"
import { Effect, Redacted, Stream } from "effect"
import { PgClient } from "../src/index.ts"
import * as PgClientLite from "../src/PgClientLite.ts"

class EndUser extends Identity.Service<EndUser>()("test/EndUser") {}

layer(PgClientLite.layer(), { timeout: 60_000 })("PgClientLite (PGlite in-process)", (it) => {
  it.effect("the PgClient API on a real engine: reads, writes, bound parameters, transactions", () =>
    Effect.gen(function*() {
      const db = yield* PgClient.PgClient
      yield* db.write`create table items (id int primary key, name text not null)`
      yield* db.write`insert into items values (${1}, ${"it's one"})`
      const rows = yield* db.read<{ id: number; name: string }>`select id, name from items where id = ${1}`
      expect(rows).toEqual([{ id: 1, name: "it's one" }])

      yield* db.transaction((tx) => tx.sql`insert into items values (${2}, ${"two"})`)
      const failed = yield* Effect.flip(db.transaction((tx) =>
        Effect.gen(function*() {
          yield* tx.sql`insert into items values (${3}, ${"three"})`
          yield* tx.sql`insert into items values (${1}, ${"again"})`
        })
      ))
      expect(failed._tag === "PgQueryError" && failed.kind).toBe("constraint")
      const ids = yield* db.read<{ id: number }>`select id from items order by id`
      expect(ids.map((r) => r.id)).toEqual([1, 2])
      const streamed = yield* Stream.runCollect(db.stream<{ n: number }>`select generate_series(1, 5) as n`)
      expect(streamed.map((r) => r.n)).toEqual([1, 2, 3, 4, 5])
    }))

  it.effect("the same typed errors: syntax, unknown table, a write in read mode", () =>
    Effect.gen(function*() {
      const db = yield* PgClient.PgClient
      const syntax = yield* Effect.flip(db.read`selec 1`)
      expect(syntax._tag === "PgQueryError" && syntax.kind).toBe("syntax")
      const unknown = yield* Effect.flip(db.read`select * from nowhere`)
      expect(unknown._tag === "PgQueryError" && unknown.kind).toBe("undefined-object")
      const readOnly = yield* Effect.flip(db.read`create table sneaky (id int)`)
      expect(readOnly._tag === "PgQueryError" && readOnly.kind).toBe("read-only")
    }))

  it.effect("as(identity) runs under the identity's role", () =>
    Effect.gen(function*() {
      const db = yield* PgClient.PgClient
      yield* db.write`create role reporter`
      const [me] = yield* db.as(EndUser).read<{ user: string }>`select current_user as user`.pipe(
        Effect.provideService(EndUser, Identity.make("reporter", Redacted.make("unused")))
      )
      expect(me!.user).toBe("reporter")
      const [back] = yield* db.read<{ user: string }>`select current_user as user`
      expect(back!.user).toBe("postgres")
    }))
})
