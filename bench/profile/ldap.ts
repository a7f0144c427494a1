/**
 * A search by uid through `LdapClient` against hand-held ldapts clients, on
 * real slapd, for profiling and for comparing variants on a busy machine:
 *
 *   npx tsx --conditions=@tether/source bench/profile/ldap.ts --concurrency 1 --rounds 10 --millis 300
 *   node --conditions=@tether/source --import tsx --cpu-prof --cpu-prof-dir=/tmp/prof bench/profile/ldap.ts --only tether --rounds 10
 *   npx tsx bench/profile/summarize.ts /tmp/prof/*.cpuprofile --top 30
 *
 * slapd runs in its own process, so the CPU time this process spends per
 * operation (`process.cpuUsage`) is the client side's cost alone: the
 * difference between Tether and the hand-held clients is what Tether adds,
 * whatever else the machine is doing. Implementations run in short windows,
 * back to back, in a rotating order; medians over rounds are reported.
 *
 * --concurrency N   fibers / async workers (default 1)
 * --connections N   pool size and hand-held clients (default 8)
 * --pipeline N      the LdapClient's `pipeline` depth (default: the client's default)
 * --only NAME       run one implementation (tether | "tether, no pipeline" | ldapts | per-request | effect+ldapts | serverset+ldapts)
 */
import type { Effect as EffectType } from "effect"
import { useTscTransform } from "../harness/transpile.ts"

useTscTransform()
const { Effect, Redacted } = await import("effect")
const { LdapClient, LdapDriver } = await import("@tether/ldap")
const { ServerSet } = await import("@tether/core")
const { Slapd } = await import("@tether/testkit")
const { Client } = await import("ldapts")
const { effectLoop, promiseLoop, runScoped } = await import("../harness/loops.ts")

const { flag, median, rotatingRounds } = await import("../harness/profile.ts")
const rounds = Number(flag("rounds", "10"))
const millis = Number(flag("millis", "300"))
const concurrency = Number(flag("concurrency", "1"))
const connections = Number(flag("connections", "8"))
const pipeline = flag("pipeline", "")
const only = flag("only", "")

const program = Effect.gen(function*() {
  const directory = yield* Slapd.make({ servers: 1, users: 20 })
  const user = directory.users[3]!
  const filter = `(uid=${user.uid})`
  /** The service account's client, `connections` connections, with `pipelining` (none: the client's default). */
  const clientWith = (pipelining: { readonly pipeline?: number | false }) =>
    LdapClient.make({
      bindDn: directory.adminDn,
      password: Redacted.make(directory.adminPassword),
      allowPlaintext: true,
      health: false,
      endpoints: [directory.server.url],
      pool: { min: connections, max: connections },
      ...pipelining
    })
  const pooled = yield* clientWith(pipeline === "" ? {} : { pipeline: Number(pipeline) })
  const unpipelined = yield* clientWith({ pipeline: false })
  const handHeld = Array.from({ length: connections }, () => new Client({ url: directory.server.url }))
  yield* Effect.promise(() => Promise.all(handHeld.map((c) => c.bind(directory.adminDn, directory.adminPassword))))
  yield* Effect.addFinalizer(() => Effect.promise(() => Promise.all(handHeld.map((c) => c.unbind().catch(() => undefined)))))
  const perRequest = async () => {
    const client = new Client({ url: directory.server.url })
    try {
      await client.bind(directory.adminDn, directory.adminPassword)
      return await client.search(directory.peopleDn, { filter })
    } finally {
      await client.unbind().catch(() => undefined)
    }
  }
  // Layers, for the decomposition: the same search through Effect alone, and through a bare ServerSet.
  const set = yield* ServerSet.make({
    name: "layers",
    endpoints: [directory.server.url],
    driver: LdapDriver.make({ bindDn: directory.adminDn, password: Redacted.make(directory.adminPassword), allowPlaintext: true }),
    health: false,
    pool: { min: connections, max: connections }
  })
  const impls: Array<[string, () => EffectType.Effect<{ opsPerSecond: number }, unknown>]> = [
    ["effect+ldapts", () =>
      effectLoop((i) => Effect.promise(() => handHeld[i % connections]!.search(directory.peopleDn, { filter })), concurrency, millis)],
    ["serverset+ldapts", () =>
      effectLoop(
        () => set.as().use((c) => LdapDriver.attempt(c, "search", (client) => client.search(directory.peopleDn, { filter })), { idempotent: true }),
        concurrency,
        millis
      )],
    ["ldapts", () => Effect.promise(() => promiseLoop((i) => handHeld[i % connections]!.search(directory.peopleDn, { filter }), concurrency, millis))],
    ["tether", () => effectLoop(() => pooled.searchAll(directory.peopleDn, { filter, pageSize: 0 }), concurrency, millis)],
    ["tether, no pipeline", () => effectLoop(() => unpipelined.searchAll(directory.peopleDn, { filter, pageSize: 0 }), concurrency, millis)],
    ["per-request", () => Effect.promise(() => promiseLoop(perRequest, concurrency, millis))]
  ]
  const selected = only === "" ? impls : impls.filter(([name]) => name === only)
  for (const [, run] of selected) yield* run() // warm-up
  const { cpu, ops, ratios } = yield* rotatingRounds(selected, { rounds, millis, baseline: "ldapts", cpuScale: 1 })
  console.log(`${rounds} rounds of ${millis} ms, concurrency ${concurrency}, ${connections} connections, pipeline ${pipeline || "default"}`)
  console.log("implementation      ops/s   client CPU µs/op   ratio to hand-held ldapts (median of rounds)")
  for (const [name] of selected) {
    const ratio = ratios[name] === undefined ? "" : median(ratios[name]!).toFixed(2)
    console.log(
      `${name.padEnd(14)} ${Math.round(median(ops[name]!)).toString().padStart(8)}   ${median(cpu[name]!).toFixed(1).padStart(10)}         ${ratio}`
    )
  }
})

await runScoped(program)
process.exit(0)
