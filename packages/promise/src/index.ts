/**
 * @tether/promise — Tether's PostgreSQL and LDAP clients as Promises, for
 * applications that do not use Effect (plain JavaScript or TypeScript).
 * Built on the Effect clients through a `ManagedRuntime`: the same pooling,
 * failover and typed errors. Every call takes an `AbortSignal`; `close()`
 * interrupts what is in flight and closes every connection.
 *
 * @since 0.1.0
 */

/** PostgreSQL: `createPgClient`, `read`/`write` tagged templates, transactions, streams. */
export { createPgClient } from "./PgClient.ts"
export type {
  Executor as PgExecutor,
  Options as PgOptions,
  PromisePgClient,
  Query,
  Role,
  Row,
  StreamQuery,
  Transaction,
  TransactionOptions
} from "./PgClient.ts"

/** LDAP: `createLdapClient`, search as async iterators, bulk operations, LDIF import. */
export { createLdapClient } from "./LdapClient.ts"
export type {
  BindIdentity,
  BulkOptions,
  BulkReport,
  Progress,
  Entry,
  Operations as LdapOperations,
  Options as LdapOptions,
  PromiseLdapClient
} from "./LdapClient.ts"

/** The options every call takes (`signal`). */
export type { CallOptions } from "./internal/runner.ts"

/** The errors the Promise API adds: `Aborted`, `ClientClosed`, `Interrupted`, and `tagOf`. */
export * as PromiseError from "./PromiseError.ts"
