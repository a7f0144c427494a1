/**
 * @tether/cli — the `tether` command.
 *
 * @since 0.1.0
 */

/** The command tree and its runner. */
export * as Cli from "./Cli.ts"

/** The command's own typed failure. */
export { TetherCliError } from "./CliError.ts"
