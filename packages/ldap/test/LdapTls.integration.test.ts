/**
 * TLS on real slapd (the fixture's generated CA; its server certificate is
 * for DNS:localhost and IP:127.0.0.1): the certificate is checked against the
 * host of the URL — its IP address for an address, its name otherwise — for
 * ldaps:// and StartTLS alike.
 */
import { describe, expect, layer } from "@effect/vitest"
import { FaultProxy, Slapd } from "@tether/testkit"
import { Effect, Logger, Redacted } from "effect"
import * as dns from "node:dns/promises"
import * as os from "node:os"
import { LdapClient } from "../src/index.ts"

/** A host name (not `localhost`) that resolves to 127.0.0.1 here, or `undefined`. */
const otherLoopbackName = Effect.promise(async () => {
  const name = os.hostname()
  if (name === "localhost") return undefined
  try {
    const { address } = await dns.lookup(name, { family: 4 })
    return address === "127.0.0.1" ? name : undefined
  } catch {
    return undefined
  }
})

layer(Slapd.layer({ servers: 1, tls: true, users: 1 }), { excludeTestServices: true })("LDAP TLS on real slapd", (it) => {
  const clientOf = (directory: Slapd.Directory, url: string, options?: Partial<LdapClient.Options>) =>
    LdapClient.make({
      endpoints: [url],
      bindDn: directory.adminDn,
      password: Redacted.make(directory.adminPassword),
      tls: { ca: [directory.caCertPem!] },
      health: false,
      retry: false,
      breaker: false,
      connectTimeout: "2 seconds",
      ...options
    })
  const works = (directory: Slapd.Directory, url: string, options?: Partial<LdapClient.Options>) =>
    Effect.gen(function*() {
      const ldap = yield* clientOf(directory, url, options)
      expect(yield* ldap.whoami).toBe(`dn:${directory.adminDn}`)
    }).pipe(Effect.scoped)
  const refused = (directory: Slapd.Directory, url: string, options?: Partial<LdapClient.Options>) =>
    Effect.gen(function*() {
      const ldap = yield* clientOf(directory, url, options)
      const error = yield* Effect.flip(ldap.whoami)
      expect(error._tag).toBe("LdapConnectionError")
      expect(error.message).toMatch(/does not match|altname|certificate/i)
      expect(error.message).not.toContain(directory.adminPassword)
    }).pipe(Effect.scoped)

  describe("the certificate is checked against the URL's host", () => {
    it.effect("a certificate for the address or name in the URL is accepted (ldaps and StartTLS)", () =>
      Effect.gen(function*() {
        const directory = yield* Slapd.Slapd
        const server = directory.server
        yield* works(directory, `ldaps://127.0.0.1:${server.ldapsPort}`)
        yield* works(directory, `ldaps://localhost:${server.ldapsPort}`)
        yield* works(directory, `ldap://127.0.0.1:${server.port}`, { startTls: true })
        yield* works(directory, `ldap://localhost:${server.port}`, { startTls: true })
      }))

    it.effect("an IP-address URL the certificate does not name is refused (ldaps and StartTLS), though the certificate names localhost", () =>
      Effect.gen(function*() {
        const directory = yield* Slapd.Slapd
        const server = directory.server
        // 127.0.0.2 reaches the same server; the certificate names localhost and 127.0.0.1 only.
        const plain = yield* FaultProxy.make({ target: { host: server.host, port: server.port }, listenHost: "127.0.0.2" })
        const secure = yield* FaultProxy.make({ target: { host: server.host, port: server.ldapsPort! }, listenHost: "127.0.0.2" })
        yield* refused(directory, secure.url("ldaps"))
        yield* refused(directory, plain.url("ldap"), { startTls: true })
        // An explicit servername names what to check instead.
        yield* works(directory, plain.url("ldap"), { startTls: true, tls: { ca: [directory.caCertPem!], servername: "localhost" } })
      }).pipe(Effect.scoped))

    it.effect("a host-name URL the certificate does not name is refused (ldaps and StartTLS)", () =>
      Effect.gen(function*() {
        const directory = yield* Slapd.Slapd
        const server = directory.server
        const name = yield* otherLoopbackName
        // Needs a second name for 127.0.0.1 (this machine's host name usually is one).
        if (name === undefined) return yield* Effect.logWarning("no second loopback name: host-name case not run")
        yield* refused(directory, `ldaps://${name}:${server.ldapsPort}`)
        yield* refused(directory, `ldap://${name}:${server.port}`, { startTls: true })
      }))
  })

  describe("endpoint TLS settings", () => {
    it.effect("an endpoint's tls.ca may be a file path", () =>
      Effect.gen(function*() {
        const directory = yield* Slapd.Slapd
        const ldap = yield* LdapClient.make({
          endpoints: [{ url: directory.server.ldapsUrl!, tls: { ca: directory.caCertPath! } }],
          bindDn: directory.adminDn,
          password: Redacted.make(directory.adminPassword),
          health: false,
          retry: false
        })
        expect(yield* ldap.whoami).toBe(`dn:${directory.adminDn}`)
        const missing = yield* LdapClient.make({
          endpoints: [{ url: directory.server.ldapsUrl!, tls: { ca: "/nonexistent/ca.pem" } }],
          health: false,
          retry: false
        })
        const error = yield* Effect.flip(missing.whoami)
        expect(error.message).toContain("tls.ca")
      }).pipe(Effect.scoped))

    it.effect("verification turned off on an endpoint, and passwords over plain ldap://, are logged once at WARN", () =>
      Effect.gen(function*() {
        const directory = yield* Slapd.Slapd
        const warnings: Array<string> = []
        const logger = Logger.make<unknown, void>((o) => {
          if (o.logLevel === "Warn") warnings.push(String(o.message))
        })
        const run = (options: LdapClient.Options) =>
          Effect.gen(function*() {
            const ldap = yield* LdapClient.make(options)
            // Several connections: the warning is once per endpoint, not per connection.
            yield* Effect.forEach(Array.from({ length: 6 }), () => ldap.whoami, { concurrency: 6, discard: true })
          }).pipe(Effect.scoped, Effect.provide(Logger.layer([logger])))
        const base = {
          bindDn: directory.adminDn,
          password: Redacted.make(directory.adminPassword),
          health: false,
          retry: false
        } as const
        yield* run({ ...base, endpoints: [{ url: directory.server.ldapsUrl!, tls: { rejectUnauthorized: false } }] })
        expect(warnings.filter((w) => /verification is OFF/.test(w))).toHaveLength(1)
        warnings.length = 0
        yield* run({ ...base, endpoints: [directory.server.ldapsUrl!], tls: { rejectUnauthorized: false } })
        expect(warnings.filter((w) => /verification is OFF/.test(w))).toHaveLength(1)
        warnings.length = 0
        yield* run({ ...base, endpoints: [directory.server.url] })
        expect(warnings.filter((w) => /clear text/.test(w))).toHaveLength(1)
        warnings.length = 0
        yield* run({ ...base, endpoints: [directory.server.url], allowPlaintext: true })
        yield* run({ ...base, endpoints: [directory.server.url], startTls: true, tls: { ca: [directory.caCertPem!] } })
        expect(warnings).toEqual([])
      }))
  })
})
