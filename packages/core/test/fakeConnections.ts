import { Data, Effect } from "effect"

/** A fake connection for unit tests of the pool's own logic. */
export interface FakeConnection {
  readonly id: number
  borrowers: number
}

/**
 * A factory of fake connections that records what the pool does with them:
 * how many were opened and closed, which are open, how many borrowers each
 * has. Its knobs make the next opens fail or hang and validations fail.
 */
export const makeFactory = () => {
  const state = {
    opened: 0,
    closed: 0,
    open: new Map<number, FakeConnection>(),
    maxOpen: 0,
    failNextOpens: 0,
    hangOpens: false,
    invalid: new Set<number>(),
    validations: 0
  }
  // A hang is interruptible, like a driver's connect: it sits before the
  // (uninterruptible) acquire step of acquireRelease.
  const open = Effect.acquireRelease(
    Effect.suspend(() => {
      if (state.failNextOpens > 0) {
        state.failNextOpens--
        return Effect.fail(new ConnectRefused({ message: "connection refused" }))
      }
      const connection: FakeConnection = { id: ++state.opened, borrowers: 0 }
      state.open.set(connection.id, connection)
      state.maxOpen = Math.max(state.maxOpen, state.open.size)
      return Effect.succeed(connection)
    }),
    (connection) =>
      Effect.sync(() => {
        state.closed++
        state.open.delete(connection.id)
      })
  )
  const acquire = Effect.suspend(() => state.hangOpens ? Effect.never : open)
  const validate = (connection: FakeConnection) =>
    Effect.sync(() => {
      state.validations++
      return !state.invalid.has(connection.id)
    })
  return { state, acquire, validate }
}


/** The fake driver's connect error. */
export class ConnectRefused extends Data.TaggedError("ConnectRefused")<{ readonly message: string }> {}
