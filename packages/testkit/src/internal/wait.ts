/**
 * Polling with a deadline.
 *
 * @internal
 */
import { Duration, Effect } from "effect"
import { FixtureError } from "../FixtureError.ts"

export interface WaitOptions {
  /** What we wait for, for the error message ("pg1 to stream from pg0"). */
  readonly what: string
  readonly timeout: Duration.Input
  readonly interval?: Duration.Input
  /** Extra detail for the timeout error (for example the tail of a server log). */
  readonly detail?: () => Effect.Effect<string>
}

/**
 * Runs `check` until it succeeds with `true`. Failures of `check` count as "not yet"; when the
 * timeout passes, fails with a `FixtureError` naming what we waited for and the last failure.
 * An `abort` check that returns a message stops waiting at once (for example: the server exited).
 */
export const until = <E>(
  check: Effect.Effect<boolean, E>,
  options: WaitOptions & { readonly abort?: () => string | undefined }
): Effect.Effect<void, FixtureError> =>
  Effect.gen(function*() {
    const timeoutMs = Duration.toMillis(options.timeout)
    const interval = options.interval ?? Duration.millis(25)
    const deadline = Date.now() + timeoutMs
    let last: unknown = undefined
    while (true) {
      const aborted = options.abort?.()
      if (aborted !== undefined) {
        const detail = options.detail === undefined ? "" : yield* options.detail()
        return yield* new FixtureError({ message: `${aborted}${detail ? `\n${detail}` : ""}` })
      }
      const result = yield* Effect.result(check)
      if (result._tag === "Success") {
        if (result.success) return
      } else {
        last = result.failure
      }
      if (Date.now() >= deadline) {
        const detail = options.detail === undefined ? "" : yield* options.detail()
        const lastText = last === undefined ? "" : ` (last error: ${describe(last)})`
        return yield* new FixtureError({
          message: `timed out after ${timeoutMs} ms waiting for ${options.what}${lastText}${detail ? `\n${detail}` : ""}`,
          cause: last
        })
      }
      yield* Effect.sleep(interval)
    }
  })

const describe = (error: unknown): string =>
  error instanceof Error ? error.message : typeof error === "object" && error !== null && "message" in error
    ? String((error as { message: unknown }).message)
    : String(error)
