/**
 * TLS against a real PostgreSQL with certificates from a throw-away CA: `verify-full`
 * checks the name in the URL (an IP address against the certificate's IP SANs, never
 * "localhost"), `sslmode` / `sslrootcert` in a URL are honoured (never a silent plaintext
 * connection), an endpoint's `tls.ca` may be a file path, an unknown sslmode is a typed
 * error, and a mode that does not verify is logged once at WARN.
 */
import { execFileSync } from "node:child_process"
import * as fs from "node:fs"
import * as path from "node:path"
import { expect, layer } from "@effect/vitest"
import type { Endpoint } from "@tether/core"
import { PostgresCluster } from "@tether/testkit"
import { Effect, Logger } from "effect"
import postgres from "postgres"
import { PgClient } from "../src/index.ts"

type CertName = "localhost-only" | "ip" | "other"

const SANS: Record<CertName, string> = {
  "localhost-only": "DNS:localhost",
  ip: "DNS:localhost,IP:127.0.0.1",
  other: "DNS:other.example,IP:10.9.9.9"
}

/** A CA and three server certificates (EC P-256) in `dir`, owned like `dir` (the postgres user). */
const makeCertificates = (dir: string) => {
  const file = (name: string) => path.join(dir, name)
  const openssl = (args: ReadonlyArray<string>) => execFileSync("openssl", args, { stdio: "pipe" })
  const curve = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
  openssl(["req", "-x509", ...curve, "-keyout", file("ca.key"), "-out", file("ca.pem"), "-days", "2", "-subj", "/CN=Tether test CA",
    "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign"])
  for (const [name, san] of Object.entries(SANS)) {
    openssl(["req", ...curve, "-keyout", file(`${name}.key`), "-out", file(`${name}.csr`), "-subj", `/CN=${name}`])
    fs.writeFileSync(
      file(`${name}.ext`),
      `basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\n` +
        `extendedKeyUsage=serverAuth\nsubjectAltName=${san}\n`
    )
    openssl(["x509", "-req", "-in", file(`${name}.csr`), "-CA", file("ca.pem"), "-CAkey", file("ca.key"),
      "-set_serial", `0x${(Date.now() + name.length).toString(16)}`, "-days", "2", "-extfile", file(`${name}.ext`),
      "-out", file(`${name}.pem`)])
  }
  const { uid, gid } = fs.statSync(dir)
  for (const f of fs.readdirSync(dir)) {
    fs.chownSync(file(f), uid, gid)
    fs.chmodSync(file(f), 0o600)
  }
  // The client reads the CA as root; a copy outside the data dir, readable.
  const caCopy = path.join(path.dirname(dir), "client-ca.pem")
  fs.copyFileSync(file("ca.pem"), caCopy)
  return { ca: caCopy, caPem: fs.readFileSync(caCopy, "utf8") }
}

/** Makes the server present `cert` to new connections. */
const serve = (node: PostgresCluster.Node, dir: string, cert: CertName) =>
  Effect.promise(async () => {
    const sql = postgres(node.url, { max: 1, onnotice: () => undefined })
    try {
      await sql.unsafe(`alter system set ssl_cert_file = '${path.join(dir, `${cert}.pem`)}'`)
      await sql.unsafe(`alter system set ssl_key_file = '${path.join(dir, `${cert}.key`)}'`)
      await sql.unsafe(`alter system set ssl = on`)
      await sql.unsafe(`select pg_reload_conf()`)
    } finally {
      await sql.end({ timeout: 1 })
    }
  }).pipe(Effect.andThen(Effect.sleep("300 millis")))

/** Connects once through `PgClient` and says whether the session is encrypted. */
const sslOf = (endpoint: Endpoint.EndpointInput | string, options?: Partial<PgClient.Options>) =>
  Effect.gen(function*() {
    const db = yield* PgClient.make({
      endpoints: [endpoint],
      user: "postgres",
      health: false,
      breaker: false,
      retry: false,
      connectTimeout: "3 seconds",
      ...options
    })
    const [row] = yield* db.write<{ ssl: boolean }>`select ssl from pg_stat_ssl where pid = pg_backend_pid()`
    return row!.ssl
  }).pipe(Effect.scoped)

layer(PostgresCluster.layer({ replicas: 0 }), { excludeTestServices: true })("PostgreSQL TLS", (it) => {
  const setup = Effect.gen(function*() {
    const cluster = yield* PostgresCluster.PostgresCluster
    const node = cluster.primary
    const dir = path.join(node.dataDir, "tls")
    if (!fs.existsSync(dir)) {
      fs.mkdirSync(dir)
      const { uid, gid } = fs.statSync(node.dataDir)
      fs.chownSync(dir, uid, gid)
    }
    const certs = fs.existsSync(path.join(path.dirname(dir), "client-ca.pem"))
      ? { ca: path.join(path.dirname(dir), "client-ca.pem"), caPem: fs.readFileSync(path.join(path.dirname(dir), "client-ca.pem"), "utf8") }
      : makeCertificates(dir)
    const ipUrl = `postgres://127.0.0.1:${node.port}/postgres`
    const hostUrl = `postgres://localhost:${node.port}/postgres`
    return { node, dir, ...certs, ipUrl, hostUrl }
  })

  it.effect("verify-full to an IP-address URL checks the IP, not \"localhost\"; to a host name, the name", () =>
    Effect.gen(function*() {
      const { node, dir, ca, caPem, ipUrl, hostUrl } = yield* setup
      const verify = `?sslmode=verify-full&sslrootcert=${encodeURIComponent(ca)}`
      // A certificate for localhost only: good for the host name, refused for 127.0.0.1.
      yield* serve(node, dir, "localhost-only")
      expect(yield* sslOf(`${hostUrl}${verify}`)).toBe(true)
      const refusedIp = yield* Effect.flip(sslOf(`${ipUrl}${verify}`))
      expect(refusedIp._tag).toBe("PgTlsError")
      expect(refusedIp.message).toContain("ERR_TLS_CERT_ALTNAME_INVALID")
      // The same through the client-wide options.
      const refusedOptions = yield* Effect.flip(sslOf(ipUrl, { ssl: "verify-full", ca: caPem }))
      expect(refusedOptions._tag).toBe("PgTlsError")
      // A certificate for another name: refused for both.
      yield* serve(node, dir, "other")
      expect((yield* Effect.flip(sslOf(`${hostUrl}${verify}`)))._tag).toBe("PgTlsError")
      expect((yield* Effect.flip(sslOf(`${ipUrl}${verify}`)))._tag).toBe("PgTlsError")
      // ... unless the endpoint says which name to expect.
      expect(yield* sslOf({ url: `${ipUrl}?sslmode=verify-full`, tls: { ca, servername: "other.example" } })).toBe(true)
      // A certificate with the IP in its SANs: accepted for the IP URL.
      yield* serve(node, dir, "ip")
      expect(yield* sslOf(`${ipUrl}${verify}`)).toBe(true)
      expect(yield* sslOf(ipUrl, { ssl: "verify-full", ca: caPem })).toBe(true)
    }))

  it.effect("sslmode in a URL is honoured: verify-full never falls back to plaintext; verify-ca checks the chain only", () =>
    Effect.gen(function*() {
      const { node, dir, ca, ipUrl } = yield* setup
      yield* serve(node, dir, "other")
      // No CA given: the system's CAs do not know the test CA, so the connection is refused (not made in plaintext).
      const refused = yield* Effect.flip(sslOf(`${ipUrl}?sslmode=verify-full`))
      expect(refused._tag).toBe("PgTlsError")
      // verify-ca: the chain is checked, the name is not.
      expect(yield* sslOf(`${ipUrl}?sslmode=verify-ca&sslrootcert=${encodeURIComponent(ca)}`)).toBe(true)
      expect((yield* Effect.flip(sslOf(`${ipUrl}?sslmode=verify-ca`)))._tag).toBe("PgTlsError")
      // require: encrypted, not verified; with a CA given it verifies the chain (as verify-ca), as libpq does.
      expect(yield* sslOf(`${ipUrl}?sslmode=require`)).toBe(true)
      expect(yield* sslOf(`${ipUrl}?sslmode=require&sslrootcert=${encodeURIComponent(ca)}`)).toBe(true)
      // disable: plaintext.
      expect(yield* sslOf(`${ipUrl}?sslmode=disable`)).toBe(false)
    }))

  it.effect("an endpoint's tls.ca may be a file path (or PEM text); endpoints with tls default to verify-full", () =>
    Effect.gen(function*() {
      const { node, dir, ca, caPem, ipUrl } = yield* setup
      yield* serve(node, dir, "ip")
      expect(yield* sslOf({ url: ipUrl, tls: { ca } })).toBe(true)
      expect(yield* sslOf({ url: ipUrl, tls: { ca: caPem } })).toBe(true)
      yield* serve(node, dir, "localhost-only")
      expect((yield* Effect.flip(sslOf({ url: ipUrl, tls: { ca } })))._tag).toBe("PgTlsError")
      const missing = yield* Effect.flip(sslOf({ url: ipUrl, tls: { ca: "/nonexistent/ca.pem" } }))
      expect(missing._tag).toBe("InvalidEndpoint")
      expect(missing.message).toContain("tls.ca")
    }))

  it.effect("an unknown sslmode is a typed error; a mode that does not verify is logged once at WARN", () =>
    Effect.gen(function*() {
      const { node, dir, ipUrl } = yield* setup
      const bad = yield* Effect.flip(sslOf(`${ipUrl}?sslmode=verify-everything`))
      expect(bad._tag).toBe("InvalidEndpoint")
      expect(bad.message).toContain("sslmode must be one of disable, allow, prefer, require, verify-ca, verify-full")
      const unsupported = yield* Effect.flip(sslOf(`${ipUrl}?sslmode=require&sslpassword=hunter2`))
      expect(unsupported._tag).toBe("InvalidEndpoint")
      expect(unsupported.message).not.toContain("hunter2")

      yield* serve(node, dir, "other")
      const lines: Array<string> = []
      const logger = Logger.make<unknown, void>((options) => {
        lines.push(`${options.logLevel} ${String(options.message)}`)
      })
      yield* Effect.gen(function*() {
        const db = yield* PgClient.make({
          endpoints: [`${ipUrl}?sslmode=require`, { url: `postgres://127.0.0.1:${node.port}/template1`, tls: { rejectUnauthorized: false } }],
          user: "postgres",
          health: { interval: "50 millis" },
          pool: { max: 2 }
        })
        for (let i = 0; i < 20; i++) yield* db.write`select 1`
        yield* Effect.sleep("300 millis")
      }).pipe(Effect.scoped, Effect.provide(Logger.layer([logger])))
      const warnings = lines.filter((l) => l.includes("TLS certificate is not verified"))
      expect(warnings).toHaveLength(2)
      expect(warnings.every((w) => w.startsWith("Warn"))).toBe(true)
      expect(warnings.some((w) => w.includes("sslmode=require"))).toBe(true)
      expect(warnings.some((w) => w.includes("tls.rejectUnauthorized is false"))).toBe(true)
    }))
})
