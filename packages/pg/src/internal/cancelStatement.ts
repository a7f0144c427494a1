/**
 * Sends a cancel request for a postgres.js statement, quietly.
 *
 * postgres.js's `PendingQuery.cancel()` creates the promise of its cancel
 * request and drops it (`return this.canceller && (this.canceller(this), …)`),
 * so when the cancel socket fails (a reset, a server gone) the process sees an
 * unhandled rejection. The one private access, isolated here: call the
 * query's `canceller` ourselves and keep its promise. When postgres.js returns
 * that promise from `cancel()`, this falls back to it unchanged.
 *
 * @internal
 */
interface Cancellable {
  canceller?: ((query: unknown) => Promise<unknown>) | null
  cancel?: () => unknown
}

/** Whether `pending` can be cancelled on the server. */
export const isCancellable = (pending: unknown): boolean =>
  typeof (pending as Cancellable | null)?.cancel === "function"

/** Asks the server to cancel `pending`; a failure of the request itself is ignored (the statement's own outcome tells). */
export const cancelStatement = (pending: unknown): void => {
  const query = pending as Cancellable
  const canceller = query.canceller
  if (typeof canceller === "function") {
    query.canceller = null
    canceller.call(undefined, query).catch(() => undefined)
    return
  }
  Promise.resolve(query.cancel?.()).catch(() => undefined)
}
