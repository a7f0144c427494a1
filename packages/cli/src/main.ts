/**
 * The `tether` executable's entry point. Logs go to stderr (stdout carries
 * reports, tables and LDIF), warnings and up unless `--log-level` says otherwise.
 *
 * @since 0.1.0
 */
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import * as NodeServices from "@effect/platform-node/NodeServices"
import { Effect, Logger, References } from "effect"
import { run } from "./Cli.ts"

run.pipe(
  Effect.scoped,
  Effect.provideService(Logger.LogToStderr, true),
  Effect.provideService(References.MinimumLogLevel, "Warn"),
  Effect.provide(NodeServices.layer),
  NodeRuntime.runMain
)
