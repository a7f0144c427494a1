/**
 * The `tether` command's own failure: what went wrong and what to do, and
 * the exit code (2 for a usage or configuration problem, 1 otherwise).
 *
 * @since 0.1.0
 */
import { Data } from "effect"

/**
 * @since 0.1.0
 * @category errors
 */
export class TetherCliError extends Data.TaggedError("TetherCliError")<{
  readonly message: string
  readonly exitCode: 1 | 2
}> {}
