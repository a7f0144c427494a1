/**
 * LDAP helpers for the slapd fixture: readiness probes (ldapts), password hashes, LDIF.
 *
 * @internal
 */
import * as crypto from "node:crypto"
import type * as tls from "node:tls"
import { Effect } from "effect"
import { Client } from "ldapts"

/** Connects, binds and unbinds; fails with whatever ldapts threw. */
export const bind = (
  url: string,
  dn: string,
  password: string,
  tlsOptions?: tls.ConnectionOptions
): Effect.Effect<void, unknown> =>
  Effect.acquireUseRelease(
    Effect.sync(() =>
      new Client({ url, connectTimeout: 1000, timeout: 2000, ...(tlsOptions === undefined ? {} : { tlsOptions }) })
    ),
    (client) => Effect.tryPromise({ try: () => client.bind(dn, password), catch: (e) => e }),
    (client) => Effect.promise(() => client.unbind().catch(() => undefined))
  )

/** An RFC 2307 `{SSHA}` hash (salted SHA-1), as slapd stores userPassword and rootpw. */
export const ssha = (password: string): string => {
  const salt = crypto.randomBytes(8)
  const digest = crypto.createHash("sha1").update(password, "utf8").update(salt).digest()
  return `{SSHA}${Buffer.concat([digest, salt]).toString("base64")}`
}

/** One LDIF attribute line; values that are not plain ASCII are base64-encoded. */
const line = (name: string, value: string): string =>
  /^[\x21-\x39\x3b\x3d-\x7e][\x20-\x7e]*$/.test(value) && !value.endsWith(" ")
    ? `${name}: ${value}`
    : `${name}:: ${Buffer.from(value, "utf8").toString("base64")}`

/** An LDIF record from a DN and attributes. */
export const record = (dn: string, attributes: ReadonlyArray<readonly [string, string]>): string =>
  [line("dn", dn), ...attributes.map(([name, value]) => line(name, value))].join("\n") + "\n"

/** A change sequence number as slapd writes them: `YYYYmmddHHMMSS.uuuuuuZ#000000#SID#000000`. */
export const csn = (date: Date, sid = 0): string => {
  const iso = date.toISOString() // 2024-01-02T03:04:05.678Z
  const stamp = iso.slice(0, 19).replace(/[-T:]/g, "")
  const micros = `${iso.slice(20, 23)}000`
  return `${stamp}.${micros}Z#000000#${sid.toString(16).padStart(3, "0")}#000000`
}
