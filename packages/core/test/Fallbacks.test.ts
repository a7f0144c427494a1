/**
 * The hot paths of the pools, the breaker and `ServerSet` see how a borrow or call ends through a frame
 * pushed onto the fiber's stack (`internal/fiberStack.ts`), and fall back to Effect's public combinators
 * when Effect's internals are not what that module expects. This file runs the unit tests of those
 * modules with the frames turned off, so the fallbacks keep the same behaviour.
 */
import { afterAll, beforeAll, describe, it } from "@effect/vitest"
import { assert } from "@effect/vitest"
import * as FiberStack from "../src/internal/fiberStack.ts"

beforeAll(() => FiberStack.setEnabled(false))
afterAll(() => FiberStack.setEnabled(true))

await import("./ConnectionPool.test.ts")
await import("./IdentityPool.test.ts")
await import("./CircuitBreaker.test.ts")
await import("./ServerSet.test.ts")
await import("./ServerSetView.test.ts")

describe("fallbacks", () => {
  it("the tests above ran with the frames turned off", () => {
    assert.isFalse(FiberStack.isEnabled())
  })
})
