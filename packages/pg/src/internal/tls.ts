/**
 * TLS of one PostgreSQL endpoint, following libpq: `sslmode` and
 * `sslrootcert` in the URL win over the endpoint's `tls` settings, which win
 * over the client's `ssl` / `ca` options. The result is the `ssl` option of
 * postgres.js and the URL to hand it (without the TLS parameters, which
 * postgres.js would otherwise send to the server as settings).
 *
 * @internal
 */
import * as fs from "node:fs"
import * as net from "node:net"
import * as tls from "node:tls"
import type { Endpoint } from "@tether/core"

/**
 * libpq's `sslmode` values.
 *
 * @internal
 */
export const SSL_MODES = ["disable", "allow", "prefer", "require", "verify-ca", "verify-full"] as const

/** @internal */
export type SslMode = (typeof SSL_MODES)[number]

/** URL parameters of libpq's that Tether does not implement: refused rather than silently ignored. */
const UNSUPPORTED = ["ssl", "sslcert", "sslkey", "sslpassword", "sslcrl", "sslcrldir", "sslnegotiation", "requiressl"]

/** @internal */
export interface ResolvedTls {
  /** The URL for postgres.js: no TLS parameters. */
  readonly url: string
  readonly mode: SslMode
  /** postgres.js's `ssl` option. */
  readonly ssl: false | "prefer" | tls.ConnectionOptions
  /** The name the certificate must carry (verify-full): the URL's host (an IP is checked against IP SANs) or `tls.servername`. */
  readonly verifiedName: string | undefined
  /** Why the server's certificate is not verified although TLS may be used (for a one-time WARN), if so. */
  readonly unverified: string | undefined
}

const isPem = (text: string) => text.includes("-----BEGIN")

const readCa = (value: string, field: string): { readonly ca: string } | { readonly problem: string } => {
  if (isPem(value)) return { ca: value }
  try {
    const text = fs.readFileSync(value, "utf8")
    if (!isPem(text)) return { problem: `${field}: ${JSON.stringify(value)} holds no PEM certificate` }
    return { ca: text }
  } catch (error) {
    const code = typeof error === "object" && error !== null && "code" in error ? String(error.code) : "unreadable"
    return { problem: `${field}: cannot read the CA file ${JSON.stringify(value)} (${code})` }
  }
}

const weak = (mode: SslMode) => mode === "allow" || mode === "prefer" || mode === "require"

/**
 * Works out the TLS settings of `endpoint`, or the problem with them (a
 * message naming the setting, never quoting a secret).
 *
 * @internal
 */
export const resolve = (
  endpoint: Endpoint.Endpoint,
  options: { readonly ssl?: SslMode | undefined; readonly ca?: string | undefined }
): ResolvedTls | { readonly problem: string } => {
  let url: URL
  try {
    url = new URL(endpoint.url)
  } catch {
    return { problem: "url: not a valid URL" }
  }
  const params = url.searchParams
  for (const name of UNSUPPORTED) {
    if (params.has(name)) {
      return {
        problem: `url: the parameter ${name} is not supported by Tether's PostgreSQL driver; ` +
          `use sslmode (and sslrootcert for the CA)`
      }
    }
  }
  const urlMode = params.get("sslmode")
  if (urlMode !== null && !(SSL_MODES as ReadonlyArray<string>).includes(urlMode)) {
    return {
      problem: `url: sslmode must be one of ${SSL_MODES.join(", ")} (got ${JSON.stringify(urlMode.slice(0, 40))})`
    }
  }
  const rootCert = params.get("sslrootcert")
  params.delete("sslmode")
  params.delete("sslrootcert")
  const cleanUrl = url.toString()

  let mode: SslMode = (urlMode as SslMode | null) ??
    options.ssl ??
    (rootCert !== null || endpoint.tls !== undefined ? "verify-full" : "disable")
  if (rootCert === "system" && weak(mode)) {
    // libpq refuses this combination too: the system's CAs vouch for any name they signed.
    return { problem: `url: sslrootcert=system needs sslmode=verify-full (got sslmode=${mode})` }
  }

  let ca: string | undefined
  const source = rootCert !== null && rootCert !== "system"
    ? { value: rootCert, field: "url: sslrootcert" }
    : rootCert === null && endpoint.tls?.ca !== undefined
    ? { value: endpoint.tls.ca, field: "tls.ca" }
    : rootCert === null && options.ca !== undefined
    ? { value: options.ca, field: "ca" }
    : undefined
  if (source !== undefined && mode !== "disable") {
    const read = readCa(source.value, source.field)
    if ("problem" in read) return read
    ca = read.ca
  }
  // libpq: with a root certificate given, `require` verifies the chain (as verify-ca).
  if (mode === "require" && ca !== undefined) mode = "verify-ca"

  let unverified: string | undefined
  if (endpoint.tls?.rejectUnauthorized === false && mode !== "disable") {
    unverified = "tls.rejectUnauthorized is false"
    if (!weak(mode)) mode = "require"
  } else if (weak(mode)) {
    unverified = `sslmode=${mode}`
  }

  const host = url.hostname.startsWith("[") ? url.hostname.slice(1, -1) : url.hostname
  const expected = endpoint.tls?.servername ?? host
  switch (mode) {
    case "disable":
      return { url: cleanUrl, mode, ssl: false, verifiedName: undefined, unverified: undefined }
    case "allow":
    case "prefer":
      // postgres.js tries TLS first and falls back to plaintext, without verification (libpq's `allow` tries plaintext first).
      return { url: cleanUrl, mode, ssl: "prefer", verifiedName: undefined, unverified }
    case "require":
      return { url: cleanUrl, mode, ssl: { rejectUnauthorized: false }, verifiedName: undefined, unverified }
    case "verify-ca":
      return {
        url: cleanUrl,
        mode,
        ssl: {
          rejectUnauthorized: true,
          ...(ca === undefined ? {} : { ca }),
          ...(net.isIP(expected) === 0 ? { servername: expected } : {}),
          checkServerIdentity: () => undefined
        },
        verifiedName: undefined,
        unverified: undefined
      }
    case "verify-full":
      return {
        url: cleanUrl,
        mode,
        ssl: {
          rejectUnauthorized: true,
          ...(ca === undefined ? {} : { ca }),
          // SNI takes host names only; the check below is what verifies the name (or the IP address).
          servername: net.isIP(expected) === 0 ? expected : undefined,
          checkServerIdentity: (_name: string, cert: tls.PeerCertificate) => tls.checkServerIdentity(expected, cert)
        },
        verifiedName: expected,
        unverified: undefined
      }
  }
}
