import { assert, describe, it } from "@effect/vitest"
import * as Data from "effect/Data"
import * as Fault from "../src/Fault.ts"
import { ConnectTimeout, PoolClosed, PoolTimeout } from "../src/PoolError.ts"

class Refused extends Data.TaggedError("Refused")<{ readonly port: number }> {}
class Rejected extends Data.TaggedError("Rejected")<{ readonly busy: boolean }> {}
type MyError = Refused | Rejected
const isMyError = (u: unknown): u is MyError => u instanceof Refused || u instanceof Rejected

describe("Fault.table", () => {
  const classify = Fault.table(isMyError, {
    Refused: Fault.make("connection", { mayHaveReachedServer: false }),
    Rejected: (error) => error.busy ? Fault.make("overload", { mayHaveReachedServer: false }) : Fault.make("semantic")
  })

  it("picks the entry of the error's own tag, fixed or computed from the error", () => {
    assert.deepStrictEqual(classify(new Refused({ port: 389 })), { kind: "connection", mayHaveReachedServer: false })
    assert.deepStrictEqual(classify(new Rejected({ busy: true })), { kind: "overload", mayHaveReachedServer: false })
    assert.strictEqual(classify(new Rejected({ busy: false })).kind, "semantic")
  })

  it("answers `otherwise` (default unknown) for a failure that is not the driver's", () => {
    assert.strictEqual(classify(new Error("boom")).kind, "unknown")
    assert.strictEqual(classify({ _tag: "Refused" }).kind, "unknown")
    assert.strictEqual(classify(undefined).kind, "unknown")
    const lenient = Fault.table(isMyError, { Refused: Fault.make("connection"), Rejected: Fault.make("semantic") }, Fault.make("semantic"))
    assert.strictEqual(lenient(new Error("boom")).kind, "semantic")
  })
})

describe("Fault.ofPoolError", () => {
  const timeout = new PoolTimeout({ pool: "p", timeoutMillis: 1, snapshot: { idle: 0, inUse: 1, pending: 1, max: 1 } })
  const hung = new ConnectTimeout({ pool: "p", timeoutMillis: 1 })
  const closed = new PoolClosed({ pool: "p" })

  it("recognises the pool's errors by class, not by a look-alike tag", () => {
    assert.isTrue(Fault.isPoolFailure(timeout) && Fault.isPoolFailure(hung) && Fault.isPoolFailure(closed))
    assert.isFalse(Fault.isPoolFailure({ _tag: "PoolTimeout" }))
  })

  it("fails over on all three; only a hung connect counts against the breaker; none reached the server", () => {
    assert.strictEqual(Fault.ofPoolError(timeout, "failover").kind, "overload")
    assert.strictEqual(Fault.ofPoolError(closed, "failover").kind, "connection")
    assert.strictEqual(Fault.ofPoolError(hung, "failover").kind, "connection")
    assert.isFalse(Fault.isServerFault(Fault.ofPoolError(timeout, "breaker")))
    assert.isFalse(Fault.isServerFault(Fault.ofPoolError(closed, "breaker")))
    assert.isTrue(Fault.isServerFault(Fault.ofPoolError(hung, "breaker")))
    for (const error of [timeout, hung, closed]) {
      for (const purpose of ["failover", "breaker"] as const) {
        assert.isFalse(Fault.ofPoolError(error, purpose).mayHaveReachedServer)
      }
    }
  })
})
