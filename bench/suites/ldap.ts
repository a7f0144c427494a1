/**
 * The `ldap` suite, on real slapd (testkit, loopback, one server with TLS):
 *
 * 1. LDIF parse rate: a generated LDIF (5 attributes per entry) parsed from
 *    64 KiB byte chunks; peers are the seed's ask (50,000/s) and the target
 *    (200,000/s).
 * 2. Search throughput (a one-entry search by uid): the pooled `LdapClient`
 *    in its default configuration (pipelined: up to 8 operations in flight
 *    per connection) against connect + bind + search + unbind per request
 *    (plain and ldaps: the seed's "option A"), against hand-held persistent
 *    ldapts clients, and against itself with `pipeline: false` (one
 *    operation per borrowed connection), at concurrency 1 and 32 (8
 *    connections each).
 * 3. Bulk add: the same 2,000 entries through `importLdif` (concurrency 8)
 *    and through `ldapadd -f` (the OpenLDAP tool, one connection).
 * 4. Time to first result of a 2,000-entry search: the stream's first entry
 *    against `searchAll` (the whole result).
 */
import { LdapClient, Ldif } from "@tether/ldap"
import { Slapd } from "@tether/testkit"
import { execFile } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { Effect, Redacted, Stream } from "effect"
import { Client } from "ldapts"
import { effectLoop, promiseLoop, runScoped } from "../harness/loops.ts"
import * as requirements from "../harness/requirements.ts"
import { collectGarbage, now } from "../harness/measure.ts"
import type { Measurement, Suite } from "../harness/types.ts"

const CONNECTIONS = 8

const ldifOf = (count: number, ou: string) => {
  let text = "version: 1\n\n"
  for (let i = 1; i <= count; i++) {
    text += `dn: cn=bench${i},${ou}\nobjectClass: person\ncn: bench${i}\nsn: Bench ${i}\ndescription: entry number ${i} of the bench\n\n`
  }
  return text
}

const ldapadd = (args: ReadonlyArray<string>) =>
  new Promise<void>((resolve, reject) =>
    execFile("ldapadd", [...args], { timeout: 300_000 }, (error, _stdout, stderr) =>
      error ? reject(new Error(`ldapadd failed: ${stderr || error.message}`)) : resolve())
  )

export const ldapSuite: Suite = {
  name: "ldap",
  description: "LDIF parse rate, pooled search vs connect+bind and hand-held ldapts, bulk add vs ldapadd, time to first result",
  requires: [requirements.slapd, requirements.command("ldapadd", { hint: "run `npm run provision`" })],
  run: async ({ quick, log }) => {
    const measurements: Array<Measurement> = []
    const notes: Array<string> = []
    const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "tether-bench-ldap-"))

    const program = Effect.gen(function*() {
      // 1. LDIF parse rate (no server).
      const entries = quick ? 100_000 : 300_000
      const bytes = new TextEncoder().encode(ldifOf(entries, "ou=people,dc=example,dc=com"))
      const chunks: Array<Uint8Array> = []
      for (let i = 0; i < bytes.length; i += 64 * 1024) chunks.push(bytes.subarray(i, i + 64 * 1024))
      yield* Stream.runDrain(Ldif.parse(Stream.fromIterable(chunks.slice(0, 20))))
      const t0 = now()
      const parsed = yield* Stream.runCount(Ldif.parse(Stream.fromIterable(chunks)))
      const parseRate = parsed / ((now() - t0) / 1000)
      measurements.push({
        case: `parse ${entries.toLocaleString("en")} entries from 64 KiB chunks`,
        metric: "LDIF parse rate",
        unit: "entries/s",
        higherIsBetter: true,
        tether: parseRate,
        peers: { "seed (50k/s)": 50_000, "target (200k/s)": 200_000 }
      })
      log(`ldap: LDIF parse ${Math.round(parseRate)} entries/s`)

      // Flat memory: 1,000,000 entries generated lazily (never held whole); the live heap is sampled while parsing.
      const million = 1_000_000
      const line = (i: number) => `dn: cn=bench${i},ou=people,dc=example,dc=com\nobjectClass: person\ncn: bench${i}\nsn: Bench ${i}\n\n`
      collectGarbage()
      const heapBefore = process.memoryUsage().heapUsed
      let heapPeak = heapBefore
      let inputBytes = 0
      const counted = yield* Stream.runCount(
        Ldif.parse(
          Stream.range(1, million).pipe(
            Stream.map((i) => {
              const text = line(i)
              inputBytes += text.length
              // After a full collection, heapUsed is what the parse retains (not garbage awaiting the collector).
              if (i % 100_000 === 0) {
                collectGarbage()
                heapPeak = Math.max(heapPeak, process.memoryUsage().heapUsed)
              }
              return text
            }),
            Stream.rechunk(512)
          )
        )
      )
      const growthMb = (heapPeak - heapBefore) / 2 ** 20
      measurements.push({
        case: `parse ${counted.toLocaleString("en")} generated entries (${Math.round(inputBytes / 2 ** 20)} MiB)`,
        metric: "peak live-heap growth",
        unit: "MiB",
        higherIsBetter: false,
        tether: growthMb,
        peers: { "input size": inputBytes / 2 ** 20 }
      })
      log(`ldap: 1,000,000 entries parsed; peak live-heap growth ${growthMb.toFixed(1)} MiB for ${Math.round(inputBytes / 2 ** 20)} MiB of input`)

      log("ldap: starting slapd with TLS")
      const directory = yield* Slapd.make({ servers: 1, tls: true, users: 20 })
      const user = directory.users[3]!
      const ca = [directory.caCertPem!]
      const clientOptions = {
        bindDn: directory.adminDn,
        password: Redacted.make(directory.adminPassword),
        health: false as const,
        pool: { min: CONNECTIONS, max: CONNECTIONS }
      }
      const pooled = yield* LdapClient.make({ ...clientOptions, endpoints: [directory.server.url] })
      const pooledTls = yield* LdapClient.make({ ...clientOptions, endpoints: [directory.server.ldapsUrl!], tls: { ca } })
      // One operation per borrowed connection: what pipelining saves.
      const exclusive = yield* LdapClient.make({ ...clientOptions, endpoints: [directory.server.url], pipeline: false })
      const filter = `(uid=${user.uid})`
      const searchPooled = (client: LdapClient.LdapClient) => client.searchAll(directory.peopleDn, { filter, pageSize: 0 })
      const perRequest = (url: string) => async () => {
        const client = new Client({ url, ...(url.startsWith("ldaps:") ? { tlsOptions: { ca } } : {}) })
        try {
          await client.bind(directory.adminDn, directory.adminPassword)
          return await client.search(directory.peopleDn, { filter })
        } finally {
          await client.unbind().catch(() => undefined)
        }
      }
      const handHeld = Array.from({ length: CONNECTIONS }, () => new Client({ url: directory.server.url }))
      yield* Effect.promise(() => Promise.all(handHeld.map((c) => c.bind(directory.adminDn, directory.adminPassword))))
      yield* Effect.addFinalizer(() => Effect.promise(() => Promise.all(handHeld.map((c) => c.unbind().catch(() => undefined)))))
      // Each worker keeps to one client, as code holding its own connection would.
      const searchHandHeld = (i: number) => handHeld[i % CONNECTIONS]!.search(directory.peopleDn, { filter })

      for (const concurrency of [1, 32]) {
        // The machine is shared: short windows of every contender, back to back, in a rotating order, after
        // an unrecorded warm-up of each; each reports its median over rounds (a slow stretch then hits all alike).
        const window = quick ? 300 : 500
        const searchRounds = quick ? 5 : 9
        const ops = (loop: Effect.Effect<{ readonly opsPerSecond: number }, unknown>) =>
          Effect.orDie(Effect.map(loop, (r) => r.opsPerSecond))
        const contenders: ReadonlyArray<readonly [string, () => Effect.Effect<number>]> = [
          ["ours", () => ops(effectLoop(() => searchPooled(pooled), concurrency, window))],
          ["oursTls", () => ops(effectLoop(() => searchPooled(pooledTls), concurrency, window))],
          ["plain", () => ops(Effect.promise(() => promiseLoop(perRequest(directory.server.url), concurrency, window)))],
          ["tls", () => ops(Effect.promise(() => promiseLoop(perRequest(directory.server.ldapsUrl!), concurrency, window)))],
          ["held", () => ops(Effect.promise(() => promiseLoop(searchHandHeld, concurrency, window)))],
          ["mux", () => ops(effectLoop(() => searchPooled(exclusive), concurrency, window))]
        ]
        for (const [, run] of contenders) yield* run()
        const runs = new Map<string, Array<number>>(contenders.map(([name]) => [name, []]))
        for (let round = 0; round < searchRounds; round++) {
          for (let i = 0; i < contenders.length; i++) {
            const [name, run] = contenders[(i + round) % contenders.length]!
            runs.get(name)!.push(yield* run())
          }
        }
        const medianOf = (name: string) => [...runs.get(name)!].sort((a, b) => a - b)[Math.floor(searchRounds / 2)]!
        const [ours, oursTls, plain, tls, held, mux] = ["ours", "oursTls", "plain", "tls", "held", "mux"].map(medianOf) as [
          number,
          number,
          number,
          number,
          number,
          number
        ]
        measurements.push({
          case: `search by uid, concurrency ${concurrency}, ldap://`,
          metric: "throughput",
          unit: "ops/s",
          higherIsBetter: true,
          tether: ours,
          peers: { "Tether, pipeline: false": mux, "connect+bind per request": plain, "hand-held ldapts": held }
        })
        measurements.push({
          case: `search by uid, concurrency ${concurrency}, ldaps://`,
          metric: "throughput",
          unit: "ops/s",
          higherIsBetter: true,
          tether: oursTls,
          peers: { "connect+bind per request": tls }
        })
        log(
          `ldap: concurrency ${concurrency}: pooled ${Math.round(ours)} (ldaps ${Math.round(oursTls)}, pipeline off ${
            Math.round(mux)
          }), per request ${
            Math.round(plain)
          } (ldaps ${Math.round(tls)}), hand-held ${Math.round(held)} ops/s`
        )
      }

      // 3. Bulk add: importLdif vs ldapadd, the same 2,000 entries under two OUs.
      const bulk = quick ? 1_000 : 2_000
      yield* pooled.add(`ou=tether,${directory.suffix}`, { objectClass: ["organizationalUnit"], ou: "tether" })
      yield* pooled.add(`ou=ldapadd,${directory.suffix}`, { objectClass: ["organizationalUnit"], ou: "ldapadd" })
      const oursFile = path.join(tmp, "tether.ldif")
      const theirsFile = path.join(tmp, "ldapadd.ldif")
      fs.writeFileSync(oursFile, ldifOf(bulk, `ou=tether,${directory.suffix}`))
      fs.writeFileSync(theirsFile, ldifOf(bulk, `ou=ldapadd,${directory.suffix}`))
      let t = now()
      const report = yield* pooled.importLdif(Ldif.parseFile(oursFile), { concurrency: 8 })
      const oursAdd = report.done / ((now() - t) / 1000)
      t = now()
      yield* Effect.promise(() =>
        ldapadd(["-x", "-H", directory.server.url, "-D", directory.adminDn, "-w", directory.adminPassword, "-f", theirsFile])
      )
      const theirsAdd = bulk / ((now() - t) / 1000)
      measurements.push({
        case: `add ${bulk.toLocaleString("en")} entries from an LDIF file`,
        metric: "bulk add rate",
        unit: "entries/s",
        higherIsBetter: true,
        tether: oursAdd,
        peers: { ldapadd: theirsAdd }
      })
      notes.push(`Bulk add: ${report.done} done, ${report.failed.length} failed.`)
      log(`ldap: bulk add ${Math.round(oursAdd)} entries/s, ldapadd ${Math.round(theirsAdd)} entries/s`)

      // 4. Time to first result.
      const ou = `ou=tether,${directory.suffix}`
      t = now()
      yield* Stream.runHead(pooled.search(ou, { scope: "one", pageSize: 100 }))
      const first = now() - t
      t = now()
      yield* pooled.searchAll(ou, { scope: "one", pageSize: 100 })
      const all = now() - t
      measurements.push({
        case: `search of ${bulk.toLocaleString("en")} entries, pages of 100`,
        metric: "time to first result",
        unit: "ms",
        higherIsBetter: false,
        tether: first,
        peers: { "whole result (searchAll)": all }
      })
    })

    try {
      await runScoped(program)
    } finally {
      fs.rmSync(tmp, { recursive: true, force: true })
    }
    return {
      tetherLabel: "Tether",
      peers: [
        "input size",
        "Tether, pipeline: false",
        "seed (50k/s)",
        "target (200k/s)",
        "connect+bind per request",
        "hand-held ldapts",
        "ldapadd",
        "whole result (searchAll)"
      ],
      measurements,
      notes: [
        `One slapd (mdb) on loopback with TLS; pooled clients hold ${CONNECTIONS} connections bound as the admin (default pipelining: up to 8 operations in flight per connection); hand-held: ${CONNECTIONS} persistent ldapts clients, each worker on one of them.`,
        "Targets: pooled ≥ 5x connect+bind per request on ldap://, ≥ 10x on ldaps://, ≥ 0.9x hand-held.",
        `Search by uid: windows of ${quick ? 300 : 500} ms of each contender in a rotating order, median over ${quick ? 5 : 9} rounds (the machine is shared).`,
        ...notes
      ]
    }
  }
}
