/**
 * Parameters postgres.js cannot serialize are refused before postgres.js
 * sees them (postgres.js, failing to write one while another statement runs,
 * fails the other statement and leaves the bad one unanswered), and are
 * classified as `PgUsageError`; everything postgres.js can send passes.
 */
import { describe, expect, it } from "@effect/vitest"
import { fromUnknown } from "../src/PgError.ts"
import * as Parameters from "../src/internal/parameters.ts"

const refusal = (values: ReadonlyArray<unknown>) => {
  try {
    Parameters.check(values)
    return undefined
  } catch (cause) {
    return fromUnknown(cause, { endpoint: "postgres://db:5432/app", user: "app" })
  }
}

describe("statement parameters", () => {
  const circularObject: Record<string, unknown> = { a: 1 }
  circularObject["self"] = { back: circularObject }
  const circularArray: Array<unknown> = [1]
  circularArray.push(circularArray)
  const shared = { x: 1 }

  it.each([
    ["undefined", [1, undefined], "UNDEFINED_VALUE", "parameter 2"],
    ["a Symbol", [Symbol("s")], "UNDEFINED_VALUE", "parameter 1"],
    ["a function", [() => 1], "UNDEFINED_VALUE", "parameter 1"],
    ["undefined in an array", [[1, undefined]], "UNDEFINED_VALUE", "parameter 1"],
    ["a circular object", ["a", circularObject], "TypeError", "parameter 2"],
    ["a circular array", [circularArray], "TypeError", "parameter 1"],
    ["65,534 parameters", Array.from({ length: 65_534 }, () => 1), "MAX_PARAMETERS_EXCEEDED", "65534"]
  ] as const)("%s is a PgUsageError before anything is sent", (_, values, code, where) => {
    const error = refusal(values)
    expect(error?._tag).toBe("PgUsageError")
    expect(error && "code" in error ? error.code : undefined).toBe(code)
    expect(error?.message).toContain(where)
  })

  it.each([
    ["plain values", [1, "a", true, null, 1n, new Date(0)]],
    ["bytes", [Buffer.from("x"), new Uint8Array([1, 2])]],
    ["JSON with an undefined property (JSON drops it)", [{ a: undefined, b: [1, 2] }]],
    ["the same object twice (shared, not circular)", [{ left: shared, right: shared }, [shared, shared]]],
    ["class instances (postgres.js helpers and fragments)", [new (class Helper { self = this })()]],
    ["65,533 parameters", Array.from({ length: 65_533 }, () => 1)],
    ["no parameters", []]
  ] as const)("%s pass", (_, values) => {
    expect(refusal(values)).toBeUndefined()
  })
})
