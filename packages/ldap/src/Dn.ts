/**
 * Safe distinguished names (RFC 4514): attribute values from users are
 * escaped, so they cannot add RDNs or change the DN's structure.
 *
 * @example
 * ```ts
 * import { Dn } from "@tether/ldap"
 *
 * Dn.make([["uid", "smith, john"], ["ou", "people"]], "dc=example,dc=com")
 * // "uid=smith\, john,ou=people,dc=example,dc=com"
 * ```
 *
 * @since 0.1.0
 */

/**
 * Escapes an attribute value for a DN: `,` `+` `"` `\` `<` `>` `;` `=` are
 * backslash-escaped, as are a leading `#` or space and a trailing space; NUL
 * becomes `\00`.
 *
 * @since 0.1.0
 * @category escaping
 */
export const escape = (value: string): string => {
  let out = value.replace(/[,+"\\<>;=]/g, (c) => `\\${c}`).replaceAll("\u0000", "\\00")
  if (out.startsWith("#") || out.startsWith(" ")) out = `\\${out}`
  if (value.length > 1 && value.endsWith(" ")) out = `${out.slice(0, -1)}\\ `
  return out
}

/**
 * One RDN: `type=value` with the value escaped.
 *
 * @since 0.1.0
 * @category constructors
 */
export const rdn = (type: string, value: string): string => `${type}=${escape(value)}`

/**
 * A DN from RDNs (most specific first) under a base DN (taken as is: it comes
 * from configuration, not from users).
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (rdns: ReadonlyArray<readonly [type: string, value: string]>, base?: string): string =>
  [...rdns.map(([type, value]) => rdn(type, value)), ...(base === undefined || base === "" ? [] : [base])].join(",")
