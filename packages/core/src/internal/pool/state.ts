/**
 * The state of an identity-tagged pool: every open connection carries the
 * identity it is bound as (its `group`), idle connections are kept per
 * identity (most recently used last) and in one least-recently-used order
 * across identities (the eviction order), under one global `max` and a
 * `maxPerIdentity`. Plain mutable structures, touched only synchronously by
 * the one-job modules beside this one (admission, lease, housekeeper, drain),
 * so no borrow allocates more than its lease.
 *
 * Why not Effect's `Pool`: a `Pool` lends any of its items to any borrower.
 * Here an item may serve only borrowers of its bound identity, changes hands
 * between identities (re-bind), and the limit is shared: `Pool` has no
 * public way to choose the item by key, move one between keys, or share
 * `max`, and a `Pool` per identity (the former design) cost 0.41x of one
 * identity with 1,000 identities. `ConnectionPool` (one identity, no keys)
 * stays on `Pool.makeWithTTL`.
 */
import type { Fiber, Scope } from "effect"
import type { Credentials } from "../../Identity.ts"
import type { PoolClosed, PoolTimeout } from "../../PoolError.ts"
import { makeCounters } from "../poolMetrics.ts"

/** One identity: its idle connections and counts. */
export interface Group<C> {
  readonly key: string
  readonly identity: Credentials | undefined
  readonly label: string
  /** Connections of this identity that can take another borrower, most recently used last. */
  readonly avail: Array<Conn<C>>
  /** Connections bound (or being bound) as this identity: at most `maxPerIdentity`. */
  count: number
  /** Borrowers of this identity in the wait queue. */
  waiting: number
  borrows: number
  /** Borrows served by a connection already open and bound as this identity. */
  hits: number
  /** Connections opened or re-bound as this identity. */
  created: number
  lastUsedAt: number
  /** Replaced by a newer secret of its principal: no new connection is lent or bound as it. */
  retired: boolean
  /** Dropped from `groups` by the housekeeper (unused a while): a reference kept elsewhere must look it up again. */
  forgotten: boolean
}

/** One open connection, bound as `group`'s identity. */
export interface Conn<C> {
  readonly id: number
  readonly connection: C
  readonly scope: Scope.Closeable
  readonly createdAt: number
  group: Group<C>
  lastUsedAt: number
  /** Borrows in progress (at most `concurrency`); a connection being re-bound or probed counts as held. */
  holders: number
  /** In its group's `avail` list. */
  inAvail: boolean
  /** To be closed once its last borrower returns it. */
  retired: boolean
  closed: boolean
}

/** One borrow in progress: tracked for leak detection and drain. */
export interface Lease<C> {
  readonly conn: Conn<C>
  readonly fiber: Fiber.Fiber<unknown, unknown>
  readonly since: number
  reported: boolean
}

/** What the admission gives a waiter. */
export type Grant<C> =
  /** A connection bound as its identity, already counted as held by it. */
  | { readonly _tag: "Lend"; readonly conn: Conn<C> }
  /** A free slot (counted in `open` and its group): the waiter opens a connection. */
  | { readonly _tag: "Open" }
  /** Another identity's idle connection, taken out of its group: the waiter re-binds it or closes it and opens one. */
  | { readonly _tag: "Evict"; readonly conn: Conn<C> }

/** A borrower waiting for a grant, in the global FIFO queue. */
export interface Waiter<C> {
  readonly group: Group<C>
  readonly deadline: number
  prev: Waiter<C> | undefined
  next: Waiter<C> | undefined
  queued: boolean
  grant: Grant<C> | undefined
  failure: PoolTimeout | PoolClosed | undefined
  /** Resumes the waiting fiber (set while it is suspended). */
  wake: (() => void) | undefined
}

/** The limits, changed at run time by `resize`. */
export interface Limits {
  min: number
  max: number
  maxPerIdentity: number
}

/** Everything the modules share. */
export class PoolState<C> {
  readonly groups = new Map<string, Group<C>>()
  /** The group each credentials object was last looked up as (skips the digest and the map on the hot path). */
  readonly byCredentials = new WeakMap<Credentials, Group<C>>()
  /** Idle connections (no holder), least recently used first: the eviction order. */
  readonly idle = new Set<Conn<C>>()
  readonly conns = new Set<Conn<C>>()
  readonly leases = new Set<Lease<C>>()
  /** Connections open or being opened (slots taken), across identities. */
  open = 0
  /** Connections whose close is in progress (still open on the server, still counted in `open`). */
  closing = 0
  draining = false
  nextId = 1
  readonly counters = {
    ...makeCounters(),
    /** Borrows that had to wait for a grant (the rest were served at once). */
    waited: 0,
    /** Borrows served by a connection already open and bound as the borrower's identity. */
    hits: 0,
    evictions: 0,
    rebinds: 0,
    rebindFailures: 0
  }

  constructor(readonly name: string, readonly limits: Limits, readonly concurrency: number) {}

  /** The group of `key`, created (last used `now()`) when there is none; the clock is read only then. */
  group(key: string, identity: Credentials | undefined, now: () => number): Group<C> {
    let group = this.groups.get(key)
    if (group === undefined) {
      group = {
        key,
        identity,
        label: identity?.label ?? "default",
        avail: [],
        count: 0,
        waiting: 0,
        borrows: 0,
        hits: 0,
        created: 0,
        lastUsedAt: now(),
        retired: false,
        forgotten: false
      }
      this.groups.set(key, group)
    }
    return group
  }

  /** Takes a borrower's place on an available connection of `group`, most recently used first. */
  takeAvail(group: Group<C>): Conn<C> | undefined {
    const avail = group.avail
    const conn = avail[avail.length - 1]
    if (conn === undefined) return undefined
    this.hold(conn)
    return conn
  }

  /** Counts one more holder of `conn` (taking it off the lists it leaves). */
  hold(conn: Conn<C>): void {
    if (conn.holders === 0) this.idle.delete(conn)
    conn.holders++
    if (conn.holders >= this.concurrency && conn.inAvail) this.removeAvail(conn)
  }

  /** One holder gave `conn` back: it is available again (and idle when nobody holds it). */
  unhold(conn: Conn<C>, now: number): void {
    conn.holders--
    conn.lastUsedAt = now
    if (conn.retired || conn.closed) return
    if (!conn.inAvail) {
      conn.inAvail = true
      conn.group.avail.push(conn)
    }
    if (conn.holders === 0) {
      // Most recently used at the end of both lists.
      const avail = conn.group.avail
      if (avail[avail.length - 1] !== conn) {
        avail.splice(avail.indexOf(conn), 1)
        avail.push(conn)
      }
      this.idle.add(conn)
    }
  }

  removeAvail(conn: Conn<C>): void {
    if (!conn.inAvail) return
    conn.inAvail = false
    const avail = conn.group.avail
    const last = avail.length - 1
    if (avail[last] === conn) avail.pop()
    else avail.splice(avail.indexOf(conn), 1)
  }

  /** The least recently used idle connection not bound as `group` (nor being probed), if any. */
  victimFor(group: Group<C>): Conn<C> | undefined {
    for (const conn of this.idle) if (conn.group !== group) return conn
    return undefined
  }

  /** Takes an idle connection out of its identity (for a re-bind, a probe or a close): it counts as held. */
  detach(conn: Conn<C>): void {
    this.idle.delete(conn)
    this.removeAvail(conn)
    conn.holders++
  }

  /** Idle, in use and pending totals. */
  snapshot(pending: number) {
    let inUse = 0
    for (const conn of this.conns) if (conn.holders > 0) inUse++
    return { idle: this.idle.size, inUse, pending, max: this.limits.max }
  }
}
