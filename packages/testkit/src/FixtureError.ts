/**
 * The one error type of the real-server fixtures.
 *
 * @since 0.1.0
 */
import { Data } from "effect"

/**
 * A fixture could not start, control or stop a real server. The `message` says what went wrong
 * and, where it can, what to do about it (for example "run `npm run provision`"). It never
 * contains a password.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { PostgresCluster } from "@tether/testkit"
 *
 * const program = PostgresCluster.make().pipe(
 *   Effect.catchTag("FixtureError", (e) => Effect.logError(e.message))
 * )
 * ```
 *
 * @since 0.1.0
 */
export class FixtureError extends Data.TaggedError("FixtureError")<{
  readonly message: string
  readonly cause?: unknown
}> {}
