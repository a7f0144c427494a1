/**
 * The contract between the bench harness (`bench/main.ts`) and a suite.
 *
 * A suite measures one thing ("pool", "serverset", "ldap", …) for Tether and
 * for one or more peers (other libraries, or a lower layer of our own stack),
 * and hands back {@link Measurement}s. The harness turns them into the human
 * table and the `bench-results.json` rows; a suite never writes files itself.
 */

/** Something a suite needs from the machine (a server binary, a port, …). */
export interface Requirement {
  /** What is needed, e.g. "slapd on PATH". */
  readonly name: string
  /** Resolves to `undefined` when available, else to the reason it is not (shown to the user). */
  readonly check: () => Promise<string | undefined>
}

/** What a suite gets from the harness. */
export interface SuiteContext {
  /** Quick mode: shorter cases, fewer rounds (a full run stays under 5 minutes). */
  readonly quick: boolean
  /** Progress output (goes to stderr so that the tables stay readable). */
  readonly log: (line: string) => void
}

/**
 * One measured quantity of one case, for Tether and every peer, e.g. case
 * "10 items, 100 borrowers", metric "throughput", unit "ops/s".
 */
export interface Measurement {
  readonly case: string
  readonly metric: string
  readonly unit: string
  readonly higherIsBetter: boolean
  /** Tether's value. */
  readonly tether: number
  /** Each peer's value, by the peer's name; the order is the suite's `peers`. */
  readonly peers: Readonly<Record<string, number>>
}

/** What a suite hands back. */
export interface SuiteResult {
  /** The label of our implementation in the table header, e.g. "ConnectionPool". */
  readonly tetherLabel: string
  /** The peers, in table order. */
  readonly peers: ReadonlyArray<string>
  readonly measurements: ReadonlyArray<Measurement>
  /** Lines printed under the table (method, caveats). */
  readonly notes?: ReadonlyArray<string> | undefined
}

/** A bench suite: register it in `bench/suites/index.ts`. */
export interface Suite {
  /** The `--suite` name; also the `suite` field of its rows in `bench-results.json`. */
  readonly name: string
  readonly description: string
  /** Real servers or tools the suite needs; when one is missing the suite is skipped with the reason. */
  readonly requires?: ReadonlyArray<Requirement> | undefined
  readonly run: (context: SuiteContext) => Promise<SuiteResult>
}

/** One row of `bench-results.json`. */
export interface ResultRow {
  readonly suite: string
  readonly case: string
  readonly metric: string
  readonly unit: string
  readonly higherIsBetter: boolean
  readonly tether: number
  readonly peer: string
  readonly peerValue: number
  /** Ours relative to the peer; > 1 means ours is better (whatever the metric's direction). */
  readonly ratio: number
}
