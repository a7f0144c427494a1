/** What the testkit's integration tests share for replication and recovery checks. */
import { Duration, Effect } from "effect"

/**
 * Polls `check` every `every` until it succeeds with true; dies when `within`
 * has passed (a bound on a real server's replication or restart, not a
 * measure of speed).
 */
export const eventually = <E>(
  check: Effect.Effect<boolean, E>,
  { every = Duration.millis(25), within = Duration.seconds(20) }: {
    readonly within?: Duration.Duration
    readonly every?: Duration.Duration
  } = {}
) =>
  Effect.gen(function*() {
    const deadline = Date.now() + Duration.toMillis(within)
    while (true) {
      const result = yield* Effect.result(check)
      if (result._tag === "Success" && result.success) return
      if (Date.now() > deadline) return yield* Effect.die(new Error("condition not met in time"))
      yield* Effect.sleep(every)
    }
  })
