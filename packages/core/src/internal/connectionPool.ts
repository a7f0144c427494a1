import type { Fiber } from "effect"
import { Clock, Context, Duration, Effect, Exit, Pool, Schedule, Scope, Semaphore, Tracer } from "effect"
import type * as ConnectionPool from "../ConnectionPool.ts"
import { ConnectTimeout, InvalidPoolOptions, PoolClosed, PoolTimeout } from "../PoolError.ts"
import { checkKnownKeys, showValue } from "../Validation.ts"
import type { Capacity, Evictable } from "./capacity.ts"
import * as Millis from "./millis.ts"
import * as metrics from "./poolMetrics.ts"
import type { Waiter } from "./waitQueue.ts"
import { WaitQueue } from "./waitQueue.ts"

/** @internal */
export const defaults = {
  min: 0,
  max: 10,
  concurrency: 1,
  idleTimeToLive: Duration.minutes(10),
  maxLifetime: Duration.minutes(30),
  acquireTimeout: Duration.seconds(30),
  connectTimeout: Duration.seconds(10),
  validationWindow: Duration.millis(500),
  drainTimeout: Duration.seconds(30),
  housekeepingInterval: Duration.seconds(1)
} as const

/** One pooled connection and what the pool knows about it. */
interface Entry<A> {
  readonly connection: A
  readonly id: number
  readonly createdAt: number
  lastUsedAt: number
  /** Whether it has been lent at least once. */
  lent: boolean
  /** The borrows in progress (at most `concurrency`). */
  readonly holders: Array<Lease<A>>
  retired: boolean
}

/** One borrow in progress, tracked for leak detection and drain. */
interface Lease<A> {
  readonly entry: Entry<A>
  readonly fiber: Fiber.Fiber<unknown, unknown>
  readonly since: number
  reported: boolean
}

/** A borrower's claim to have `Pool` open a new connection for it. */
interface DirectToken {
  direct: boolean
}

const RETRY: unique symbol = Symbol.for("@tether/core/ConnectionPool/retry")

const millisOf = Millis.withFallback
const optionalMillis = Millis.optional

/** Every key of `ConnectionPool.Options`: any other is refused (a misspelt option is never ignored). @internal */
export const optionKeys: ReadonlyArray<string> = [
  "name",
  "acquire",
  "validate",
  "isBroken",
  "min",
  "max",
  "concurrency",
  "idleTimeToLive",
  "maxLifetime",
  "acquireTimeout",
  "connectTimeout",
  "validationWindow",
  "keepAliveInterval",
  "leakDetectionThreshold",
  "drainTimeout",
  "housekeepingInterval",
  "warmUp"
]

/** @internal Checks pool options; fails with `InvalidPoolOptions` naming the first bad one. */
export const checkOptions = <A, E, R>(options: ConnectionPool.Options<A, E, R>) =>
  Effect.suspend(() => {
    if (typeof options !== "object" || options === null) {
      return Effect.fail(new InvalidPoolOptions({ pool: "(unnamed)", option: "(options)", reason: "must be an object" }))
    }
    const unknown = checkKnownKeys(options, optionKeys, String(options.name))
    if (unknown !== undefined) return Effect.fail(unknown)
    const fail = (option: string, reason: string) =>
      Effect.fail(new InvalidPoolOptions({ pool: String(options.name), option, reason }))
    if (typeof options.name !== "string" || options.name === "") return fail("name", "must be a non-empty string")
    if (!Effect.isEffect(options.acquire)) return fail("acquire", "must be an Effect that opens a connection")
    const min = options.min ?? defaults.min
    const max = options.max ?? defaults.max
    const concurrency = options.concurrency ?? defaults.concurrency
    if (!Number.isInteger(min) || min < 0) return fail("min", `must be an integer >= 0, got ${min}`)
    if (!Number.isInteger(max) || max < 1) return fail("max", `must be an integer >= 1, got ${max}`)
    if (min > max) return fail("min", `must not exceed max (${max}), got ${min}`)
    if (!Number.isInteger(concurrency) || concurrency < 1) {
      return fail("concurrency", `must be an integer >= 1, got ${concurrency}`)
    }
    const durations = [
      "idleTimeToLive",
      "maxLifetime",
      "acquireTimeout",
      "connectTimeout",
      "validationWindow",
      "keepAliveInterval",
      "leakDetectionThreshold",
      "drainTimeout",
      "housekeepingInterval"
    ] as const
    for (const key of durations) {
      const value = options[key]
      if (value === undefined) continue
      const millis = optionalMillis(value)
      if (millis === undefined || Number.isNaN(millis) || (typeof value === "number" && Number.isNaN(value))) {
        return fail(key, `is not a duration (got ${showValue(value, key)}): give milliseconds or a string like "5 seconds"`)
      }
      if (millis < 0) return fail(key, `must not be negative, got ${showValue(value, key)}`)
    }
    const keepAlive = optionalMillis(options.keepAliveInterval)
    const idleTtl = millisOf(options.idleTimeToLive, defaults.idleTimeToLive)
    if (keepAlive !== undefined && min < max && keepAlive <= idleTtl) {
      return fail(
        "keepAliveInterval",
        `must exceed idleTimeToLive (${idleTtl} ms) so that probes do not keep surplus idle connections open`
      )
    }
    return Effect.void
  })

/** @internal */
export const make = <A, E, R>(
  options: ConnectionPool.Options<A, E, R>,
  shared?: {
    /** A limit shared with other pools (one per identity): see `Capacity`. */
    readonly capacity: Capacity
    /** Told which connection is about to be closed to make room for another pool (it may be re-bound there). */
    readonly onEvict?: ((connection: A) => void) | undefined
    /** Given a way to send this pool's queued borrowers elsewhere (they fail with `PoolClosed`): see `IdentityPool.resize`. */
    readonly onReady?: ((controls: { readonly sendWaitersAway: () => void }) => void) | undefined
  }
): Effect.Effect<
  ConnectionPool.ConnectionPool<A, E>,
  InvalidPoolOptions,
  Exclude<R, Scope.Scope> | Scope.Scope
> =>
  Effect.gen(function*() {
    yield* checkOptions(options)
    const name = options.name
    const min = options.min ?? defaults.min
    const max = options.max ?? defaults.max
    const concurrency = options.concurrency ?? defaults.concurrency
    const maxLifetime = millisOf(options.maxLifetime, defaults.maxLifetime)
    const acquireTimeout = millisOf(options.acquireTimeout, defaults.acquireTimeout)
    const connectTimeout = millisOf(options.connectTimeout, defaults.connectTimeout)
    const validationWindow = millisOf(options.validationWindow, defaults.validationWindow)
    const drainTimeout = millisOf(options.drainTimeout, defaults.drainTimeout)
    const keepAliveInterval = optionalMillis(options.keepAliveInterval)
    const leakThreshold = optionalMillis(options.leakDetectionThreshold)
    const validate = options.validate
    const isBroken = options.isBroken

    const clock = yield* Clock.Clock
    const outerScope = yield* Scope.Scope
    const m = metrics.forPool(name)
    const metricContext = yield* Effect.context<never>()

    const entries = new Set<Entry<A>>()
    const byConnection = new Map<A, Entry<A>>()
    /** Borrows in progress, across all entries. */
    let activeLeases = 0
    const counters = {
      created: 0,
      destroyed: 0,
      acquireFailures: 0,
      timeouts: 0,
      validationFailures: 0,
      leaksDetected: 0,
      borrows: 0
    }
    let nextId = 1
    let immediateBorrows = 0
    let draining = false
    /** Called when the last lease ends while draining. */
    let onDrained: (() => void) | undefined

    // --- opening and closing connections -----------------------------------

    // One permit per open connection, returned only once the connection is
    // closed. `Pool` starts a replacement for an invalidated connection while
    // its borrower still holds it; the permit makes that replacement wait, so
    // no more than `max` connections are ever open at once.
    const permits = Semaphore.makeUnsafe(max)
    const capacity = shared?.capacity
    // Shared with other pools: this pool can give up its least recently used
    // idle connection when another needs room.
    const evictable: Evictable = {
      oldestIdleAt: () => oldestIdle()?.lastUsedAt,
      evictOldestIdle: () =>
        Effect.suspend(() => {
          const entry = oldestIdle()
          // Just opened, `Pool` may not hold it yet: it cannot be invalidated until it does.
          if (entry === undefined || !isPooled(entry)) return Effect.succeed(false)
          shared?.onEvict?.(entry.connection)
          return Effect.as(retire(entry), true)
        })
    }
    /** Whether `Pool` holds the entry yet (a just-opened one is handed back to `Pool` a step later). */
    const isPooled = (entry: Entry<A>) => {
      for (const item of pool.state.items) {
        if (item.exit._tag === "Success" && item.exit.value === entry) return true
      }
      return false
    }
    // A new connection is not given up while a borrower here waits for it, or
    // two pools sharing a limit could take each other's new connections forever.
    const oldestIdle = (): Entry<A> | undefined => {
      let oldest: Entry<A> | undefined
      const awaited = pool.state.waiters.size > 0 || queue.size > 0 || directBorrowers > 0
      for (const entry of entries) {
        if (entry.holders.length > 0 || entry.retired) continue
        if (!entry.lent && awaited) continue
        if (oldest === undefined || entry.lastUsedAt < oldest.lastUsedAt) oldest = entry
      }
      return oldest
    }
    if (capacity !== undefined) {
      const unregister = capacity.register(evictable)
      yield* Effect.addFinalizer(() => Effect.sync(unregister))
    }
    const takePermit: Effect.Effect<void, never, Scope.Scope> = capacity === undefined
      ? permits.takeScoped(1)
      : Effect.acquireRelease(capacity.take(evictable), () => Effect.sync(() => capacity.release()))

    const acquireEntry: Effect.Effect<Entry<A>, E | ConnectTimeout, Scope.Scope | Exclude<R, Scope.Scope>> = Effect
      .gen(function*() {
        // Registered first, so released last: after the driver closed the connection.
        yield* takePermit
        const connection = yield* (options.acquire as Effect.Effect<A, E, Scope.Scope | Exclude<R, Scope.Scope>>).pipe(
          Effect.timeoutOrElse({
            duration: connectTimeout,
            orElse: () => Effect.fail(new ConnectTimeout({ pool: name, timeoutMillis: connectTimeout }))
          })
        )
        const now = clock.currentTimeMillisUnsafe()
        const entry: Entry<A> = {
          connection,
          id: nextId++,
          createdAt: now,
          lastUsedAt: now,
          lent: false,
          holders: [],
          retired: false
        }
        entries.add(entry)
        byConnection.set(connection, entry)
        counters.created++
        m.created.updateUnsafe(1, metricContext)
        // Its borrower may have given up waiting: then it is idle, and another
        // pool sharing the limit may take its place.
        if (capacity !== undefined) capacity.idleAppeared()
        // Runs before the driver's own finalizer closes the connection.
        yield* Effect.addFinalizer(() =>
          Effect.sync(() => {
            entries.delete(entry)
            byConnection.delete(connection)
            counters.destroyed++
            m.destroyed.updateUnsafe(1, metricContext)
            // Capacity freed: a waiter may now have a new connection opened.
            wakeOne()
          })
        )
        return entry
      })
      .pipe(
        Effect.tapError(() =>
          Effect.sync(() => {
            counters.acquireFailures++
            m.acquireFailures.updateUnsafe(1, metricContext)
          })
        )
      )

    const poolScope = yield* Scope.make()
    const pool = yield* Pool.makeWithTTL({
      acquire: acquireEntry,
      min,
      max,
      concurrency,
      timeToLive: millisOf(options.idleTimeToLive, defaults.idleTimeToLive),
      timeToLiveStrategy: "usage"
    }).pipe(Scope.provide(poolScope))

    const retire = (entry: Entry<A>) =>
      Effect.suspend(() => {
        if (entry.retired) return Effect.void
        entry.retired = true
        return Pool.invalidate(pool, entry)
      })

    // --- lending -----------------------------------------------------------

    const failValidation = (entry: Entry<A>) =>
      Effect.suspend(() => {
        counters.validationFailures++
        m.validationFailures.updateUnsafe(1, metricContext)
        return retire(entry)
      })

    const isValid = (entry: Entry<A>): Effect.Effect<boolean> =>
      validate === undefined ? Effect.succeed(true) : validate(entry.connection).pipe(
        Effect.map((result) => result !== false),
        Effect.timeoutOrElse({ duration: connectTimeout, orElse: () => Effect.succeed(false) }),
        Effect.catchCause(() => Effect.succeed(false))
      )

    /**
     * Checks an entry just taken from the pool: too old, or failing
     * validation, and it is retired (the caller then borrows another).
     */
    const checkOut = (entry: Entry<A>): Effect.Effect<boolean> => {
      const now = clock.currentTimeMillisUnsafe()
      if (entry.retired) return Effect.succeed(false)
      if (now - entry.createdAt >= maxLifetime) return Effect.as(retire(entry), false)
      if (validate !== undefined && entry.holders.length === 0 && now - entry.lastUsedAt >= validationWindow) {
        return Effect.flatMap(isValid(entry), (ok) => ok ? Effect.succeed(true) : Effect.as(failValidation(entry), false))
      }
      return Effect.succeed(true)
    }

    const beginLease = (
      entry: Entry<A>,
      fiber: Fiber.Fiber<unknown, unknown>,
      startedAt: number,
      now: number
    ): Lease<A> => {
      counters.borrows++
      // Updating an Effect metric costs more than an immediate borrow, so only
      // borrows that waited are timed; the rest are counted, and the count
      // flushed by the housekeeper.
      if (now > startedAt) m.acquireTime.updateUnsafe(now - startedAt, metricContext)
      else immediateBorrows++
      entry.lent = true
      entry.lastUsedAt = now
      const lease: Lease<A> = { entry, fiber, since: now, reported: false }
      entry.holders.push(lease)
      activeLeases++
      return lease
    }

    /**
     * Ends a lease, after `Pool` took the connection back: retires the
     * connection if it broke or outlived `maxLifetime`, then wakes the next
     * waiting borrower.
     */
    const endLease = (lease: Lease<A> | undefined, exit: Exit.Exit<unknown, unknown>): Effect.Effect<void> => {
      if (lease === undefined) {
        wakeOne()
        return Effect.void
      }
      const entry = lease.entry
      const holders = entry.holders
      const index = holders.indexOf(lease)
      holders[index] = holders[holders.length - 1]!
      holders.pop()
      activeLeases--
      if (activeLeases === 0 && onDrained !== undefined) onDrained()
      entry.lastUsedAt = clock.currentTimeMillisUnsafe()
      const broken = isBroken !== undefined && Exit.isFailure(exit) &&
        exit.cause.reasons.some((reason) => reason._tag === "Fail" && isBroken(reason.error))
      const shrunk = capacity !== undefined && entry.holders.length === 0 && capacity.overLimit()
      if (broken || shrunk || entry.lastUsedAt - entry.createdAt >= maxLifetime) {
        // Closing it frees capacity: its finalizer wakes the next waiter (shrunk: see `Capacity.resize`).
        return retire(entry)
      }
      wakeOne()
      if (capacity !== undefined && entry.holders.length === 0) capacity.idleAppeared()
      return Effect.void
    }

    /** Whether an entry can be lent without checking it first (the common case). */
    const isFresh = (entry: Entry<A>, now: number) =>
      !entry.retired && now - entry.createdAt < maxLifetime &&
      (validate === undefined || entry.holders.length > 0 || now - entry.lastUsedAt < validationWindow)

    /**
     * One borrow through `Pool.use` — the fast path, no `Scope` per borrow.
     * Answers RETRY when the connection it got turned out unusable.
     */
    const attempt = <B, E2, R2>(
      fiber: Fiber.Fiber<unknown, unknown>,
      f: (connection: A) => Effect.Effect<B, E2, R2>,
      startedAt: number,
      token: DirectToken | undefined,
      immediate: boolean
    ): Effect.Effect<B | typeof RETRY, E | E2 | ConnectTimeout, R2> => {
        let lease: Lease<A> | undefined
        let now = startedAt
        const start = (entry: Entry<A>): Effect.Effect<B, E2, R2> => {
          lease = beginLease(entry, fiber, startedAt, now)
          return f(entry.connection)
        }
        const leased = Pool.use(pool, (entry): Effect.Effect<B | typeof RETRY, E2, R2> => {
          settle(token)
          // An immediate borrow took no time: its start time is the time now.
          if (!immediate) now = clock.currentTimeMillisUnsafe()
          if (isFresh(entry, now)) return start(entry)
          return Effect.flatMap(
            checkOut(entry),
            (ok): Effect.Effect<B | typeof RETRY, E2, R2> => {
              if (!ok) return Effect.succeed(RETRY)
              now = clock.currentTimeMillisUnsafe()
              return start(entry)
            }
          )
        })
        return Effect.onExit(leased, (exit) => {
          settle(token)
          return endLease(lease, exit)
        })
    }

    const snapshot = () => {
      let idle = 0
      let inUse = 0
      for (const item of pool.state.items) {
        if (item.exit._tag !== "Success") continue
        if (item.refCount > 0) inUse++
        else idle++
      }
      return { idle, inUse, pending: pool.state.waiters.size + queue.size, max }
    }

    const timeoutError = () => {
      counters.timeouts++
      m.timeouts.updateUnsafe(1, metricContext)
      return new PoolTimeout({ pool: name, timeoutMillis: acquireTimeout, snapshot: snapshot() })
    }

    // --- admission: who may go to `Pool` now, and who waits here ------------
    //
    // `Pool` queues borrowers itself, but a borrower waiting inside `Pool`
    // can only be bounded by racing a timer fiber against it, which costs
    // more than the borrow. So borrowers wait here instead, in a FIFO queue
    // with one deadline timer for all of them, and go to `Pool` only when
    // it can lend at once, or when it may open a new connection for them.

    const queue = new WaitQueue<PoolTimeout | PoolClosed>()
    /** Borrowers sent to `Pool` to open a new connection, not yet served. */
    let directBorrowers = 0
    /** Wakes the deadline timer when the queue gets its first waiter. */
    let wakeTimer: (() => void) | undefined

    /** True when `Pool` can lend an idle connection at once. */
    const canLendNow = () => {
      const head = pool.state.availableHead
      return pool.state.waiters.size === 0 && head !== undefined && head.exit._tag === "Success"
    }

    /** True when `Pool` may open another connection for one more borrower. */
    const canGrow = () => entries.size + directBorrowers < max

    // Waking resumes the waiter inline; a release inside a woken borrower's
    // work wakes the next one, and so on: bound the depth, then go through
    // the scheduler, or 1,000 synchronous borrowers overflow the stack.
    let wakeDepth = 0
    const wakeOne = () => {
      const waiter = queue.shift()
      if (waiter === undefined) return
      woken.add(waiter)
      if (wakeDepth < 32) {
        wakeDepth++
        try {
          waiter.resume(undefined)
        } finally {
          wakeDepth--
        }
      } else {
        setImmediate(() => waiter.resume(undefined))
      }
    }
    /** Waiters woken but not yet running: one interrupted in between passes its wake on. */
    const woken = new WeakSet<Waiter<PoolTimeout | PoolClosed>>()

    const wait = (deadline: number, returning: boolean) =>
      Effect.callback<void, PoolTimeout | PoolClosed>((resume) => {
        // Checked again here, synchronously, so no wake-up is lost.
        if (draining) return resume(Effect.fail(new PoolClosed({ pool: name })))
        if (canLendNow() || canGrow()) return resume(Effect.void)
        const waiter: Waiter<PoolTimeout | PoolClosed> = {
          deadline,
          resume: (failure) => resume(failure === undefined ? Effect.void : Effect.fail(failure)),
          prev: undefined,
          next: undefined,
          queued: false
        }
        if (returning) queue.pushFront(waiter)
        else queue.pushBack(waiter)
        if (wakeTimer !== undefined) wakeTimer()
        return Effect.sync(() => {
          if (waiter.queued) queue.remove(waiter)
          else if (woken.has(waiter)) wakeOne()
        })
      })

    /** Fails waiters whose deadline has passed; sleeps until the next deadline. */
    const deadlineTimer = Effect.gen(function*() {
      while (true) {
        const head = queue.head
        if (head === undefined) {
          yield* Effect.callback<void>((resume) => {
            wakeTimer = () => {
              wakeTimer = undefined
              resume(Effect.void)
            }
            return Effect.sync(() => {
              wakeTimer = undefined
            })
          })
          continue
        }
        const now = clock.currentTimeMillisUnsafe()
        if (head.deadline > now) {
          yield* Effect.sleep(head.deadline - now)
          continue
        }
        while (queue.head !== undefined && queue.head.deadline <= now) queue.shift()!.resume(timeoutError())
        // A safety net: a connection is idle while borrowers wait.
        if (queue.size > 0 && canLendNow()) wakeOne()
      }
    })

    /**
     * Waits (up to the deadline) until this borrower may go to `Pool`.
     * Answers whether it goes as a "direct" borrower, for whom `Pool` opens
     * a new connection.
     */
    const admit = (
      deadline: number,
      returning: boolean,
      token: DirectToken
    ): Effect.Effect<void, PoolTimeout | PoolClosed> =>
      Effect.suspend(() => {
        if (draining) return Effect.fail(new PoolClosed({ pool: name }))
        if (canLendNow()) return Effect.void
        if (canGrow()) {
          directBorrowers++
          token.direct = true
          return Effect.void
        }
        return Effect.flatMap(wait(deadline, returning), () => admit(deadline, true, token))
      })

    /** Ends a "direct" borrower's claim (once, whichever of lease or exit comes first). */
    const settle = (token: DirectToken | undefined) => {
      if (token !== undefined && token.direct) {
        token.direct = false
        directBorrowers--
      }
    }

    /** Admits, then borrows; the claim is settled on any exit, even an interruption in between. */
    const admitted = <X, EX, RX>(
      deadline: number,
      then: (token: DirectToken) => Effect.Effect<X, EX, RX>
    ): Effect.Effect<X, EX | PoolTimeout | PoolClosed, RX> =>
      Effect.suspend(() => {
        const token: DirectToken = { direct: false }
        return Effect.onExit(
          Effect.flatMap(admit(deadline, false, token), () => then(token)),
          () => Effect.sync(() => settle(token))
        )
      })

    const use = <B, E2, R2>(
      f: (connection: A) => Effect.Effect<B, E2, R2>
    ): Effect.Effect<B, E | E2 | ConnectionPool.BorrowError, R2> =>
      Effect.withFiber((fiber) => {
        const startedAt = clock.currentTimeMillisUnsafe()
        const deadline = startedAt + acquireTimeout
        const borrow = (first: boolean): Effect.Effect<B, E | E2 | ConnectionPool.BorrowError, R2> =>
          Effect.flatMap(
            // The fast path skips `admit` when a connection is idle.
            !draining && queue.size === 0 && canLendNow()
              ? attempt(fiber, f, startedAt, undefined, first)
              : admitted(deadline, (token) => attempt(fiber, f, startedAt, token, false)),
            (result) => result === RETRY ? borrow(false) : Effect.succeed(result as B)
          )
        return borrow(true)
      })

    const get: Effect.Effect<A, E | ConnectionPool.BorrowError, Scope.Scope> = Effect.withFiber((fiber) =>
      Effect.gen(function*() {
        const scope = yield* Scope.Scope
        const startedAt = clock.currentTimeMillisUnsafe()
        const deadline = startedAt + acquireTimeout
        while (true) {
          const attemptScope = yield* Scope.fork(scope, "sequential")
          const held: { lease?: Lease<A> } = {}
          // Added before `Pool.get` adds its release, so it runs after it:
          // the lease ends once `Pool` has the connection back.
          yield* Scope.addFinalizer(attemptScope, Effect.suspend(() => endLease(held.lease, Exit.void)))
          const entry = yield* admitted(deadline, () => Pool.get(pool).pipe(Scope.provide(attemptScope))).pipe(
            Effect.onError((cause) => Scope.close(attemptScope, Exit.failCause(cause)))
          )
          if (!(yield* checkOut(entry))) {
            yield* Scope.close(attemptScope, Exit.void)
            continue
          }
          held.lease = beginLease(entry, fiber, startedAt, clock.currentTimeMillisUnsafe())
          return entry.connection
        }
      })
    )

    const allLeases = (): Array<Lease<A>> => {
      const all: Array<Lease<A>> = []
      for (const entry of entries) all.push(...entry.holders)
      return all
    }

    // --- housekeeping: lifetime, keep-alive, leaks --------------------------

    const isStale = (entry: Entry<A>, now: number) =>
      keepAliveInterval !== undefined && !entry.retired && entry.holders.length === 0 &&
      now - entry.lastUsedAt >= keepAliveInterval

    /**
     * Probes stale idle connections. `Pool` lends the most recently used
     * connection first, so the stale ones sit at the tail of the idle list:
     * borrow idle connections one after another, holding each, until every
     * stale one has been reached or nothing idle is left.
     */
    const keepAliveSweep = (now: number) =>
      Effect.suspend(() => {
        let borrowed = 0
        return Effect.scoped(Effect.gen(function*() {
          let remaining = 0
          for (const entry of entries) if (isStale(entry, now)) remaining++
          const scope = yield* Scope.Scope
          while (remaining > 0 && queue.size === 0 && canLendNow()) {
            const entry = yield* Pool.get(pool).pipe(Scope.provide(scope))
            borrowed++
            if (!isStale(entry, now)) continue
            remaining--
            if (yield* isValid(entry)) entry.lastUsedAt = clock.currentTimeMillisUnsafe()
            else yield* failValidation(entry)
          }
        })).pipe(Effect.ensuring(Effect.sync(() => {
          // Each connection given back can serve one waiter.
          for (let i = 0; i < borrowed; i++) wakeOne()
        })))
      })

    const housekeeping = Effect.gen(function*() {
      const now = clock.currentTimeMillisUnsafe()
      for (const entry of entries) {
        if (entry.retired) continue
        if (entry.holders.length === 0 && now - entry.createdAt >= maxLifetime) {
          yield* retire(entry)
        }
      }
      if (keepAliveInterval !== undefined && validate !== undefined) {
        yield* Effect.catchCause(keepAliveSweep(now), () => Effect.void)
      }
      if (leakThreshold !== undefined) {
        for (const lease of allLeases()) {
          if (lease.reported || now - lease.since < leakThreshold) continue
          lease.reported = true
          counters.leaksDetected++
          m.leaks.updateUnsafe(1, metricContext)
          const span = Context.getOption(lease.fiber.context, Tracer.ParentSpan)
          yield* Effect.logWarning(
            `pool "${name}": connection #${lease.entry.id} has been borrowed for ${now - lease.since} ms ` +
              `(threshold ${leakThreshold} ms); the borrower may never return it`
          ).pipe(
            Effect.annotateLogs({
              pool: name,
              connection: lease.entry.id,
              borrowerFiber: lease.fiber.id,
              borrowerSpan: span._tag === "Some" && span.value._tag === "Span" ? span.value.name : "none",
              traceId: span._tag === "Some" ? span.value.traceId : "none"
            })
          )
        }
      }
      // A safety net: a wake lost to a borrower interrupted just after it was woken.
      if (queue.size > 0 && canLendNow()) wakeOne()
      // A safety net for pools sharing a limit: wake a waiter while a connection here is idle.
      if (capacity !== undefined && oldestIdle() !== undefined) capacity.idleAppeared()
      if (immediateBorrows > 0) {
        m.immediateBorrows.updateUnsafe(immediateBorrows, metricContext)
        immediateBorrows = 0
      }
      const s = snapshot()
      m.idle.updateUnsafe(s.idle, metricContext)
      m.inUse.updateUnsafe(s.inUse, metricContext)
      m.pending.updateUnsafe(s.pending, metricContext)
    })

    yield* Effect.forkIn(deadlineTimer, outerScope)

    yield* housekeeping.pipe(
      Effect.catchCause((cause) => Effect.logError("pool housekeeping failed", cause)),
      Effect.repeat(Schedule.spaced(millisOf(options.housekeepingInterval, defaults.housekeepingInterval))),
      Effect.forkIn(outerScope)
    )

    shared?.onReady?.({
      sendWaitersAway: () => {
        while (queue.size > 0) queue.shift()!.resume(new PoolClosed({ pool: name }))
      }
    })

    // --- drain on shutdown -------------------------------------------------

    yield* Scope.addFinalizer(
      outerScope,
      Effect.gen(function*() {
        draining = true
        while (queue.size > 0) queue.shift()!.resume(new PoolClosed({ pool: name }))
        if (activeLeases > 0) {
          yield* Effect.timeoutOption(
            Effect.callback<void>((resume) => {
              onDrained = () => resume(Effect.void)
            }),
            drainTimeout
          )
        }
        if (activeLeases > 0) {
          yield* Effect.logWarning(
            `pool "${name}": ${activeLeases} borrow(s) still borrowed after the ${drainTimeout} ms drain timeout; ` +
              `interrupting their borrowers`
          )
          for (const lease of allLeases()) lease.fiber.interruptUnsafe()
        }
        yield* Scope.close(poolScope, Exit.void)
      })
    )

    // --- warm-up -----------------------------------------------------------

    if (min > 0 && options.warmUp !== false) {
      // `Pool` starts opening `min` connections at once; wait for them by
      // holding `min` at once (not counted as borrows), so they are distinct.
      const warm = yield* Effect.scoped(Effect.forEach(
        Array.from({ length: min }, () => undefined),
        () =>
          Effect.result(Effect.timeoutOrElse(Pool.get(pool), {
            duration: acquireTimeout,
            orElse: () => Effect.fail(timeoutError())
          })),
        { concurrency: "unbounded" }
      ))
      const failed = warm.filter((r) => r._tag === "Failure")
      if (failed.length > 0) {
        yield* Effect.logWarning(
          `pool "${name}": warm-up opened ${min - failed.length} of ${min} connections; ` +
            `the rest will be retried on demand`
        )
      }
    }

    const stats = Effect.sync((): ConnectionPool.Stats => {
      const s = snapshot()
      return {
        name,
        idle: s.idle,
        inUse: s.inUse,
        pending: s.pending,
        min,
        max,
        ...counters,
        draining
      }
    })

    const invalidateIdle = Effect.suspend(() => {
      const idle = [...entries].filter((entry) => entry.holders.length === 0 && !entry.retired)
      return Effect.as(Effect.forEach(idle, retire, { discard: true }), idle.length)
    })

    return {
      name,
      use,
      get,
      invalidate: (connection: A) =>
        Effect.suspend(() => {
          const entry = byConnection.get(connection)
          return entry === undefined ? Effect.void : retire(entry)
        }),
      invalidateIdle,
      stats
    }
  })
