/**
 * The borrowers waiting for a connection, in order, each with its deadline.
 * A doubly linked list: O(1) to add at either end, take the head, or remove
 * a waiter that gave up.
 */

/** One waiting borrower. `resume` is called once: to wake it or fail it. */
export interface Waiter<E> {
  readonly deadline: number
  readonly resume: (failure: E | undefined) => void
  prev: Waiter<E> | undefined
  next: Waiter<E> | undefined
  queued: boolean
  /** Taken off the queue to be woken, and not yet running (one interrupted in between passes its wake on). */
  woken: boolean
}

export class WaitQueue<E> {
  head: Waiter<E> | undefined = undefined
  tail: Waiter<E> | undefined = undefined
  size = 0

  /** Adds a newcomer at the back. */
  pushBack(waiter: Waiter<E>): void {
    waiter.queued = true
    waiter.prev = this.tail
    waiter.next = undefined
    if (this.tail === undefined) this.head = waiter
    else this.tail.next = waiter
    this.tail = waiter
    this.size++
  }

  /**
   * Puts back a waiter that was woken but lost the race for the connection.
   * It keeps its place at the front, in deadline order among the other
   * returning waiters, so deadlines stay ordered from the head.
   */
  pushFront(waiter: Waiter<E>): void {
    // Waiters are in deadline order; a returning one had (nearly) the
    // earliest deadline, so this walk is short.
    let after: Waiter<E> | undefined = undefined
    let before = this.head
    while (before !== undefined && before.deadline < waiter.deadline) {
      after = before
      before = before.next
    }
    waiter.queued = true
    waiter.prev = after
    waiter.next = before
    if (after === undefined) this.head = waiter
    else after.next = waiter
    if (before === undefined) this.tail = waiter
    else before.prev = waiter
    this.size++
  }

  /** Takes the waiter at the head, if any. */
  shift(): Waiter<E> | undefined {
    const waiter = this.head
    if (waiter !== undefined) this.remove(waiter)
    return waiter
  }

  /** Removes a waiter (no-op when it is not queued). */
  remove(waiter: Waiter<E>): void {
    if (!waiter.queued) return
    waiter.queued = false
    if (waiter.prev === undefined) this.head = waiter.next
    else waiter.prev.next = waiter.next
    if (waiter.next === undefined) this.tail = waiter.prev
    else waiter.next.prev = waiter.prev
    waiter.prev = undefined
    waiter.next = undefined
    this.size--
  }
}
