/**
 * The client side of SCRAM (RFC 5802, RFC 7677): messages and proofs, no
 * I/O. Passwords are used as UTF-8 after NFKC normalisation (SASLprep's
 * mapping for the common case; prohibited characters are not checked).
 *
 * @internal
 */
import * as crypto from "node:crypto"

export type Hash = "sha1" | "sha256"

/** RFC 5802 saslname: `=` and `,` escaped. */
const saslName = (s: string) => s.replace(/=/g, "=3D").replace(/,/g, "=2C")

export interface Start {
  readonly gs2Header: string
  readonly clientFirstBare: string
  readonly clientFirst: string
  readonly nonce: string
}

export const start = (user: string, authzId: string | undefined, nonce = crypto.randomBytes(18).toString("base64")): Start => {
  const gs2Header = `n,${authzId === undefined ? "" : `a=${saslName(authzId)}`},`
  const clientFirstBare = `n=${saslName(user)},r=${nonce}`
  return { gs2Header, clientFirstBare, clientFirst: gs2Header + clientFirstBare, nonce }
}

const fields = (message: string): ReadonlyMap<string, string> =>
  new Map(message.split(",").map((part) => [part.slice(0, 1), part.slice(2)] as const))

export interface Final {
  readonly clientFinal: string
  /** The server-final message the server must send (`v=…`). */
  readonly expectedServerFinal: string
}

/** The client-final message for a server-first message, or why the server-first message is refused. */
export const finish = (hash: Hash, first: Start, serverFirst: string, password: string): Final | { readonly refused: string } => {
  const f = fields(serverFirst)
  const nonce = f.get("r")
  const salt = f.get("s")
  const iterations = Number(f.get("i"))
  if (f.has("e")) return { refused: `the server refused: ${f.get("e")}` }
  if (nonce === undefined || !nonce.startsWith(first.nonce) || nonce.length <= first.nonce.length) {
    return { refused: "the server's nonce does not extend the client's" }
  }
  if (salt === undefined || !Number.isSafeInteger(iterations) || iterations < 1) {
    return { refused: "the server-first message lacks a salt or an iteration count" }
  }
  const size = hash === "sha1" ? 20 : 32
  const salted = crypto.pbkdf2Sync(Buffer.from(password.normalize("NFKC"), "utf8"), Buffer.from(salt, "base64"), iterations, size, hash)
  const hmac = (key: Uint8Array, text: string) => crypto.createHmac(hash, key).update(text, "utf8").digest()
  const clientKey = hmac(salted, "Client Key")
  const storedKey = crypto.createHash(hash).update(clientKey).digest()
  const withoutProof = `c=${Buffer.from(first.gs2Header, "utf8").toString("base64")},r=${nonce}`
  const authMessage = `${first.clientFirstBare},${serverFirst},${withoutProof}`
  const signature = hmac(storedKey, authMessage)
  const proof = Buffer.alloc(size)
  for (let i = 0; i < size; i++) proof[i] = clientKey[i]! ^ signature[i]!
  const serverSignature = hmac(hmac(salted, "Server Key"), authMessage)
  return {
    clientFinal: `${withoutProof},p=${proof.toString("base64")}`,
    expectedServerFinal: `v=${serverSignature.toString("base64")}`
  }
}
