/**
 * Watching a configuration source: polls its text on a schedule (a
 * `TestClock` drives it in tests) and applies each change through
 * `Reconfigure.apply`. A bad source is a logged typed error that changes
 * nothing; the last good configuration stays in a `SubscriptionRef`.
 *
 * Polling rather than `fs.watch`: editors and orchestrators replace files by
 * renaming (a watch on the old inode goes quiet), network and container
 * file systems often send no events, and a poll is one clock-driven loop.
 * `reload` applies a change at once (e.g. on SIGHUP).
 *
 * @internal
 */
import { Duration, Effect, Semaphore, SubscriptionRef } from "effect"
import type { Scope } from "effect"
import type * as ServerSet from "../ServerSet.ts"

/** @internal */
export const make = <A, E>(
  options: ServerSet.WatchConfigOptions<A, E>
): Effect.Effect<ServerSet.ConfigWatch<A, E>, E | ServerSet.ApplyError, Scope.Scope> =>
  Effect.gen(function*() {
    const { decode, read, target } = options
    const interval = Duration.fromInputUnsafe(options.interval ?? "5 seconds")
    const label = options.label ?? "configuration"
    const lock = Semaphore.makeUnsafe(1)
    /** The text last looked at, good or bad: the poll reports a bad one once, not every interval. */
    let seen: string | undefined

    const load = (text: string) =>
      Effect.gen(function*() {
        const config = yield* decode(text)
        const changes = yield* target.apply(options.toReconfiguration(config))
        return { config, changes }
      })

    const first = yield* read
    const initial = yield* load(first)
    seen = first
    const config = yield* SubscriptionRef.make(initial.config)

    const check = (force: boolean) =>
      lock.withPermits(1)(Effect.gen(function*() {
        const text = yield* read
        if (!force && text === seen) return []
        seen = text
        const loaded = yield* load(text)
        yield* SubscriptionRef.set(config, loaded.config)
        yield* Effect.logInfo(`${label} of "${target.name}" reloaded: ${loaded.changes.length} change(s)`).pipe(
          Effect.annotateLogs({ set: target.name })
        )
        return loaded.changes
      })).pipe(
        Effect.tapError((error) =>
          Effect.logError(`${label} of "${target.name}" not applied, nothing changed: ${messageOf(error)}`).pipe(
            Effect.annotateLogs({ set: target.name })
          )
        )
      )

    // Failures are logged by `check`; the next poll looks again.
    yield* Effect.sleep(interval).pipe(
      Effect.andThen(Effect.ignore(check(false))),
      Effect.forever,
      Effect.forkScoped
    )

    return { config, reload: check(true) }
  })

const messageOf = (error: unknown): string =>
  error instanceof Error ? error.message : String(error)
