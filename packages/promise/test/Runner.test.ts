/**
 * The Promise bridge without servers: how exits become resolutions and
 * rejections, how signals and close() interrupt, and that leaving an
 * iteration early runs the stream's finalizers (what releases a connection).
 */
import type { Context } from "effect"
import { Data, Effect, Layer, ManagedRuntime, Stream } from "effect"
import { describe, expect, it } from "vitest"
import { Foreign, Runner } from "../src/internal/runner.ts"
import { Aborted, ClientClosed, tagOf } from "../src/PromiseError.ts"

class Boom extends Data.TaggedError("Boom")<{ readonly code: number }> {}

const makeRunner = async () => {
  const runtime = ManagedRuntime.make(Layer.empty)
  const context = (await runtime.context()) as Context.Context<never>
  return new Runner<never>("test", runtime, context)
}

/** Resolves when `flag()` holds (polling; no wall-clock bound). */
const until = async (flag: () => boolean) => {
  while (!flag()) await new Promise((r) => setTimeout(r, 5))
}

describe("Runner", () => {
  it("resolves with the value and rejects with the typed error itself", async () => {
    const runner = await makeRunner()
    expect(await runner.run(Effect.succeed(42))).toBe(42)
    const error = await runner.run(Effect.fail(new Boom({ code: 7 }))).then(() => undefined, (e: unknown) => e)
    expect(error).toBeInstanceOf(Boom)
    expect(error).toBeInstanceOf(Error)
    expect(tagOf(error)).toBe("Boom")
    expect((error as Boom).code).toBe(7)
    const defect = new RangeError("bug")
    await expect(runner.run(Effect.die(defect))).rejects.toBe(defect)
    const mine = { not: "an error" }
    await expect(runner.run(Effect.fail(new Foreign(mine)))).rejects.toBe(mine)
    await runner.close()
  })

  it("an AbortSignal interrupts the call (its finalizers run) and rejects with Aborted", async () => {
    const runner = await makeRunner()
    let started = false
    let finalized = false
    const controller = new AbortController()
    const call = runner.run(
      Effect.sync(() => (started = true)).pipe(
        Effect.andThen(Effect.never),
        Effect.ensuring(Effect.sync(() => (finalized = true)))
      ),
      { signal: controller.signal }
    ).then(() => undefined, (e: unknown) => e)
    await until(() => started)
    controller.abort("stop")
    const error = await call
    expect(error).toBeInstanceOf(Aborted)
    expect((error as Aborted).reason).toBe("stop")
    expect((error as Error).name).toBe("AbortError")
    expect(finalized).toBe(true)
    let ran = false
    await expect(runner.run(Effect.sync(() => (ran = true)), { signal: AbortSignal.abort() })).rejects.toBeInstanceOf(Aborted)
    expect(ran).toBe(false)
    await runner.close()
  })

  it("close() interrupts calls in flight, then every call rejects with ClientClosed", async () => {
    const runner = await makeRunner()
    let started = false
    let finalized = false
    const call = runner.run(
      Effect.sync(() => (started = true)).pipe(Effect.andThen(Effect.never), Effect.ensuring(Effect.sync(() => (finalized = true))))
    ).then(() => undefined, (e: unknown) => e)
    await until(() => started)
    await runner.close()
    expect(await call).toBeInstanceOf(ClientClosed)
    expect(finalized).toBe(true)
    await expect(runner.run(Effect.succeed(1))).rejects.toBeInstanceOf(ClientClosed)
    await runner.close()
  })

  it("leaving an iteration early runs the stream's finalizers", async () => {
    const runner = await makeRunner()
    let released = 0
    const stream = Stream.fromIterable([1, 2, 3, 4, 5, 6]).pipe(
      Stream.rechunk(1),
      Stream.ensuring(Effect.sync(() => released++))
    )
    const seen: Array<number> = []
    for await (const n of runner.iterate(stream)) {
      seen.push(n)
      if (n === 2) break
    }
    expect(seen).toEqual([1, 2])
    expect(released).toBe(1)

    const all: Array<number> = []
    for await (const n of runner.iterate(stream)) all.push(n)
    expect(all).toEqual([1, 2, 3, 4, 5, 6])
    expect(released).toBe(2)

    const failing = Stream.fail(new Boom({ code: 1 })).pipe(Stream.ensuring(Effect.sync(() => released++)))
    const error = await (async () => {
      for await (const _ of runner.iterate(failing)) { /* nothing */ }
    })().then(() => undefined, (e: unknown) => e)
    expect(error).toBeInstanceOf(Boom)
    expect(released).toBe(3)
    await runner.close()
  })

  it("an abort or close() ends an open iteration and releases it", async () => {
    const runner = await makeRunner()
    let released = 0
    const endless = Stream.iterate(0, (n) => n + 1).pipe(Stream.rechunk(1), Stream.ensuring(Effect.sync(() => released++)))
    const controller = new AbortController()
    const aborted = (async () => {
      for await (const n of runner.iterate(endless, { signal: controller.signal })) {
        if (n === 3) controller.abort("enough")
      }
    })().then(() => undefined, (e: unknown) => e)
    expect(await aborted).toBeInstanceOf(Aborted)
    await until(() => released === 1)

    const open = runner.iterate(endless)
    expect(await open.next()).toEqual({ done: false, value: 0 })
    await runner.close()
    expect(released).toBe(2)
    await expect(open.next()).rejects.toBeInstanceOf(ClientClosed)
    await expect(runner.iterate(endless).next()).rejects.toBeInstanceOf(ClientClosed)
  })
})
