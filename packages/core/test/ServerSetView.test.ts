import { assert, describe, expectTypeOf, it } from "@effect/vitest"
import { Identity, ServerSet } from "@tether/core"
import type { Driver } from "@tether/core"
import type { Context } from "effect"
import { Effect, Redacted, Stream } from "effect"
import type { FakeError } from "./fakeDriver.ts"
import { makeFakeDriver } from "./fakeDriver.ts"

const A = "fake://a:1"
const B = "fake://b:1"

class Alice extends Identity.Service<Alice>()("test/view/Alice") {}
class Bob extends Identity.Service<Bob>()("test/view/Bob") {}

const alice = Identity.make("uid=alice", Redacted.make("alice-secret"), { label: "alice" })
const bob = Identity.make("uid=bob", Redacted.make("bob-secret"), { label: "bob" })

/** A connection that knows the identity it was bound as (`"default"`: the driver's own). */
interface BoundConnection {
  readonly endpoint: string
  readonly id: number
  readonly boundAs: string
}

/**
 * The fake driver, with connections bound as the identity `connect` was
 * given; every borrow records the identity of the connection it got.
 */
const makeBindingDriver = () => {
  const fake = makeFakeDriver()
  const borrows: Array<string> = []
  let nextId = 1
  const driver: Driver.Driver<BoundConnection, FakeError> = {
    connect: (endpoint, identity) =>
      Effect.sync(() => ({ endpoint: endpoint.url, id: nextId++, boundAs: identity?.principal ?? "default" })),
    classify: fake.driver.classify
  }
  /** The operation: records and answers the identity its connection is bound as. */
  const whoami = (connection: BoundConnection) =>
    Effect.sync(() => {
      borrows.push(connection.boundAs)
      return connection.boundAs
    })
  return { driver, borrows, whoami }
}

const makeSet = (driver: Driver.Driver<BoundConnection, FakeError>) =>
  ServerSet.make({ name: "view", endpoints: [A, B], driver, strategy: "round-robin", health: false })

/** Only type-checked (by `npm run typecheck`), never called. */
const typeChecks = (set: ServerSet.ServerSet<BoundConnection, never>) => {
  const whoami = (c: BoundConnection) => Effect.succeed(c.boundAs)
  expectTypeOf(set.as(Alice)).toEqualTypeOf<ServerSet.View<BoundConnection, never, Alice>>()
  expectTypeOf(set.as(Alice).use(whoami)).toEqualTypeOf<Effect.Effect<string, ServerSet.UseError<never>, Alice>>()
  expectTypeOf(set.as().use(whoami)).toEqualTypeOf<Effect.Effect<string, ServerSet.UseError<never>, never>>()
  expectTypeOf(set.as(undefined).use(whoami)).toEqualTypeOf<Effect.Effect<string, ServerSet.UseError<never>, never>>()
  expectTypeOf(set.as(Bob).useStream((c) => Stream.make(c.boundAs))).toEqualTypeOf<
    Stream.Stream<string, ServerSet.UseError<never>, Bob>
  >()
  // A client generic over its identity keeps one code path, and its requirement stays `R`.
  const generic = <R>(key: Context.Key<R, Identity.Credentials> | undefined) => set.as(key).use(whoami)
  expectTypeOf(generic<Alice>).returns.toEqualTypeOf<Effect.Effect<string, ServerSet.UseError<never>, Alice>>()
  // @ts-expect-error: Alice is missing, so this does not compile.
  Effect.runPromise(set.as(Alice).use(whoami))
}

describe("ServerSet.as (identity-bound views)", () => {
  it("a view's effects require its identity, and the default view's require none", () => {
    // The assertions live in `typeChecks`, checked by tsc; a wrong type fails `npm run typecheck`.
    expectTypeOf(typeChecks).toBeFunction()
  })

  it.effect("a view runs every borrow, of effects and of streams, on a connection bound as its identity", () =>
    Effect.gen(function*() {
      const fake = makeBindingDriver()
      const set = yield* makeSet(fake.driver)
      const asAlice = set.as(Alice)
      const asBob = set.as(Bob)
      const byDefault = set.as()
      const answers: Array<string> = []
      for (let i = 0; i < 3; i++) {
        answers.push(yield* asAlice.use(fake.whoami, { idempotent: true }))
        answers.push(yield* asBob.use(fake.whoami))
        answers.push(yield* byDefault.use(fake.whoami))
      }
      const streamed = yield* Stream.runCollect(
        Stream.concat(
          asAlice.useStream((c) => Stream.fromEffect(fake.whoami(c))),
          asBob.useStream((c) => Stream.fromEffect(fake.whoami(c)))
        )
      )
      assert.deepStrictEqual(answers, Array(3).fill(["uid=alice", "uid=bob", "default"]).flat())
      assert.deepStrictEqual(streamed, ["uid=alice", "uid=bob"])
      // What each borrow was bound as, in order: no borrow ran as another identity.
      assert.deepStrictEqual(fake.borrows, [...answers, ...streamed])
    }).pipe(Effect.provideService(Alice, alice), Effect.provideService(Bob, bob), Effect.scoped))

  it.effect("the default view: no key, the driver's identity, the same routing as the keyed views", () =>
    Effect.gen(function*() {
      const fake = makeBindingDriver()
      const set = yield* makeSet(fake.driver)
      const byDefault = set.as()
      assert.strictEqual(set.as(undefined), byDefault)
      assert.strictEqual(byDefault.key, undefined)
      // Round robin over A and B: alternating calls through the default view and a keyed view keep alternating endpoints.
      const endpoints: Array<string> = []
      for (let i = 0; i < 4; i++) {
        const via = i % 2 === 0 ? byDefault.use : set.as(Alice).use
        endpoints.push(yield* via((c) => Effect.as(fake.whoami(c), c.endpoint)))
      }
      assert.deepStrictEqual(endpoints, [A, B, A, B])
      assert.deepStrictEqual(fake.borrows, ["default", "uid=alice", "default", "uid=alice"])
      assert.deepStrictEqual(yield* Stream.runCollect(byDefault.useStream((c) => Stream.fromEffect(fake.whoami(c)))), [
        "default"
      ])
    }).pipe(Effect.provideService(Alice, alice), Effect.scoped))

  it.effect("views are made once per key: the same key gives the same view", () =>
    Effect.gen(function*() {
      const fake = makeBindingDriver()
      const set = yield* makeSet(fake.driver)
      const asAlice = set.as(Alice)
      assert.strictEqual(set.as(Alice), asAlice)
      assert.strictEqual(set.as(Alice).use, asAlice.use)
      assert.strictEqual(asAlice.key, Alice)
      assert.notStrictEqual<unknown>(set.as(Bob), asAlice)
      assert.strictEqual(set.as(Bob), set.as(Bob))
      assert.strictEqual(set.as(), set.as())
      // Views belong to their set: another set gives its own.
      const other = yield* makeSet(fake.driver)
      assert.notStrictEqual(other.as(Alice), asAlice)
    }).pipe(Effect.scoped))
})
