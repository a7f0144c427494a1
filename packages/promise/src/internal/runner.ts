import { Cause, Exit, Stream } from "effect"
import type { Context, Effect, ManagedRuntime } from "effect"
import { Aborted, ClientClosed, Interrupted } from "../PromiseError.ts"

/** Options every call takes. */
export interface CallOptions {
  /** Aborting it interrupts the call, which then rejects with `Aborted`. */
  readonly signal?: AbortSignal | undefined
}

/** A failure of the caller's own code (a transaction body), handed back as is. */
export class Foreign {
  constructor(readonly error: unknown) {}
}

const asError = (error: unknown): unknown => (error instanceof Foreign ? error.error : error)

/**
 * Runs the Effect client's operations as Promises on one `ManagedRuntime`:
 * typed failures reject with the typed error itself, interruption with
 * `Aborted` (the signal) or `ClientClosed` (`close()`), and `close()` ends
 * every open stream before the runtime's layer (pools, sockets) is released.
 */
export class Runner<R> {
  closed = false
  private closing: Promise<void> | undefined
  private readonly streams = new Set<{ return(): Promise<unknown> }>()

  constructor(
    readonly name: string,
    private readonly runtime: ManagedRuntime.ManagedRuntime<R, unknown>,
    private readonly context: Context.Context<R>
  ) {}

  run<A, E>(effect: Effect.Effect<A, E, R>, options?: CallOptions): Promise<A> {
    const signal = options?.signal
    if (this.closed) return Promise.reject(new ClientClosed({ client: this.name }))
    if (signal?.aborted === true) return Promise.reject(new Aborted({ reason: signal.reason }))
    return this.runtime.runPromiseExit(effect, signal === undefined ? undefined : { signal }).then((exit) => {
      if (Exit.isSuccess(exit)) return exit.value
      throw this.errorOf(exit.cause, signal)
    })
  }

  errorOf(cause: Cause.Cause<unknown>, signal: AbortSignal | undefined): unknown {
    const failure = cause.reasons.find(Cause.isFailReason)
    if (failure !== undefined) return asError(failure.error)
    if (Cause.hasInterruptsOnly(cause)) {
      if (signal?.aborted === true) return new Aborted({ reason: signal.reason })
      if (this.closed) return new ClientClosed({ client: this.name })
      return new Interrupted({ client: this.name })
    }
    return asError(Cause.squash(cause))
  }

  /** A stream as an async iterator: leaving the loop early (break, throw, abort, close) releases it. */
  iterate<A, E>(stream: Stream.Stream<A, E, R>, options?: CallOptions): AsyncIterableIterator<A> {
    const signal = options?.signal
    let inner: AsyncIterator<A> | undefined
    let finished = false
    const onAbort = () => void self.return()
    const finish = () => {
      if (finished) return
      finished = true
      this.streams.delete(self)
      signal?.removeEventListener("abort", onAbort)
    }
    const stopped = (): unknown =>
      signal?.aborted === true
        ? new Aborted({ reason: signal.reason })
        : this.closed
        ? new ClientClosed({ client: this.name })
        : undefined
    const self: AsyncIterableIterator<A> & { return(): Promise<IteratorResult<A>> } = {
      [Symbol.asyncIterator]() {
        return self
      },
      next: async (): Promise<IteratorResult<A>> => {
        if (finished) {
          const error = stopped()
          if (error !== undefined) throw error
          return { done: true, value: undefined }
        }
        if (inner === undefined) {
          const error = stopped()
          if (error !== undefined) {
            finish()
            throw error
          }
          inner = Stream.toAsyncIterableWith(stream, this.context)[Symbol.asyncIterator]()
          this.streams.add(self)
          signal?.addEventListener("abort", onAbort, { once: true })
        }
        try {
          const result = await inner.next()
          if (result.done === true) {
            finish()
            const error = stopped()
            if (error !== undefined) throw error
          }
          return result
        } catch (error) {
          finish()
          throw stopped() ?? asError(error)
        }
      },
      return: async (): Promise<IteratorResult<A>> => {
        const current = inner
        finish()
        if (current?.return !== undefined) await current.return()
        return { done: true, value: undefined }
      }
    }
    return self
  }

  /** Ends every open stream, interrupts every call in flight, and releases the runtime (idempotent). */
  close(): Promise<void> {
    if (this.closing === undefined) {
      this.closed = true
      this.closing = Promise.allSettled([...this.streams].map((s) => s.return())).then(() => this.runtime.dispose())
    }
    return this.closing
  }
}
