/**
 * The harness's own access to the servers, straight to each server (never through a FaultProxy
 * and never through Tether): superuser statements on one PostgreSQL node, admin searches on one
 * slapd. Every call opens a fresh connection, is bounded, and closes it.
 */
import { Data, Effect } from "effect"
import { Client } from "ldapts"
import postgres from "postgres"

export class AdminError extends Data.TaggedError("AdminError")<{ readonly message: string }> {}

const bounded = <A>(promise: Promise<A>, millis: number, what: string): Promise<A> => {
  let timer: ReturnType<typeof setTimeout> | undefined
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: no answer within ${millis} ms`)), millis)
  })
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer))
}

const messageOf = (e: unknown) => (e instanceof Error ? e.message : String(e))

/** The application name of the harness's own PostgreSQL sessions (not counted as leaks). */
export const ADMIN_APPLICATION = "chaos-admin"

/** Runs one statement as the superuser on `url` (a node's own URL). */
export const pg = <A extends object = Record<string, unknown>>(
  url: string,
  text: string,
  parameters: ReadonlyArray<unknown> = [],
  millis = 5000
): Effect.Effect<ReadonlyArray<A>, AdminError> =>
  Effect.tryPromise({
    try: async () => {
      const sql = postgres(url, {
        max: 1,
        connect_timeout: Math.max(1, Math.ceil(millis / 1000)),
        idle_timeout: 1,
        onnotice: () => {},
        connection: { application_name: ADMIN_APPLICATION }
      })
      try {
        return (await bounded(sql.unsafe(text, parameters as Array<any>), millis, text.slice(0, 60))) as unknown as ReadonlyArray<A>
      } finally {
        sql.end({ timeout: 0 }).catch(() => undefined)
      }
    },
    catch: (e) => new AdminError({ message: `${text.slice(0, 80)}: ${messageOf(e)}` })
  })

/** Polls `check` every `interval` ms until it returns true or `millis` pass; false on timeout. */
export const until = <E>(check: Effect.Effect<boolean, E>, millis: number, interval = 100): Effect.Effect<boolean> =>
  Effect.gen(function*() {
    const deadline = Date.now() + millis
    while (Date.now() < deadline) {
      const ok = yield* Effect.orElseSucceed(check, () => false)
      if (ok) return true
      yield* Effect.sleep(interval)
    }
    return false
  })

/** An entry as the harness sees it. */
export interface AdminEntry {
  readonly dn: string
  readonly creatorsName: string
}

/** Every entry one level below `base` on the server at `url`, with its `creatorsName`, as the admin. */
export const ldapList = (
  url: string,
  adminDn: string,
  adminPassword: string,
  base: string,
  millis = 10_000
): Effect.Effect<ReadonlyArray<AdminEntry>, AdminError> =>
  Effect.tryPromise({
    try: async () => {
      const client = new Client({ url, timeout: millis, connectTimeout: 3000 })
      try {
        await bounded(client.bind(adminDn, adminPassword), millis, "admin bind")
        const { searchEntries } = await bounded(
          client.search(base, { scope: "one", attributes: ["creatorsName"], sizeLimit: 0, paged: { pageSize: 1000 } }),
          millis,
          "admin search"
        )
        return searchEntries.map((e) => ({ dn: e.dn.toLowerCase(), creatorsName: String(e["creatorsName"] ?? "").toLowerCase() }))
      } finally {
        client.unbind().catch(() => undefined)
      }
    },
    catch: (e) => new AdminError({ message: `ldap list ${base} on ${url}: ${messageOf(e)}` })
  })

/** Adds an entry as the admin (setup). */
export const ldapAdd = (
  url: string,
  adminDn: string,
  adminPassword: string,
  dn: string,
  attributes: Record<string, string | Array<string>>
): Effect.Effect<void, AdminError> =>
  Effect.tryPromise({
    try: async () => {
      const client = new Client({ url, timeout: 5000, connectTimeout: 3000 })
      try {
        await client.bind(adminDn, adminPassword)
        await client.add(dn, attributes)
      } finally {
        client.unbind().catch(() => undefined)
      }
    },
    catch: (e) => new AdminError({ message: `ldap add ${dn}: ${messageOf(e)}` })
  })
