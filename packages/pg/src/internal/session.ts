/**
 * What both drivers (`PgDriver` and `PgSql`'s) do before opening a
 * postgres.js session: the role and secret (the identity's or the default),
 * the timeouts, the endpoint's TLS settings (resolved once per endpoint), and
 * the postgres.js options every Tether session shares.
 *
 * @internal
 */
import type { Endpoint, Identity } from "@tether/core"
import { Validation } from "@tether/core"
import { Redacted } from "effect"
import type postgres from "postgres"
import type * as PgDriver from "../PgDriver.ts"
import { PgTlsError } from "../PgError.ts"
import * as Tls from "./tls.ts"

/** The connection settings both drivers read. */
export type SessionOptions = Pick<
  PgDriver.Options,
  "user" | "password" | "database" | "ssl" | "ca" | "connectTimeout" | "statementTimeout" | "applicationName" | "readOnlySessions"
>

const resolved = new WeakMap<Endpoint.Endpoint, Map<string, Tls.ResolvedTls | { readonly problem: string }>>()

/** The TLS settings of an endpoint, or what is wrong with them; files are read once per endpoint. */
export const tlsOf = (
  options: Pick<SessionOptions, "ssl" | "ca">,
  endpoint: Endpoint.Endpoint
): Tls.ResolvedTls | { readonly problem: string } => {
  let byOptions = resolved.get(endpoint)
  if (byOptions === undefined) resolved.set(endpoint, byOptions = new Map())
  const key = `${options.ssl ?? ""}\u0000${options.ca ?? ""}`
  let result = byOptions.get(key)
  if (result === undefined) byOptions.set(key, result = Tls.resolve(endpoint, options))
  return result
}

const millis = Validation.millis

/** A session about to be opened. */
export interface Setup {
  readonly user: string
  /** For errors: the endpoint's URL (no credentials) and the role. */
  readonly context: { readonly endpoint: string; readonly user: string }
  readonly connectMillis: number
  /** The URL postgres.js connects to (TLS parameters resolved). */
  readonly url: string
  /** postgres.js options shared by every Tether session; each driver adds its own. */
  readonly base: postgres.Options<Record<string, postgres.PostgresType>>
}

/** The setup of a session to `endpoint` as `identity` (or the default role), or why TLS cannot work. */
export const setup = (
  options: SessionOptions,
  endpoint: Endpoint.Endpoint,
  identity: Identity.Credentials | undefined
): Setup | PgTlsError => {
  const user = identity?.principal ?? options.user
  const secret = identity === undefined ? options.password : identity.secret
  const connectMillis = millis(options.connectTimeout, 5_000)
  const statementMillis = options.statementTimeout === undefined ? undefined : millis(options.statementTimeout, 0)
  const context = { endpoint: endpoint.url, user }
  const tls = tlsOf(options, endpoint)
  if ("problem" in tls) {
    return new PgTlsError({ endpoint: context.endpoint, code: "INVALID_TLS_SETTINGS", reason: tls.problem })
  }
  return {
    user,
    context,
    connectMillis,
    url: tls.url,
    base: {
      username: user,
      ...(secret === undefined ? {} : { password: Redacted.value(secret) }),
      ...(options.database === undefined ? {} : { database: options.database }),
      idle_timeout: 0,
      max_lifetime: null,
      connect_timeout: Math.max(1, Math.ceil(connectMillis / 1000)),
      fetch_types: false,
      onnotice: () => undefined,
      ssl: tls.ssl as boolean | object | "prefer",
      connection: {
        application_name: options.applicationName ?? "tether",
        ...(options.readOnlySessions === true ? { default_transaction_read_only: true } : {}),
        ...(statementMillis === undefined ? {} : { statement_timeout: statementMillis })
      }
    } as postgres.Options<Record<string, postgres.PostgresType>>
  }
}
