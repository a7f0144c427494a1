/**
 * Summarises a V8 .cpuprofile: the top functions by self time and by total
 * (inclusive) time, as a share of all samples.
 *
 *   npx tsx bench/profile/summarize.ts .cpuprofile/CPU.*.cpuprofile [--top 30] [--filter effect/src] [--groups]
 */
import * as fs from "node:fs"
import * as path from "node:path"

interface ProfileNode {
  readonly id: number
  readonly callFrame: { readonly functionName: string; readonly url: string; readonly lineNumber: number }
  readonly children?: ReadonlyArray<number>
}
interface Profile {
  readonly nodes: ReadonlyArray<ProfileNode>
  readonly samples: ReadonlyArray<number>
}

const args = process.argv.slice(2)
const flag = (name: string) => {
  const i = args.indexOf(`--${name}`)
  return i >= 0 ? args[i + 1] : undefined
}
const top = Number(flag("top") ?? "30")
const filter = flag("filter")
/** Also list who calls the functions whose label contains this. */
const callersOf = flag("callers")
const files = args.filter((a, i) => !a.startsWith("--") && !(i > 0 && args[i - 1]!.startsWith("--")))

for (const file of files) {
  const profile = JSON.parse(fs.readFileSync(file, "utf8")) as Profile
  const byId = new Map(profile.nodes.map((n) => [n.id, n]))
  const parent = new Map<number, number>()
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id)
  const label = (n: ProfileNode) => {
    const url = n.callFrame.url.replace(/^file:\/\//, "")
    const short = url.includes("node_modules/") ? url.slice(url.lastIndexOf("node_modules/") + 13) : path.relative(process.cwd(), url)
    return `${n.callFrame.functionName || "(anonymous)"} ${short}:${n.callFrame.lineNumber + 1}`
  }
  const self = new Map<string, number>()
  const total = new Map<string, number>()
  for (const id of profile.samples) {
    const leaf = byId.get(id)!
    self.set(label(leaf), (self.get(label(leaf)) ?? 0) + 1)
    const seen = new Set<string>()
    for (let cur: number | undefined = id; cur !== undefined; cur = parent.get(cur)) {
      const l = label(byId.get(cur)!)
      if (seen.has(l)) continue
      seen.add(l)
      total.set(l, (total.get(l) ?? 0) + 1)
    }
  }
  const n = profile.samples.length
  const show = (title: string, map: Map<string, number>) => {
    console.log(`\n${title} (${n} samples) — ${file}`)
    const rows = [...map.entries()].filter(([l]) => filter === undefined || l.includes(filter)).sort((a, b) => b[1] - a[1]).slice(0, top)
    for (const [l, c] of rows) console.log(`${((100 * c) / n).toFixed(1).padStart(5)}%  ${l}`)
  }
  show("self", self)
  show("total", total)
  if (args.includes("--groups")) {
    // Self time by where the code lives: what the client library, Effect, Node and Tether each cost.
    const groupOf = (l: string) =>
      l.startsWith("(idle)") ? "(idle)"
      : l.startsWith("(garbage collector)") ? "(garbage collector)"
      : /^\S+ effect\//.test(l) ? "effect"
      : /^\S+ ldapts\//.test(l) ? "ldapts"
      : /^\S+ postgres\//.test(l) ? "postgres"
      : / packages\/core\//.test(l) ? "@tether/core"
      : / packages\/ldap\//.test(l) ? "@tether/ldap"
      : / packages\/pg\//.test(l) ? "@tether/pg"
      : / node:|^\S+ :0$/.test(l) ? "node (runtime, sockets, microtasks)"
      : "other"
    const groups = new Map<string, number>()
    for (const [l, c] of self) groups.set(groupOf(l), (groups.get(groupOf(l)) ?? 0) + c)
    const busy = n - (groups.get("(idle)") ?? 0)
    console.log(`\nself time by group (share of non-idle samples, ${busy})`)
    for (const [g, c] of [...groups.entries()].sort((a, b) => b[1] - a[1])) {
      if (g !== "(idle)") console.log(`${((100 * c) / busy).toFixed(1).padStart(5)}%  ${g}`)
    }
  }
  if (callersOf !== undefined) {
    const callers = new Map<string, number>()
    for (const id of profile.samples) {
      for (let cur: number | undefined = id; cur !== undefined; cur = parent.get(cur)) {
        if (!label(byId.get(cur)!).includes(callersOf)) continue
        const up = parent.get(cur)
        if (up !== undefined) {
          const l = label(byId.get(up)!)
          callers.set(l, (callers.get(l) ?? 0) + 1)
        }
        break
      }
    }
    console.log(`\ncallers of ${callersOf}`)
    for (const [l, c] of [...callers.entries()].sort((a, b) => b[1] - a[1]).slice(0, top)) {
      console.log(`${((100 * c) / n).toFixed(1).padStart(5)}%  ${l}`)
    }
  }
}
