/**
 * The errors the Promise API adds to those of the Effect clients. A failed
 * call rejects with the Effect client's own typed error — an `Error`
 * subclass with its `_tag`, fields and message (`PgQueryError`,
 * `LdapInvalidCredentials`, `NoEndpointAvailable`…) — or with one of these.
 *
 * @example
 * ```ts
 * import { createPgClient, PromiseError } from "@tether/promise"
 *
 * const db = await createPgClient({ endpoints: ["postgres://127.0.0.1:5432/app"], user: "app" })
 * try {
 *   await db.read({ signal: AbortSignal.timeout(100) })`select pg_sleep(10)`
 * } catch (error) {
 *   if (error instanceof PromiseError.Aborted) console.warn("gave up")
 *   else if (PromiseError.tagOf(error) === "PgQueryError") console.warn("bad query")
 *   else throw error
 * }
 * await db.close()
 * ```
 *
 * @since 0.1.0
 */
import { Data } from "effect"

/**
 * The call's `AbortSignal` fired: the operation was interrupted (a statement
 * in flight is cancelled, a transaction rolled back, a stream's connection
 * released). `reason` is the signal's reason.
 *
 * @since 0.1.0
 * @category errors
 */
export class Aborted extends Data.TaggedError("Aborted")<{ readonly reason: unknown }> {
  override get message(): string {
    return `The operation was aborted (${this.reason instanceof Error ? this.reason.message : String(this.reason)}).`
  }
  override get name(): string {
    return "AbortError"
  }
}

/**
 * The client was closed (before or during the call). Create a new client to
 * go on.
 *
 * @since 0.1.0
 * @category errors
 */
export class ClientClosed extends Data.TaggedError("ClientClosed")<{ readonly client: string }> {
  override get message(): string {
    return `The ${this.client} client is closed; create a new one with create…Client().`
  }
}

/**
 * An operation was interrupted by something other than its signal or
 * `close()` (for example the runtime shutting down).
 *
 * @since 0.1.0
 * @category errors
 */
export class Interrupted extends Data.TaggedError("Interrupted")<{ readonly client: string }> {
  override get message(): string {
    return `An operation of the ${this.client} client was interrupted.`
  }
}

/**
 * The `_tag` of a Tether error (`"PgQueryError"`, `"Aborted"`…), or
 * `undefined` for anything else.
 *
 * @since 0.1.0
 * @category utils
 */
export const tagOf = (error: unknown): string | undefined =>
  typeof error === "object" && error !== null && "_tag" in error && typeof error._tag === "string"
    ? error._tag
    : undefined
