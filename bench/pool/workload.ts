/**
 * The pool workload: `size` trivial resources (plain objects, created
 * instantly), `borrowers` concurrent borrowers, each looping
 * acquire → hold → release until the measuring window closes.
 *
 * While holding the resource a borrower does nothing (`hold: "none"`) or
 * waits for one microtask (`hold: "microtask"`: `queueMicrotask` and resume,
 * the least a borrower doing I/O would do; it makes every borrower give up
 * the thread while holding, as a real one would).
 *
 * Acquire latency is the time from asking for a resource to holding it:
 * `t0 = now()` just before the pool's acquire/use call, `t1 = now()` as the
 * first thing once the resource is in hand. Every implementation pays the
 * same measurement cost (two `now()` calls and one `Window.record` call per
 * operation), and the same hold.
 */
import * as genericPool from "generic-pool"
import * as tarn from "tarn"
import { Effect, Exit, Pool, Scope } from "effect"
import { ConnectionPool } from "@tether/core"
import { now, type Window } from "../harness/measure.ts"

/** A pool ready to be measured; `close` releases everything it holds. */
export interface Prepared {
  readonly run: (borrowers: number, window: Window, hold: Hold) => Promise<void>
  readonly close: () => Promise<void>
}

/** An implementation under test. */
export interface Implementation {
  readonly name: string
  readonly prepare: (size: number) => Promise<Prepared>
}

/** What a borrower does while it holds the resource. */
export type Hold = "none" | "microtask"

/** A trivial resource; distinct objects so pools keyed by identity behave. */
interface Resource {
  readonly id: number
}
let nextId = 0
const createResource = (): Resource => ({ id: nextId++ })

const range = (n: number): ReadonlyArray<number> => Array.from({ length: n }, (_, i) => i)
const noop = () => {}

// --- Effect pools -------------------------------------------------------------

/** How an Effect pool lends a resource to `f` and takes it back when `f` exits. */
export type EffectUse = (f: (resource: Resource) => Effect.Effect<void>) => Effect.Effect<void, unknown>

/**
 * N borrowers as N fibers forked with `Effect.forEach(…, { concurrency:
 * "unbounded" })`, each looping `use(f)` with `f` recording the latency and
 * returning `Effect.void`.
 */
const microtask: Effect.Effect<void> = Effect.callback<void>((resume) => {
  queueMicrotask(() => resume(Effect.void))
})

export const runEffectBorrowers = (use: EffectUse, borrowers: number, window: Window, hold: Hold): Promise<void> => {
  const work = hold === "none" ? Effect.void : microtask
  const borrower = Effect.suspend(() => {
    let t0 = 0
    const onResource = (_resource: Resource): Effect.Effect<void> => {
      window.record(t0, now())
      return work
    }
    const once = Effect.suspend(() => {
      t0 = now()
      return use(onResource)
    })
    return Effect.whileLoop({ while: () => !window.stopped, body: () => once, step: noop })
  })
  return Effect.runPromise(Effect.forEach(range(borrowers), () => borrower, { concurrency: "unbounded", discard: true }))
}

/**
 * Builds an Effect pool in a scope kept open across the trial, and waits until
 * `size` resources have been created, so no trial pays for creation.
 */
export const prepareEffect = async <P>(
  make: (size: number) => Effect.Effect<P, unknown, Scope.Scope>,
  useOf: (pool: P) => EffectUse,
  createdOf: (pool: P) => number,
  size: number
): Promise<Prepared> => {
  const scope = Effect.runSync(Scope.make())
  const pool = await Effect.runPromise(Scope.provide(scope)(make(size)))
  // Pool opens `min` resources in the background: wait for them.
  for (let i = 0; i < 10_000 && createdOf(pool) < size; i++) {
    await new Promise((resolve) => setImmediate(resolve))
  }
  if (createdOf(pool) < size) throw new Error(`pool created ${createdOf(pool)} of ${size} resources`)
  const use = useOf(pool)
  return {
    run: (borrowers, window, hold) => runEffectBorrowers(use, borrowers, window, hold),
    close: () => Effect.runPromise(Scope.close(scope, Exit.void))
  }
}

/** The same options our ConnectionPool gives `Pool.makeWithTTL` (fixed size, idle TTL by usage). */
export const bareTtlPool = (size: number) =>
  Pool.makeWithTTL({
    acquire: Effect.sync(createResource),
    min: size,
    max: size,
    timeToLive: "10 minutes",
    timeToLiveStrategy: "usage"
  })

export const barePool: Implementation = {
  name: "Pool.makeWithTTL",
  prepare: (size) =>
    prepareEffect(
      bareTtlPool,
      (pool) => (f) => Pool.use(pool, f),
      (pool) => pool.state.items.size,
      size
    )
}

export const connectionPool: Implementation = {
  name: "ConnectionPool",
  prepare: (size) =>
    prepareEffect(
      (n) => ConnectionPool.make({ name: "bench", acquire: Effect.sync(createResource), min: n, max: n }),
      (pool) => (f) => pool.use(f),
      () => size, // make() returns after warm-up to `min`
      size
    )
}

// --- Promise pools --------------------------------------------------------------

/** N borrowers as N async loops: `await acquire()`, record, `release()`. */
const runPromiseBorrowers = (
  acquire: () => Promise<Resource>,
  release: (resource: Resource) => unknown,
  borrowers: number,
  window: Window,
  hold: Hold
): Promise<void> => {
  const borrower = hold === "none"
    ? async () => {
      while (!window.stopped) {
        const t0 = now()
        const resource = await acquire()
        window.record(t0, now())
        release(resource)
      }
    }
    : async () => {
      while (!window.stopped) {
        const t0 = now()
        const resource = await acquire()
        window.record(t0, now())
        await new Promise<void>((resolve) => queueMicrotask(resolve))
        release(resource)
      }
    }
  return Promise.all(range(borrowers).map(borrower)).then(noop)
}

/** generic-pool with its defaults (FIFO, no acquire timeout, no validation). */
export const genericPoolImpl: Implementation = {
  name: "generic-pool",
  prepare: async (size) => {
    const pool = genericPool.createPool<Resource>(
      { create: () => Promise.resolve(createResource()), destroy: () => Promise.resolve() },
      { min: size, max: size }
    )
    await pool.ready()
    const acquire = () => pool.acquire()
    const release = (resource: Resource) => pool.release(resource)
    return {
      run: (borrowers, window, hold) => runPromiseBorrowers(acquire, release, borrowers, window, hold),
      close: async () => {
        await pool.drain()
        await pool.clear()
      }
    }
  }
}

/** tarn with its defaults (30 s acquire timeout, which tarn always arms). */
export const tarnImpl: Implementation = {
  name: "tarn",
  prepare: async (size) => {
    const pool = new tarn.Pool<Resource>({ create: () => Promise.resolve(createResource()), destroy: noop, min: size, max: size })
    // tarn opens resources on demand: borrow `size` at once to open them all.
    const warm = await Promise.all(range(size).map(() => pool.acquire().promise))
    for (const resource of warm) pool.release(resource)
    const acquire = () => pool.acquire().promise
    const release = (resource: Resource) => pool.release(resource)
    return {
      run: (borrowers, window, hold) => runPromiseBorrowers(acquire, release, borrowers, window, hold),
      close: async () => {
        await pool.destroy()
      }
    }
  }
}

/** The pools the `pool` suite compares, ours first. */
export const implementations: ReadonlyArray<Implementation> = [connectionPool, barePool, genericPoolImpl, tarnImpl]
