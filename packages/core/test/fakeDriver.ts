import type { Driver } from "@tether/core"
import { Fault } from "@tether/core"
import { Data, Effect } from "effect"

/** The fake backend's error: what kind of failure it simulates. */
export class FakeError extends Data.TaggedError("FakeError")<{
  readonly kind: "refused" | "reset" | "busy" | "auth" | "semantic"
  readonly endpoint: string
}> {}

/** A fake server's condition. */
export type Condition = "up" | "down" | "hung" | "busy"

/** A fake connection: which endpoint it is to, and its number. */
export interface FakeConnection {
  readonly endpoint: string
  readonly id: number
}

/**
 * A fake driver for unit tests of the set's own logic: each endpoint's
 * condition can be changed; operations record where they ran.
 */
export const makeFakeDriver = () => {
  const conditions = new Map<string, Condition>()
  const calls: Array<string> = []
  let nextId = 1
  const condition = (url: string) => conditions.get(url) ?? "up"
  const driver: Driver.Driver<FakeConnection, FakeError> = {
    connect: (endpoint) =>
      Effect.suspend(() => {
        switch (condition(endpoint.url)) {
          case "down":
            return Effect.fail(new FakeError({ kind: "refused", endpoint: endpoint.url }))
          case "hung":
            return Effect.never
          default:
            return Effect.succeed({ endpoint: endpoint.url, id: nextId++ })
        }
      }),
    validate: (connection) =>
      Effect.suspend(() =>
        condition(connection.endpoint) === "up" ? Effect.void : Effect.fail(new FakeError({ kind: "reset", endpoint: connection.endpoint }))
      ),
    classify: (error) => {
      if (!(error instanceof FakeError)) return Fault.make("unknown")
      switch (error.kind) {
        case "refused":
          return Fault.make("connection", { mayHaveReachedServer: false })
        case "reset":
          return Fault.make("connection", { mayHaveReachedServer: true })
        case "busy":
          return Fault.make("overload", { mayHaveReachedServer: false })
        case "auth":
          return Fault.make("authentication")
        case "semantic":
          return Fault.make("semantic")
      }
    },
    isBroken: (error) => error instanceof FakeError && error.kind === "reset"
  }
  /** An operation on a connection: fails as the endpoint's condition says. */
  const operation = (connection: FakeConnection, latency: "instant" | number = "instant") =>
    Effect.gen(function*() {
      calls.push(connection.endpoint)
      if (latency !== "instant") yield* Effect.sleep(latency)
      switch (condition(connection.endpoint)) {
        case "down":
          return yield* Effect.fail(new FakeError({ kind: "reset", endpoint: connection.endpoint }))
        case "busy":
          return yield* Effect.fail(new FakeError({ kind: "busy", endpoint: connection.endpoint }))
        case "hung":
          return yield* Effect.never
        default:
          return connection.endpoint
      }
    })
  return { driver, conditions, calls, operation }
}
