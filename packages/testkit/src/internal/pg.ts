/**
 * One-shot PostgreSQL queries for the fixture's own checks (postgres.js, one connection each).
 *
 * @internal
 */
import { Duration, Effect } from "effect"
import postgres from "postgres"

/**
 * Opens a connection to `url`, runs `text` and closes the connection; fails with whatever
 * postgres.js threw, or a `TimeoutError` after `timeout`.
 */
export const query = (
  url: string,
  text: string,
  timeout: Duration.Input = Duration.seconds(5)
): Effect.Effect<ReadonlyArray<Record<string, unknown>>, unknown> =>
  Effect.acquireUseRelease(
    Effect.sync(() =>
      postgres(url, {
        max: 1,
        connect_timeout: 2,
        idle_timeout: 1,
        prepare: false,
        onnotice: () => undefined,
        fetch_types: false,
        connection: { application_name: "tether-testkit" }
      })
    ),
    (sql) => Effect.tryPromise({ try: () => sql.unsafe(text).then((rows) => [...rows]), catch: (e) => e }),
    (sql) => Effect.promise(() => sql.end({ timeout: 0 }).catch(() => undefined))
  ).pipe(Effect.timeout(timeout))

/** The single value of a one-row, one-column query. */
export const scalar = (url: string, text: string, timeout?: Duration.Input): Effect.Effect<unknown, unknown> =>
  Effect.map(query(url, text, timeout), (rows) => {
    const row = rows[0]
    return row === undefined ? undefined : Object.values(row)[0]
  })

/** SQL string literal. */
export const literal = (value: string): string => `'${value.replace(/'/g, "''")}'`

/** SQL identifier. */
export const ident = (value: string): string => `"${value.replace(/"/g, '""')}"`
