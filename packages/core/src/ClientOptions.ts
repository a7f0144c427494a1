/**
 * The options every client built on a {@link ServerSet} shares: where the
 * servers are, how to balance among them, and the set's pools, health
 * probes, breakers and retries, plus the client's name and connect timeout.
 * `LdapClient.Options` (@tether/ldap) and `PgClient.Options` / `PgSql.Options`
 * (@tether/pg) extend {@link ClientOptions} with their own options; each
 * client documents its own defaults where they differ from the set's.
 *
 * @example
 * ```ts
 * import type { ClientOptions } from "@tether/core"
 *
 * interface MyClientOptions extends ClientOptions.ClientOptions {
 *   readonly apiKey: string
 * }
 *
 * const options: MyClientOptions = {
 *   name: "billing",
 *   endpoints: ["https://a.example.com", "https://b.example.com"],
 *   strategy: "least-connections",
 *   pool: { min: 1, max: 10 },
 *   health: { interval: "2 seconds" },
 *   retry: false,
 *   apiKey: "…"
 * }
 * ```
 *
 * @since 0.3.0
 */
import type { Duration } from "effect"
import type * as ServerSet from "./ServerSet.ts"

/**
 * The set's options a client takes as they are: `endpoints`, `strategy`,
 * `pool`, `health`, `breaker` and `retry` (see `ServerSet.Options`; a
 * client's driver supplies the rest). No `hedge`: the clients do not hedge.
 *
 * @since 0.3.0
 * @category models
 */
export type SetOptions = Pick<
  ServerSet.Options<unknown, unknown>,
  "endpoints" | "strategy" | "pool" | "health" | "breaker" | "retry"
>

/**
 * Options of every `ServerSet`-backed client.
 *
 * @since 0.3.0
 * @category models
 */
export interface ClientOptions extends SetOptions {
  /** Names the client (its set) in logs, metrics and spans. Default: the client's, e.g. `ldap`, `pg`. */
  readonly name?: string | undefined
  /** Bound on opening (and logging in on) one connection. Default 5 seconds. */
  readonly connectTimeout?: Duration.Input | undefined
}
