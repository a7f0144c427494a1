/**
 * The `tether` executable's entry point.
 *
 * @since 0.1.0
 */
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import * as NodeServices from "@effect/platform-node/NodeServices"
import { Effect } from "effect"
import { run } from "./Cli.ts"

run.pipe(Effect.scoped, Effect.provide(NodeServices.layer), NodeRuntime.runMain)
