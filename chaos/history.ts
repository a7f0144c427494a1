/**
 * What happened during a run: every operation with its outcome, every fault with its timing, and
 * the violations seen on the way. The final checks and the report read it.
 */

/** The kinds of operations the workers run. */
export type OpKind =
  | "ldap-whoami"
  | "ldap-read-self"
  | "ldap-service-whoami"
  | "ldap-add"
  | "ldap-wrong-password"
  | "pg-read"
  | "pg-write"
  | "pg-transaction"
  | "pg-wrong-password"

export const opKinds: ReadonlyArray<OpKind> = [
  "ldap-whoami",
  "ldap-read-self",
  "ldap-service-whoami",
  "ldap-add",
  "ldap-wrong-password",
  "pg-read",
  "pg-write",
  "pg-transaction",
  "pg-wrong-password"
]

/**
 * `ok`: succeeded and checked; `failed`: a typed error (for a write: its outcome is unknown,
 * never counted as lost); `expected-failure`: the error the operation must get (a wrong password's
 * authentication error).
 */
export type Outcome = "ok" | "failed" | "expected-failure"

export interface Op {
  readonly worker: number
  readonly kind: OpKind
  readonly start: number
  readonly end: number
  readonly outcome: Outcome
  /** The error's tag (and kind), when it failed. */
  readonly error?: string | undefined
}

/** The invariants, in the order the report prints them. */
export type Invariant =
  | "acknowledged writes lost"
  | "writes duplicated"
  | "writes on a fenced (stale) primary"
  | "operations as the wrong identity or anonymous"
  | "wrong passwords accepted"
  | "failures that are not typed errors (defects, bare interrupts)"
  | "connections leaked"
  | "unhandled rejections / uncaught exceptions"

export const invariants: ReadonlyArray<Invariant> = [
  "acknowledged writes lost",
  "writes duplicated",
  "writes on a fenced (stale) primary",
  "operations as the wrong identity or anonymous",
  "wrong passwords accepted",
  "failures that are not typed errors (defects, bare interrupts)",
  "connections leaked",
  "unhandled rejections / uncaught exceptions"
]

export interface Violation {
  readonly invariant: Invariant
  readonly count: number
  readonly detail: string
  readonly at: number
}

export type Backend = "pg" | "ldap"

export interface Fault {
  readonly backend: Backend
  readonly kind: string
  readonly target: string
  readonly start: number
  /** When the fault was over (the server back, the proxy healed, the replica promoted). */
  healed: number | undefined
  /** Op kinds whose recovery is measured after this fault. */
  readonly affects: ReadonlyArray<OpKind>
  note: string
}

/** A PostgreSQL write acknowledged to the client. */
export interface AckedPgWrite {
  readonly id: string
  readonly worker: number
  readonly node: string
  readonly start: number
  readonly end: number
}

export class History {
  readonly t0 = Date.now()
  readonly ops: Array<Op> = []
  readonly faults: Array<Fault> = []
  readonly violations: Array<Violation> = []
  readonly warnings: Array<string> = []
  readonly pgAcked = new Map<string, AckedPgWrite>()
  /** Writes whose outcome the client does not know (typed failure, timeout): never counted as lost. */
  readonly pgUnknown = new Set<string>()
  readonly ldapAcked = new Set<string>()
  readonly ldapUnknown = new Set<string>()
  /** Intervals during which a node was a stale primary (restarted outside recovery after a promotion). */
  readonly staleWindows: Array<{ readonly node: string; readonly from: number; to: number | undefined }> = []

  /** Seconds since the start, for the log. */
  clock(at = Date.now()): string {
    return `+${((at - this.t0) / 1000).toFixed(1).padStart(6)}s`
  }

  record(op: Op): void {
    this.ops.push(op)
  }

  violate(invariant: Invariant, detail: string, count = 1): void {
    this.violations.push({ invariant, count, detail, at: Date.now() })
  }

  warn(message: string): void {
    this.warnings.push(`${this.clock()} ${message}`)
  }

  total(invariant: Invariant): number {
    return this.violations.filter((v) => v.invariant === invariant).reduce((sum, v) => sum + v.count, 0)
  }
}

const median = (xs: ReadonlyArray<number>): number => {
  if (xs.length === 0) return NaN
  const sorted = [...xs].sort((a, b) => a - b)
  return sorted[Math.floor((sorted.length - 1) / 2)]!
}

/**
 * Time to recover from a fault: from the moment it was over to the end of the first successful
 * operation (of a kind it affects) that started after that moment; `undefined` when none did
 * before the run ended. Also counts the failed operations of those kinds from the fault's start
 * until recovery.
 */
export const recovery = (
  history: History,
  fault: Fault
): { readonly millis: number | undefined; readonly failedDuring: number } => {
  const healed = fault.healed
  if (healed === undefined) return { millis: undefined, failedDuring: 0 }
  const relevant = history.ops.filter((op) => fault.affects.includes(op.kind))
  let recoveredAt: number | undefined = undefined
  for (const op of relevant) {
    if (op.start >= healed && op.outcome === "ok" && (recoveredAt === undefined || op.end < recoveredAt)) {
      recoveredAt = op.end
    }
  }
  const until = recoveredAt ?? Number.POSITIVE_INFINITY
  const failedDuring = relevant.filter((op) => op.outcome === "failed" && op.end >= fault.start && op.start <= until)
    .length
  return { millis: recoveredAt === undefined ? undefined : recoveredAt - healed, failedDuring }
}

/** Recovery statistics per fault kind: count, median and max time to recover, failed operations. */
export const recoveryTable = (history: History): ReadonlyArray<string> => {
  const byKind = new Map<string, Array<{ millis: number | undefined; failedDuring: number }>>()
  for (const fault of history.faults) {
    const key = `${fault.backend} ${fault.kind}`
    const list = byKind.get(key) ?? []
    list.push(recovery(history, fault))
    byKind.set(key, list)
  }
  const lines = [
    `  ${"fault".padEnd(28)} ${"n".padStart(3)} ${"recover median".padStart(15)} ${"max".padStart(8)} ${"never".padStart(6)} ${
      "ops failed".padStart(11)
    }`
  ]
  for (const [kind, list] of [...byKind.entries()].sort()) {
    const times = list.flatMap((r) => (r.millis === undefined ? [] : [r.millis]))
    const never = list.length - times.length
    const fmt = (ms: number) => (Number.isNaN(ms) ? "-" : `${(ms / 1000).toFixed(2)}s`)
    lines.push(
      `  ${kind.padEnd(28)} ${String(list.length).padStart(3)} ${fmt(median(times)).padStart(15)} ${
        fmt(times.length === 0 ? NaN : Math.max(...times)).padStart(8)
      } ${String(never).padStart(6)} ${String(list.reduce((s, r) => s + r.failedDuring, 0)).padStart(11)}`
    )
  }
  return lines
}

/** Every fault in start order, with its time to recover and the failed operations it caused. */
export const faultTimeline = (history: History): ReadonlyArray<string> =>
  [...history.faults].sort((a, b) => a.start - b.start).map((fault) => {
    const r = recovery(history, fault)
    const lasted = fault.healed === undefined ? "?" : `${((fault.healed - fault.start) / 1000).toFixed(1)}s`
    const ttr = r.millis === undefined ? "never" : `${(r.millis / 1000).toFixed(2)}s`
    return `  ${history.clock(fault.start)} ${fault.backend.padEnd(4)} ${fault.kind.padEnd(22)} ${fault.target.padEnd(8)} lasted ${
      lasted.padStart(5)
    }  recovered after ${ttr.padStart(6)}  ops failed ${String(r.failedDuring).padStart(4)}${fault.note}`
  })

/** Per operation kind: total, ok, expected failures, failures and the most common error tags. */
export const availabilityTable = (history: History): ReadonlyArray<string> => {
  const lines = [
    `  ${"operation".padEnd(20)} ${"total".padStart(6)} ${"ok".padStart(6)} ${"failed".padStart(6)} ${
      "avail".padStart(7)
    }  errors (top)`
  ]
  for (const kind of opKinds) {
    const ops = history.ops.filter((op) => op.kind === kind)
    if (ops.length === 0) continue
    const ok = ops.filter((op) => op.outcome !== "failed").length
    const failed = ops.length - ok
    const tags = new Map<string, number>()
    for (const op of ops) {
      if (op.outcome === "failed") tags.set(op.error ?? "?", (tags.get(op.error ?? "?") ?? 0) + 1)
    }
    const top = [...tags.entries()].sort((a, b) => b[1] - a[1]).slice(0, 4).map(([t, n]) => `${t} ${n}`).join(", ")
    lines.push(
      `  ${kind.padEnd(20)} ${String(ops.length).padStart(6)} ${String(ok).padStart(6)} ${String(failed).padStart(6)} ${
        ((100 * ok) / ops.length).toFixed(1).padStart(6)
      }%  ${top}`
    )
  }
  return lines
}
