/**
 * Tether's typed errors as effect/sql's `SqlError`: the reason follows the
 * SQLSTATE, the Tether error (`PgQueryError`, `PgOutcomeUnknown`, `BreakerOpen`, …)
 * is the reason's `cause`, so `error.reason.cause._tag` still tells the whole story.
 */
import { SqlError } from "effect/sql/SqlError"
import * as SqlErrors from "effect/sql/SqlError"
import { isPgError } from "../PgError.ts"
import type { PgError } from "../PgError.ts"

const tagOf = (u: unknown): string | undefined =>
  typeof u === "object" && u !== null && "_tag" in u ? String((u as { _tag: unknown })._tag) : undefined

/** The SQLSTATE (or postgres.js / socket code) of an error, for `db.response.status_code`. */
export const statusCodeOf = (error: unknown): string | undefined => {
  const inner = tagOf(error) === "SqlError" ? (error as SqlError).reason.cause : error
  if (isPgError(inner)) {
    switch (inner._tag) {
      case "PgQueryError":
      case "PgAuthenticationError":
        return inner.code
      case "PgConnectionError":
        return inner.code
      default:
        return undefined
    }
  }
  return undefined
}

/** Maps a Tether error (`raw`: what postgres.js threw, for the constraint name) to a `SqlError`. */
export const toSqlError = (error: unknown, operation: string, raw?: unknown): SqlError => {
  if (tagOf(error) === "SqlError") return error as SqlError
  const props = { cause: error, message: messageOf(error), operation }
  if (!isPgError(error)) {
    // The set's own errors: no endpoint, breaker open, pool timeout or closed.
    return new SqlError({ reason: new SqlErrors.ConnectionError(props) })
  }
  const e = error as PgError
  switch (e._tag) {
    case "PgConnectionError":
    case "PgTimeout":
      return new SqlError({ reason: new SqlErrors.ConnectionError(props) })
    case "PgOutcomeUnknown":
      // Never "retryable": the write may have been applied.
      return new SqlError({ reason: new SqlErrors.UnknownError(props) })
    case "PgAuthenticationError":
      return new SqlError({ reason: new SqlErrors.AuthenticationError(props) })
    case "PgQueryError": {
      if (e.code === "23505") {
        const constraint = typeof raw === "object" && raw !== null && "constraint_name" in raw
          ? String((raw as { constraint_name: unknown }).constraint_name)
          : "unknown"
        return new SqlError({ reason: new SqlErrors.UniqueViolation({ ...props, constraint }) })
      }
      if (e.code === "42501") return new SqlError({ reason: new SqlErrors.AuthorizationError(props) })
      if (e.code === "55P03") return new SqlError({ reason: new SqlErrors.LockTimeoutError(props) })
      switch (e.kind) {
        case "syntax":
          return new SqlError({ reason: new SqlErrors.SqlSyntaxError(props) })
        case "constraint":
          return new SqlError({ reason: new SqlErrors.ConstraintError(props) })
        case "serialization":
          return new SqlError({ reason: new SqlErrors.SerializationError(props) })
        case "deadlock":
          return new SqlError({ reason: new SqlErrors.DeadlockError(props) })
        case "timeout":
          return new SqlError({ reason: new SqlErrors.StatementTimeoutError(props) })
        default:
          return new SqlError({ reason: new SqlErrors.UnknownError(props) })
      }
    }
    default:
      // TLS settings, refused certificates and anything else a session could not be opened for.
      return new SqlError({ reason: new SqlErrors.ConnectionError(props) })
  }
}

const messageOf = (error: unknown): string =>
  typeof error === "object" && error !== null && "message" in error
    ? String((error as { message: unknown }).message)
    : String(error)
