/**
 * Client-side statement deadlines, checked by one shared timer instead of a
 * timer per statement (arming and clearing a timer per statement costs more
 * than a `select 1` on loopback). A deadline fires up to one tick late.
 */

/** What an expired statement rejects with. */
export const TIMED_OUT = Symbol("TIMED_OUT")

const TICK_MILLIS = 50

interface Deadline {
  readonly at: number
  readonly expire: () => void
}

const pending = new Set<Deadline>()
let timer: ReturnType<typeof setInterval> | undefined

const sweep = () => {
  const now = Date.now()
  for (const deadline of pending) {
    if (deadline.at <= now) {
      pending.delete(deadline)
      deadline.expire()
    }
  }
  if (pending.size === 0 && timer !== undefined) {
    clearInterval(timer)
    timer = undefined
  }
}

/**
 * Settles like `promise`, or rejects with {@link TIMED_OUT} once `millis`
 * have passed (the promise is still awaited, so nothing goes unhandled).
 * `settled`, when given, hears how long `promise` took once it settles (timed
 * out or not), without a clock read or promise reaction of its own.
 */
export const bounded = <A>(
  promise: Promise<A>,
  millis: number,
  settled?: (elapsedMillis: number) => void
): Promise<A> =>
  new Promise<A>((resolve, reject) => {
    const start = Date.now()
    const deadline: Deadline = { at: start + millis, expire: () => reject(TIMED_OUT) }
    pending.add(deadline)
    if (timer === undefined) {
      timer = setInterval(sweep, TICK_MILLIS)
      // The statements' own sockets keep the process alive; the sweeper must not.
      timer.unref()
    }
    promise.then(
      (value) => {
        pending.delete(deadline)
        if (settled !== undefined) settled(Date.now() - start)
        resolve(value)
      },
      (error) => {
        pending.delete(deadline)
        if (settled !== undefined) settled(Date.now() - start)
        reject(error)
      }
    )
  })
