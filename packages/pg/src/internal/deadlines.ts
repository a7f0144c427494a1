/**
 * Client-side statement deadlines on Effect's `Clock`, checked by one shared
 * sweep per clock instead of a timer per statement (arming and clearing a
 * timer per statement costs more than a `select 1` on loopback). A deadline
 * fires up to one tick late.
 *
 * The sweep sleeps on the clock it was made for and reads that clock's time,
 * so under `TestClock` deadlines expire when the test adjusts the clock, and
 * never by themselves. It runs only while a statement is pending (no timer
 * otherwise).
 *
 * @internal
 */
import { Clock, Duration, Effect } from "effect"
import type { Fiber } from "effect"

/** What an expired statement rejects with. */
export const TIMED_OUT = Symbol("TIMED_OUT")

/** How often the sweep looks at the pending deadlines. */
export const TICK_MILLIS = 50

const TICK = Duration.millis(TICK_MILLIS)

/** One armed deadline (see {@link Deadlines.arm}). */
export interface Deadline {
  readonly start: number
  readonly at: number
  readonly expire: () => void
}

/** Statement deadlines on one clock. */
export interface Deadlines {
  /**
   * Settles like `promise`, or rejects with {@link TIMED_OUT} once `millis`
   * have passed on the clock (the promise is still awaited, so nothing goes
   * unhandled). `settled`, when given, hears how long `promise` took once it
   * settles (timed out or not), without a clock read or promise reaction of
   * its own.
   */
  readonly bounded: <A>(promise: Promise<A>, millis: number, settled?: (elapsedMillis: number) => void) => Promise<A>
  /**
   * `bounded` without a promise of its own: `expire` is called once `millis`
   * have passed on the clock, unless the returned deadline is {@link disarm}ed first.
   */
  readonly arm: (millis: number, expire: () => void) => Deadline
  /** Cancels a deadline; returns the milliseconds since it was armed. */
  readonly disarm: (deadline: Deadline) => number
  /** Deadlines not yet settled or expired (tests). */
  readonly pending: () => number
}

const make = (clock: Clock.Clock, fork: (sweep: Effect.Effect<void>) => unknown): Deadlines => {
  const pending = new Set<Deadline>()
  let sweeping = false
  const sweep = Effect.gen(function*() {
    while (pending.size > 0) {
      yield* clock.sleep(TICK)
      const now = clock.currentTimeMillisUnsafe()
      for (const deadline of pending) {
        if (deadline.at <= now) {
          pending.delete(deadline)
          deadline.expire()
        }
      }
    }
    sweeping = false
  })
  const arm = (millis: number, expire: () => void): Deadline => {
    const start = clock.currentTimeMillisUnsafe()
    const deadline: Deadline = { start, at: start + millis, expire }
    pending.add(deadline)
    if (!sweeping) {
      sweeping = true
      fork(sweep)
    }
    return deadline
  }
  const disarm = (deadline: Deadline): number => {
    pending.delete(deadline)
    return clock.currentTimeMillisUnsafe() - deadline.start
  }
  return {
    bounded: <A>(promise: Promise<A>, millis: number, settled?: (elapsedMillis: number) => void): Promise<A> =>
      new Promise<A>((resolve, reject) => {
        const deadline = arm(millis, () => reject(TIMED_OUT))
        promise.then(
          (value) => {
            pending.delete(deadline)
            if (settled !== undefined) settled(clock.currentTimeMillisUnsafe() - deadline.start)
            resolve(value)
          },
          (error) => {
            pending.delete(deadline)
            if (settled !== undefined) settled(clock.currentTimeMillisUnsafe() - deadline.start)
            reject(error)
          }
        )
      }),
    arm,
    disarm,
    pending: () => pending.size
  }
}

const byClock = new WeakMap<Clock.Clock, Deadlines>()
const systemClock = Clock.Clock.defaultValue()

/**
 * The deadlines of `fiber`'s clock (one sweep per clock). The sweep of a
 * clock other than the system's (a `TestClock`) runs with the services of
 * the first fiber that asked, so it is scheduled like that fiber's work.
 */
export const forFiber = (fiber: Fiber.Fiber<unknown, unknown>): Deadlines => {
  const clock = fiber.getRef(Clock.Clock)
  let deadlines = byClock.get(clock)
  if (deadlines === undefined) {
    byClock.set(
      clock,
      deadlines = make(clock, clock === systemClock ? (sweep) => Effect.runFork(sweep) : Effect.runForkWith(fiber.context))
    )
  }
  return deadlines
}

/** The deadlines of the running fiber's clock (`TestClock` in tests). */
export const current: Effect.Effect<Deadlines> = Effect.withFiber((fiber) => Effect.succeed(forFiber(fiber)))
