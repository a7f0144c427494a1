/**
 * A typed builder of `modify` changes: each step says what it does to which
 * attribute, values are strings or bytes, `increment` takes an integer.
 *
 * @example
 * ```ts
 * import { Changes, LdapClient } from "@tether/ldap"
 * import { Effect } from "effect"
 *
 * const program = Effect.gen(function*() {
 *   const ldap = yield* LdapClient.LdapClient
 *   yield* ldap.modify("uid=ann,ou=people,dc=example,dc=com", Changes.make()
 *     .replace("mail", "ann@example.com")
 *     .add("description", "on call", "team lead")
 *     .delete("telephoneNumber")
 *     .increment("loginCount", 1)
 *     .build())
 * })
 * ```
 *
 * @since 0.3.0
 */
import type { Change } from "./LdapClient.ts"

/**
 * The builder: immutable, every step returns a new builder.
 *
 * @since 0.3.0
 * @category models
 */
export interface Builder {
  /** Adds values to the attribute. */
  readonly add: (attribute: string, ...values: ReadonlyArray<string | Uint8Array>) => Builder
  /** Replaces the attribute's values (no values: removes the attribute, if present). */
  readonly replace: (attribute: string, ...values: ReadonlyArray<string | Uint8Array>) => Builder
  /** Deletes these values (no values: the whole attribute). */
  readonly delete: (attribute: string, ...values: ReadonlyArray<string | Uint8Array>) => Builder
  /** Adds `by` to an integer attribute (RFC 4525); `by` must be a safe integer. */
  readonly increment: (attribute: string, by: number) => Builder
  /** The changes, in order. */
  readonly build: () => ReadonlyArray<Change>
}

const builder = (changes: ReadonlyArray<Change>): Builder => {
  const step = (operation: Change["operation"]) => (attribute: string, ...values: ReadonlyArray<string | Uint8Array>) =>
    builder([...changes, { operation, attribute, values }])
  return {
    add: step("add"),
    replace: step("replace"),
    delete: step("delete"),
    // A non-integer is sent as its text and refused by the server with a typed error: never a throw here.
    increment: (attribute, by) => builder([...changes, { operation: "increment", attribute, values: [String(by)] }]),
    build: () => changes
  }
}

/**
 * An empty builder.
 *
 * @since 0.3.0
 * @category constructors
 */
export const make = (): Builder => builder([])
