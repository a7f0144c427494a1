import * as crypto from "node:crypto"
import * as net from "node:net"
import { performance } from "node:perf_hooks"
import { describe, expect, it } from "@effect/vitest"
import { Duration, Effect, Exit, Scope } from "effect"
import { FaultProxy, FixtureError } from "../src/index.ts"

// --- a tiny local echo server and a raw TCP client ---------------------------------------------

interface Echo {
  readonly port: number
  /** Server-side sockets accepted so far. */
  readonly sockets: Array<net.Socket>
  readonly errors: Array<string>
}

/** An echo server on 127.0.0.1 (optionally writing `greeting` to each new connection first). */
const echoServer = (greeting?: Buffer) =>
  Effect.acquireRelease(
    Effect.callback<{ echo: Echo; server: net.Server }>((resume) => {
      const sockets: Array<net.Socket> = []
      const errors: Array<string> = []
      const server = net.createServer((socket) => {
        sockets.push(socket)
        socket.on("error", (e: NodeJS.ErrnoException) => errors.push(e.code ?? e.message))
        if (greeting !== undefined) socket.write(greeting)
        socket.pipe(socket)
      })
      server.listen({ port: 0, host: "127.0.0.1" }, () => {
        const port = (server.address() as net.AddressInfo).port
        resume(Effect.succeed({ echo: { port, sockets, errors }, server }))
      })
    }),
    ({ echo, server }) =>
      Effect.callback<void>((resume) => {
        for (const socket of echo.sockets) socket.destroy()
        server.close(() => resume(Effect.void))
      })
  ).pipe(Effect.map(({ echo }) => echo))

class Peer {
  received = Buffer.alloc(0)
  ended = false
  closed = false
  error: string | undefined = undefined
  constructor(readonly socket: net.Socket) {
    socket.on("data", (chunk: Buffer) => {
      this.received = Buffer.concat([this.received, chunk])
    })
    socket.on("end", () => {
      this.ended = true
    })
    socket.on("error", (e: NodeJS.ErrnoException) => {
      this.error = e.code ?? e.message
    })
    socket.on("close", () => {
      this.closed = true
    })
  }
  write(data: string | Buffer): void {
    this.socket.write(data)
  }
}

/** Connects to 127.0.0.1:port; fails with the error code (ECONNREFUSED, …). Destroyed with the scope. */
const connect = (port: number, host = "127.0.0.1") =>
  Effect.acquireRelease(
    Effect.callback<Peer, string>((resume) => {
      const socket = net.connect({ host, port })
      const peer = new Peer(socket)
      socket.once("connect", () => resume(Effect.succeed(peer)))
      socket.once("error", (e: NodeJS.ErrnoException) => resume(Effect.fail(e.code ?? e.message)))
    }),
    (peer) => Effect.sync(() => peer.socket.destroy())
  )

/** Polls until `check()` is true (bounded: dies after `timeout`). */
const eventually = (check: () => boolean, timeout = Duration.seconds(5)) =>
  Effect.gen(function*() {
    const deadline = Date.now() + Duration.toMillis(timeout)
    while (!check()) {
      if (Date.now() > deadline) return yield* Effect.die(new Error("condition not met in time"))
      yield* Effect.sleep(Duration.millis(5))
    }
  })

const text = (peer: Peer) => peer.received.toString("utf8")

const tcpHandles = () =>
  process.getActiveResourcesInfo().filter((r) => r === "TCPSocketWrap" || r === "TCPServerWrap").length

// --- tests --------------------------------------------------------------------------------------

describe("FaultProxy", () => {
  it.live("forwards both ways, on a free loopback port, and counts connections and bytes", () =>
    Effect.gen(function*() {
      const echo = yield* echoServer()
      const proxy = yield* FaultProxy.make({ target: { host: "127.0.0.1", port: echo.port } })
      expect(proxy.host).toBe("127.0.0.1")
      expect(proxy.port).toBeGreaterThan(0)
      expect(proxy.port).not.toBe(echo.port)
      expect(proxy.address).toBe(`127.0.0.1:${proxy.port}`)
      expect(proxy.url("ldap")).toBe(`ldap://127.0.0.1:${proxy.port}`)
      expect(yield* proxy.rewrite("postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable")).toBe(
        `postgres://postgres@127.0.0.1:${proxy.port}/postgres?sslmode=disable`
      )
      expect(proxy.target).toEqual({ host: "127.0.0.1", port: echo.port })

      const a = yield* connect(proxy.port)
      const b = yield* connect(proxy.port)
      a.write("hello")
      b.write("world!")
      yield* eventually(() => text(a) === "hello" && text(b) === "world!")
      expect(yield* proxy.stats).toEqual({
        accepted: 2,
        refused: 0,
        active: 2,
        bytesToServer: 11,
        bytesToClient: 11
      })
      a.socket.end()
      yield* eventually(() => a.closed)
      yield* eventually(() => echo.sockets[0]!.destroyed)
      yield* Effect.flatMap(proxy.stats, (s) => eventually(() => s.active === 1))
    }))

  it.live("keeps large transfers intact (backpressure)", () =>
    Effect.gen(function*() {
      const echo = yield* echoServer()
      const proxy = yield* FaultProxy.make({ target: { host: "127.0.0.1", port: echo.port } })
      const peer = yield* connect(proxy.port)
      const payload = crypto.randomBytes(8 * 1024 * 1024)
      peer.write(payload)
      yield* eventually(() => peer.received.length >= payload.length, Duration.seconds(20))
      expect(peer.received.equals(payload)).toBe(true)
      const stats = yield* proxy.stats
      expect(stats.bytesToServer).toBe(payload.length)
      expect(stats.bytesToClient).toBe(payload.length)
    }))

  it.live("accepts only loopback targets and listen addresses", () =>
    Effect.gen(function*() {
      for (const host of ["10.0.0.1", "192.168.1.1", "example.com", "::2", "0.0.0.0", ""]) {
        const exit = yield* Effect.exit(FaultProxy.make({ target: { host, port: 5432 } }))
        expect(Exit.isFailure(exit)).toBe(true)
        const error = yield* Effect.flip(FaultProxy.make({ target: { host, port: 5432 } }))
        expect(error).toBeInstanceOf(FixtureError)
        expect(error.message).toContain("only forwards to loopback addresses")
      }
      for (const port of [0, -1, 65536, 1.5, Number.NaN]) {
        const error = yield* Effect.flip(FaultProxy.make({ target: { host: "127.0.0.1", port } }))
        expect(error.message).toContain("port must be an integer from 1 to 65535")
      }
      const badListen = yield* Effect.flip(
        FaultProxy.make({ target: { host: "127.0.0.1", port: 5432 }, listenHost: "0.0.0.0" })
      )
      expect(badListen.message).toContain("listenHost must be a loopback IP address")
      // Loopback spellings that are fine:
      for (const host of ["127.0.0.1", "127.1.2.3", "localhost", "::1"]) {
        const proxy = yield* FaultProxy.make({ target: { host, port: 5432 } })
        expect(proxy.target.host).toBe(host)
      }
    }))

  it.live("rejects bad control arguments with a FixtureError", () =>
    Effect.gen(function*() {
      const echo = yield* echoServer()
      const proxy = yield* FaultProxy.make({ target: { host: "127.0.0.1", port: echo.port } })
      expect((yield* Effect.flip(proxy.setLatency(-5))).message).toContain("non-negative")
      expect((yield* Effect.flip(proxy.setLatency(Duration.infinity))).message).toContain("finite")
      expect((yield* Effect.flip(proxy.closeAfterBytes(-1))).message).toContain("non-negative integer")
      expect((yield* Effect.flip(proxy.closeAfterBytes(1.5))).message).toContain("non-negative integer")
      expect((yield* Effect.flip(proxy.rewrite("not a url"))).message).toContain("cannot rewrite")
      expect((yield* Effect.flip(proxy.refuseNew(true, "nope" as never))).message).toContain("mode must be")
    }))

  it.live("setLatency delays every chunk each way and keeps their order", () =>
    Effect.gen(function*() {
      const echo = yield* echoServer()
      const proxy = yield* FaultProxy.make({ target: { host: "127.0.0.1", port: echo.port } })
      const peer = yield* connect(proxy.port)
      peer.write("warm")
      yield* eventually(() => text(peer) === "warm")

      yield* proxy.setLatency(Duration.millis(200))
      expect(Duration.toMillis((yield* proxy.faults).latency)).toBe(200)
      const start = performance.now()
      peer.write("a")
      yield* Effect.sleep(Duration.millis(20))
      peer.write("b")
      peer.write("c")
      yield* eventually(() => text(peer) === "warmabc")
      // 200 ms to the server plus 200 ms back (the first chunk; the later ones even later).
      expect(performance.now() - start).toBeGreaterThanOrEqual(400)

      yield* proxy.setLatency(0)
      peer.write("d")
      yield* eventually(() => text(peer) === "warmabcd")
    }))

  it.live("blackhole holds traffic both ways and keeps connections; turning it off delivers it", () =>
    Effect.gen(function*() {
      const echo = yield* echoServer()
      const proxy = yield* FaultProxy.make({ target: { host: "127.0.0.1", port: echo.port } })
      const peer = yield* connect(proxy.port)
      peer.write("one")
      yield* eventually(() => text(peer) === "one")

      yield* proxy.blackhole(true)
      expect((yield* proxy.faults).blackholed).toBe(true)
      peer.write("two")
      // A new connection is accepted by the proxy, but the server never hears of it.
      const late = yield* connect(proxy.port)
      late.write("late")
      yield* Effect.sleep(Duration.millis(300))
      expect(text(peer)).toBe("one")
      expect(text(late)).toBe("")
      expect(echo.sockets).toHaveLength(1)
      expect(peer.closed || late.closed).toBe(false)
      expect((yield* proxy.stats).active).toBe(2)

      yield* proxy.blackhole(false)
      yield* eventually(() => text(peer) === "onetwo" && text(late) === "late")
      expect(echo.sockets).toHaveLength(2)
    }))

  it.live("blackhole also holds replies already on their way", () =>
    Effect.gen(function*() {
      const echo = yield* echoServer()
      const proxy = yield* FaultProxy.make({ target: { host: "127.0.0.1", port: echo.port } })
      const peer = yield* connect(proxy.port)
      yield* proxy.setLatency(Duration.millis(100))
      peer.write("queued")
      yield* Effect.sleep(Duration.millis(20))
      yield* proxy.blackhole(true) // "queued" is still inside the proxy
      yield* Effect.sleep(Duration.millis(400))
      expect(text(peer)).toBe("")
      yield* proxy.heal
      yield* eventually(() => text(peer) === "queued")
    }))

  it.live("resetAll resets every open connection on both sides; new connections work", () =>
    Effect.gen(function*() {
      const echo = yield* echoServer()
      const proxy = yield* FaultProxy.make({ target: { host: "127.0.0.1", port: echo.port } })
      const a = yield* connect(proxy.port)
      const b = yield* connect(proxy.port)
      a.write("x")
      b.write("y")
      yield* eventually(() => text(a) === "x" && text(b) === "y")

      expect(yield* proxy.resetAll).toBe(2)
      yield* eventually(() => a.closed && b.closed)
      expect(a.error).toBe("ECONNRESET")
      expect(b.error).toBe("ECONNRESET")
      yield* eventually(() => echo.sockets.every((s) => s.destroyed))
      expect(echo.errors).toEqual(["ECONNRESET", "ECONNRESET"])
      expect((yield* proxy.stats).active).toBe(0)

      const c = yield* connect(proxy.port)
      c.write("z")
      yield* eventually(() => text(c) === "z")
    }))

  it.live("refuseNew (reset) resets new connections at once and leaves open ones alone", () =>
    Effect.gen(function*() {
      const echo = yield* echoServer()
      const proxy = yield* FaultProxy.make({ target: { host: "127.0.0.1", port: echo.port } })
      const open = yield* connect(proxy.port)

      yield* proxy.refuseNew(true)
      expect((yield* proxy.faults).refusing).toBe("reset")
      // The handshake may complete before the RST; either way the connection dies unused.
      const attempt = yield* Effect.exit(connect(proxy.port))
      if (Exit.isSuccess(attempt)) {
        const peer = attempt.value
        peer.write("hello?")
        yield* eventually(() => peer.closed)
        expect(text(peer)).toBe("")
      }
      yield* eventually(() => echo.sockets.length === 1)
      expect((yield* proxy.stats).refused).toBe(1)
      open.write("still here")
      yield* eventually(() => text(open) === "still here")

      yield* proxy.refuseNew(false)
      const again = yield* connect(proxy.port)
      again.write("back")
      yield* eventually(() => text(again) === "back")
    }))

  it.live("refuseNew (unlisten) makes the kernel refuse; heal listens again on the same port", () =>
    Effect.gen(function*() {
      const echo = yield* echoServer()
      const proxy = yield* FaultProxy.make({ target: { host: "127.0.0.1", port: echo.port } })
      const open = yield* connect(proxy.port)

      yield* proxy.refuseNew(true, "unlisten")
      expect(yield* Effect.flip(connect(proxy.port))).toBe("ECONNREFUSED")
      open.write("open")
      yield* eventually(() => text(open) === "open")

      yield* proxy.heal
      expect((yield* proxy.faults).refusing).toBeUndefined()
      const again = yield* connect(proxy.port)
      again.write("again")
      yield* eventually(() => text(again) === "again")
    }))

  it.live("closeAfterBytes cuts each new connection after n bytes from the server", () =>
    Effect.gen(function*() {
      const echo = yield* echoServer(Buffer.from("0123456789"))
      const proxy = yield* FaultProxy.make({ target: { host: "127.0.0.1", port: echo.port } })
      const before = yield* connect(proxy.port)
      yield* eventually(() => text(before) === "0123456789")

      yield* proxy.closeAfterBytes(4)
      const cut = yield* connect(proxy.port)
      yield* eventually(() => cut.closed)
      expect(text(cut)).toBe("0123")
      expect(cut.ended).toBe(true)
      yield* eventually(() => echo.sockets[1]!.destroyed)

      // Connections accepted before the change are not cut.
      before.write("abcdef")
      yield* eventually(() => text(before) === "0123456789abcdef")

      yield* proxy.closeAfterBytes(undefined)
      const whole = yield* connect(proxy.port)
      yield* eventually(() => text(whole) === "0123456789")
    }))

  it.live("heal clears every fault", () =>
    Effect.gen(function*() {
      const echo = yield* echoServer()
      const proxy = yield* FaultProxy.make({ target: { host: "127.0.0.1", port: echo.port } })
      yield* proxy.setLatency(Duration.millis(500))
      yield* proxy.blackhole(true)
      yield* proxy.refuseNew(true, "unlisten")
      yield* proxy.closeAfterBytes(1)
      yield* proxy.heal
      const faults = yield* proxy.faults
      expect(Duration.toMillis(faults.latency)).toBe(0)
      expect(faults).toMatchObject({ blackholed: false, refusing: undefined, closeAfterBytes: undefined })
      const peer = yield* connect(proxy.port)
      peer.write("healed")
      yield* eventually(() => text(peer) === "healed")
    }))

  it.live("closing the scope closes the listener and every connection, leaving no sockets", () =>
    Effect.gen(function*() {
      const echo = yield* echoServer()
      const baseline = tcpHandles()
      const scope = yield* Scope.make()
      const proxy = yield* FaultProxy.make({ target: { host: "127.0.0.1", port: echo.port } }).pipe(
        Scope.provide(scope)
      )
      yield* proxy.setLatency(Duration.millis(1000)) // pending latency timers too
      const peer = yield* connect(proxy.port)
      peer.write("pending")
      yield* eventually(() => echo.sockets.length === 1)
      yield* Scope.close(scope, Exit.void)

      yield* eventually(() => peer.closed && echo.sockets[0]!.destroyed)
      expect(text(peer)).toBe("")
      expect(yield* Effect.flip(connect(proxy.port))).toBe("ECONNREFUSED")
      peer.socket.destroy()
      // (Sockets of earlier tests may still be closing, so the count can drop below the baseline.)
      yield* eventually(() => tcpHandles() <= baseline)
    }))

  it.live("the layer provides the service, with options from an effect", () =>
    Effect.gen(function*() {
      const echo = yield* echoServer()
      const proxy = yield* FaultProxy.FaultProxy.pipe(
        Effect.provide(FaultProxy.layer(Effect.succeed({ target: { host: "localhost", port: echo.port } })))
      )
      // The layer's scope closed with `Effect.provide`: the proxy is gone.
      expect(yield* Effect.flip(connect(proxy.port))).toBe("ECONNREFUSED")
      const error = yield* Effect.flip(
        FaultProxy.FaultProxy.pipe(Effect.provide(FaultProxy.layer({ target: { host: "8.8.8.8", port: 53 } })))
      )
      expect(error).toBeInstanceOf(FixtureError)
    }))
})
