import { createHmac, randomBytes } from "node:crypto"
import { Redacted } from "effect"
import type { Credentials } from "../Identity.ts"

/** A per-process random key: digests are useless outside this process. */
const key = randomBytes(32)
const cache = new WeakMap<Credentials, string>()

/** HMAC-SHA-256 of principal and secret, cached per credentials object. */
export const digestOf = (credentials: Credentials): string => {
  let digest = cache.get(credentials)
  if (digest === undefined) {
    const hmac = createHmac("sha256", key).update(credentials.principal).update("\u0000")
    if (credentials.secret !== undefined) hmac.update("s").update(Redacted.value(credentials.secret))
    digest = hmac.digest("base64url")
    cache.set(credentials, digest)
  }
  return digest
}
