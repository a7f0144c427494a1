/**
 * A throw-away test CA and the certificates it signs (EC P-256, valid 7
 * days), made with the `openssl` binary: a server certificate for
 * `localhost` / `127.0.0.1`, and client certificates `CN=<name>`.
 *
 * @internal
 */
import * as path from "node:path"
import type { Duration } from "effect"
import { Effect } from "effect"
import { run } from "./process.ts"
import * as TempDir from "./tempdir.ts"

/** Generates a CA and a server certificate for localhost / 127.0.0.1 (EC P-256, valid 7 days). */
export const makeCertificates = (openssl: string, dir: string, timeout: Duration.Input) =>
  Effect.gen(function*() {
    const file = (name: string) => path.join(dir, name)
    const curve = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    yield* run(openssl, [
      "req",
      "-x509",
      ...curve,
      "-keyout",
      file("ca.key"),
      "-out",
      file("ca.pem"),
      "-days",
      "7",
      "-subj",
      "/CN=Tether testkit CA",
      "-addext",
      "basicConstraints=critical,CA:TRUE",
      "-addext",
      "keyUsage=critical,keyCertSign,cRLSign"
    ], { what: "openssl (test CA)", timeout })
    yield* run(openssl, [
      "req",
      ...curve,
      "-keyout",
      file("server.key"),
      "-out",
      file("server.csr"),
      "-subj",
      "/CN=localhost"
    ], { what: "openssl (server key)", timeout })
    yield* TempDir.writeFile(
      file("server.ext"),
      "basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\n" +
        "extendedKeyUsage=serverAuth\nsubjectAltName=DNS:localhost,IP:127.0.0.1\n"
    )
    yield* run(openssl, [
      "x509",
      "-req",
      "-in",
      file("server.csr"),
      "-CA",
      file("ca.pem"),
      "-CAkey",
      file("ca.key"),
      "-set_serial",
      `0x${Date.now().toString(16)}`,
      "-days",
      "7",
      "-extfile",
      file("server.ext"),
      "-out",
      file("server.pem")
    ], { what: "openssl (server certificate)", timeout })
    const caCertPem = yield* TempDir.readFile(file("ca.pem"))
    return { ca: file("ca.pem"), cert: file("server.pem"), key: file("server.key"), caCertPem }
  })

/** A client certificate `CN=<name>` signed by the test CA (made by {@link makeCertificates}). */
export const makeClientCertificate = (openssl: string, dir: string, name: string, timeout: Duration.Input) =>
  Effect.gen(function*() {
    const file = (f: string) => path.join(dir, f)
    yield* run(openssl, [
      "req",
      "-newkey",
      "ec",
      "-pkeyopt",
      "ec_paramgen_curve:prime256v1",
      "-nodes",
      "-keyout",
      file("client.key"),
      "-out",
      file("client.csr"),
      "-subj",
      `/CN=${name}`
    ], { what: "openssl (client key)", timeout })
    yield* TempDir.writeFile(
      file("client.ext"),
      "basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=clientAuth\n"
    )
    yield* run(openssl, [
      "x509",
      "-req",
      "-in",
      file("client.csr"),
      "-CA",
      file("ca.pem"),
      "-CAkey",
      file("ca.key"),
      "-set_serial",
      `0x${(Date.now() + 1).toString(16)}`,
      "-days",
      "7",
      "-extfile",
      file("client.ext"),
      "-out",
      file("client.pem")
    ], { what: "openssl (client certificate)", timeout })
    return { certPem: yield* TempDir.readFile(file("client.pem")), keyPem: yield* TempDir.readFile(file("client.key")) }
  })
