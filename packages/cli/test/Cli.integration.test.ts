import { describe, expect, layer } from "@effect/vitest"
import { PostgresCluster, Slapd } from "@tether/testkit"
import { Effect, Layer } from "effect"
import { spawn } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"

const bin = path.join(import.meta.dirname, "..", "bin", "tether.js")

interface Run {
  readonly code: number | null
  readonly stdout: string
  readonly stderr: string
}

/** Runs `command` with `args` as a subprocess (no shell); the secrets travel in `env`, never in argv. */
const exec = (command: string, args: ReadonlyArray<string>, env: Record<string, string> = {}) =>
  Effect.callback<Run>((resume) => {
    const child = spawn(command, args, { env: { ...process.env, ...env }, stdio: ["ignore", "pipe", "pipe"] })
    let stdout = ""
    let stderr = ""
    child.stdout.setEncoding("utf8").on("data", (c: string) => (stdout += c))
    child.stderr.setEncoding("utf8").on("data", (c: string) => (stderr += c))
    child.on("close", (code) => resume(Effect.succeed({ code, stdout, stderr })))
    return Effect.sync(() => child.kill("SIGKILL"))
  })

const tether = (args: ReadonlyArray<string>, env: Record<string, string> = {}) => exec(process.execPath, [bin, ...args], env)

const tmp = Effect.acquireRelease(
  Effect.sync(() => fs.mkdtempSync(path.join(os.tmpdir(), "tether-cli-"))),
  (dir) => Effect.sync(() => fs.rmSync(dir, { recursive: true, force: true }))
)

const Servers = Layer.mergeAll(
  Slapd.layer({ servers: 2, replication: false, users: 3 }),
  PostgresCluster.layer({ replicas: 1 })
)

layer(Servers, { excludeTestServices: true })("the tether CLI against real slapd and PostgreSQL", (it) => {
  describe("ldif", () => {
    it.effect("import with a bad record: exit code 1 and a report naming it; export round-trips through ldapadd", () =>
      Effect.gen(function*() {
        const ldap = yield* Slapd.Slapd
        const dir = yield* tmp
        const [first, second] = ldap.servers
        const ou = `ou=cli,${ldap.suffix}`
        const records = [`dn: ${ou}\nobjectClass: organizationalUnit\nou: cli\n`]
        for (let i = 1; i <= 30; i++) records.push(`dn: cn=dev${i},${ou}\nobjectClass: device\ncn: dev${i}\ndescription: device ${i}\n`)
        // A bad record: its parent does not exist.
        records.push(`dn: cn=orphan,ou=missing,${ldap.suffix}\nobjectClass: device\ncn: orphan\n`)
        const file = path.join(dir, "in.ldif")
        fs.writeFileSync(file, records.join("\n"))
        const env = { TETHER_LDAP_PASSWORD: ldap.adminPassword }

        const imported = yield* tether(
          ["ldif", "import", file, "--url", first!.url, "--bind-dn", ldap.adminDn, "--progress", "never"],
          env
        )
        expect(imported.stdout).toContain(`imported 31, skipped 0, failed 1 of 32 records from ${file}`)
        expect(imported.stdout).toContain(`FAILED cn=orphan,ou=missing,${ldap.suffix}`)
        expect(imported.code).toBe(1)
        // Plain progress lines (not a terminal), and never the password.
        expect(imported.stderr).toMatch(/^import: +\d+% +\d+\/32 entries +[\d.]+ entries\/s/m)
        expect(imported.stderr).not.toContain("\r")
        expect(imported.stdout + imported.stderr).not.toContain(ldap.adminPassword)

        // A clean import exits 0 (replace the existing entries).
        fs.writeFileSync(path.join(dir, "ok.ldif"), records.slice(1, 4).join("\n"))
        const passwordFile = path.join(dir, "password")
        fs.writeFileSync(passwordFile, `${ldap.adminPassword}\n`, { mode: 0o600 })
        const clean = yield* tether([
          "ldif", "import", path.join(dir, "ok.ldif"), "--url", first!.url, "--bind-dn", ldap.adminDn,
          "--password-file", passwordFile, "--on-exists", "replace", "--progress", "never"
        ])
        expect(clean.stdout).toContain("imported 3, skipped 0, failed 0 of 3 records")
        expect(clean.code).toBe(0)

        // Export, then load it into the other (empty) server with ldapadd.
        const out = path.join(dir, "out.ldif")
        const exported = yield* tether(
          ["ldif", "export", ou, "--url", first!.url, "--bind-dn", ldap.adminDn, "--out", out, "--progress", "never"],
          env
        )
        expect(exported.code).toBe(0)
        expect(exported.stdout).toContain(`exported 31 entries under ${ou} to ${out}`)
        const text = fs.readFileSync(out, "utf8")
        expect(text).toContain(`dn: cn=dev17,${ou}`)
        // ldapadd -y takes the file's bytes as they are: no trailing newline there.
        const rawPassword = path.join(dir, "password.raw")
        fs.writeFileSync(rawPassword, ldap.adminPassword, { mode: 0o600 })
        const added = yield* exec("ldapadd", ["-x", "-H", second!.url, "-D", ldap.adminDn, "-y", rawPassword, "-f", out])
        expect(added.stderr).toBe("")
        expect(added.code).toBe(0)
        const search = yield* exec("ldapsearch", [
          "-x", "-LLL", "-H", second!.url, "-D", ldap.adminDn, "-y", rawPassword, "-b", ou, "(objectClass=device)", "description"
        ])
        expect(search.code).toBe(0)
        expect(search.stdout.match(/^dn: /gm)?.length).toBe(30)
        expect(search.stdout).toContain("description: device 17")

        // The filter is honoured.
        const filtered = yield* tether(
          ["ldif", "export", ou, "--url", second!.url, "--bind-dn", ldap.adminDn, "--filter", "(cn=dev2*)"],
          env
        )
        expect(filtered.code).toBe(0)
        expect(filtered.stdout.match(/^dn: /gm)?.length).toBe(11) // dev2, dev20…dev29
      }).pipe(Effect.scoped), 600_000)

    it.effect("on a terminal (script(1) pseudo-terminal) the import draws a progress bar with entries/s and an ETA", () =>
      Effect.gen(function*() {
        const ldap = yield* Slapd.Slapd
        const dir = yield* tmp
        const ou = `ou=tty,${ldap.suffix}`
        const records = [`dn: ${ou}\nobjectClass: organizationalUnit\nou: tty\n`]
        for (let i = 1; i <= 300; i++) records.push(`dn: cn=d${i},${ou}\nobjectClass: device\ncn: d${i}\n`)
        const file = path.join(dir, "big.ldif")
        fs.writeFileSync(file, records.join("\n"))
        const command = [process.execPath, bin, "ldif", "import", file, "--url", ldap.servers[0]!.url, "--bind-dn", ldap.adminDn]
          .map((a) => `'${a.replace(/'/g, "'\\''")}'`)
          .join(" ")
        const run = yield* exec("script", ["-qfec", command, "/dev/null"], { TETHER_LDAP_PASSWORD: ldap.adminPassword })
        expect(run.code).toBe(0)
        const out = run.stdout
        expect(out).toContain("imported 301, skipped 0, failed 0 of 301 records")
        // Redrawn in place: carriage return + erase line, a bar, a rate, an ETA while running.
        expect(out).toContain("\r\u001b[2K")
        expect(out).toMatch(/\[#+-*\] +\d+% +\d+\/301 entries +[\d.]+ entries\/s/)
        expect(out).toMatch(/ETA \d+:\d\d/)
        expect(out).toMatch(/\[#{24}\] +100% +301\/301 entries/)
      }).pipe(Effect.scoped), 600_000)
  })

  describe("status and check", () => {
    it.effect("status prints every endpoint with role, health, breaker and pool; check probes each and sets the exit code", () =>
      Effect.gen(function*() {
        const ldap = yield* Slapd.Slapd
        const cluster = yield* PostgresCluster.PostgresCluster
        const dir = yield* tmp
        const config = {
          ldap: { name: "directory", endpoints: ldap.servers.map((s) => s.url), bindDn: ldap.adminDn },
          pg: {
            name: "orders",
            endpoints: cluster.nodes.map((n) => ({ url: `postgres://${n.host}:${n.port}/postgres`, role: n.role })),
            user: "postgres"
          }
        }
        const file = path.join(dir, "tether.json")
        fs.writeFileSync(file, JSON.stringify(config))
        const env = { TETHER_LDAP_PASSWORD: ldap.adminPassword }

        const status = yield* tether(["status", "--config", file], env)
        expect(status.code).toBe(0)
        const lines = status.stdout.split("\n")
        expect(lines[0]).toMatch(/^SET +ENDPOINT +ROLE +HEALTH +BREAKER +POOL open\/max/)
        for (const s of ldap.servers) expect(lines.some((l) => l.includes(s.url) && / healthy /.test(l))).toBe(true)
        const primary = lines.find((l) => l.includes(`:${cluster.primary.port}/`))!
        expect(primary).toMatch(/orders +postgres:\/\/\S+ +primary +healthy +closed/)
        expect(status.stdout).not.toContain(ldap.adminPassword)

        const json = yield* tether(["status", "--config", file, "--json"], env)
        const sets = JSON.parse(json.stdout) as Array<{ name: string; endpoints: Array<{ health: string }> }>
        expect(sets.map((s) => s.name)).toEqual(["directory", "orders"])

        const check = yield* tether(["check", "--config", file], env)
        expect(check.code).toBe(0)
        expect(check.stdout.match(/^OK /gm)?.length).toBe(4)
        expect(check.stdout).toContain(`bound as dn:${ldap.adminDn}`)
        expect(check.stdout).toMatch(/OK +pg +\S+ +PostgreSQL 15\.\d+.*, replica/)

        // A wrong password and a dead endpoint: FAIL lines and exit code 1.
        const broken = { ...config, pg: { ...config.pg, endpoints: [...config.pg.endpoints, "postgres://127.0.0.1:1/postgres"] } }
        fs.writeFileSync(file, JSON.stringify(broken))
        const failed = yield* tether(["check", "--config", file], { TETHER_LDAP_PASSWORD: "wrong" })
        expect(failed.code).toBe(1)
        expect(failed.stdout.match(/^FAIL +ldap /gm)?.length).toBe(2)
        expect(failed.stdout).toMatch(/^FAIL +pg +postgres:\/\/127\.0\.0\.1:1\/postgres/m)
        expect(failed.stdout).toMatch(/^OK +pg /m)
        expect(failed.stdout).not.toContain("wrong")

        // A bad configuration file: exit code 2 and what to fix.
        fs.writeFileSync(file, JSON.stringify({ pg: { endpoints: [] } }))
        const invalid = yield* tether(["check", "--config", file])
        expect(invalid.code).toBe(2)
        expect(invalid.stderr).toContain("invalid PostgreSQL configuration")
      }).pipe(Effect.scoped), 600_000)

    it.effect("demo (what npm start runs): starts its own servers, prints the dashboard URL, identities, failover, and exits 0", () =>
      Effect.gen(function*() {
        const run = yield* tether(["demo"])
        expect(run.code, run.stderr.slice(-2_000)).toBe(0)
        expect(run.stdout).toMatch(/Dashboard: http:\/\/127\.0\.0\.1:\d+\//)
        expect(run.stdout).toContain("each saw itself: true")
        expect(run.stdout).toMatch(/Failover: killing the primary/)
        expect(run.stdout).toMatch(/writes: \{/)
      }), 600_000)

    it.effect("every flag has help text", () =>
      Effect.gen(function*() {
        for (const args of [["ldif", "import"], ["ldif", "export"], ["status"]]) {
          const help = yield* tether([...args, "--help"])
          expect(help.code).toBe(0)
          const flags = help.stdout.split("FLAGS")[1]!.split("GLOBAL FLAGS")[0]!
          for (const line of flags.split("\n").filter((l) => /^\s+--/.test(l))) {
            // "--name type    description": a description follows every flag.
            expect(line.trim()).toMatch(/^--\S+( \S+)? {2,}\S/)
          }
        }
      }), 600_000)
  })
})
