/**
 * Safe LDAP search filters (RFC 4515): values from users are escaped, so
 * they cannot add filter syntax.
 *
 * @example
 * ```ts
 * import { Filter } from "@tether/ldap"
 *
 * const input = "*)(uid=*"                      // hostile
 * Filter.filter`(&(objectClass=person)(uid=${input}))`
 * // "(&(objectClass=person)(uid=\2a\29\28uid=\2a))": one equality test on a strange uid
 * ```
 *
 * @since 0.1.0
 */

const SPECIAL = /[\\*()]/g
const codes: Record<string, string> = { "\\": "\\5c", "*": "\\2a", "(": "\\28", ")": "\\29" }

/**
 * Escapes a value for use inside a filter (`\`, `*`, `(`, `)` and NUL become
 * `\5c`, `\2a`, `\28`, `\29`, `\00`).
 *
 * @since 0.1.0
 * @category escaping
 */
export const escape = (value: string | number | boolean): string =>
  String(value).replace(SPECIAL, (c) => codes[c]!).replaceAll("\u0000", "\\00")

/**
 * A tagged template that escapes every interpolated value.
 *
 * @since 0.1.0
 * @category constructors
 */
export const filter = (strings: TemplateStringsArray, ...values: ReadonlyArray<string | number | boolean>): string =>
  strings.reduce((acc, part, i) => (i === 0 ? part : acc + escape(values[i - 1]!) + part), "")

/**
 * `(attribute=value)` with the value escaped.
 *
 * @since 0.1.0
 * @category constructors
 */
export const equals = (attribute: string, value: string | number | boolean): string => `(${attribute}=${escape(value)})`

/**
 * `(&…)` of the given filters.
 *
 * @since 0.1.0
 * @category constructors
 */
export const and = (...filters: ReadonlyArray<string>): string => `(&${filters.join("")})`

/**
 * `(|…)` of the given filters.
 *
 * @since 0.1.0
 * @category constructors
 */
export const or = (...filters: ReadonlyArray<string>): string => `(|${filters.join("")})`
