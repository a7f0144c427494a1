/**
 * Free loopback TCP ports.
 *
 * @internal
 */
import * as net from "node:net"
import { Effect } from "effect"
import { FixtureError } from "../FixtureError.ts"

/** The loopback address every fixture listens on. */
export const HOST = "127.0.0.1"

const listen = (): Promise<net.Server> =>
  new Promise((resolve, reject) => {
    const server = net.createServer()
    server.unref()
    server.once("error", reject)
    server.listen({ port: 0, host: HOST, exclusive: true }, () => resolve(server))
  })

const close = (server: net.Server): Promise<void> => new Promise((resolve) => server.close(() => resolve()))

/**
 * `count` distinct free ports on 127.0.0.1: binds that many listeners to port 0 at once, reads
 * the ports the kernel chose and closes the listeners. (Another process could grab one before
 * the server binds it; the window is tiny on a test machine.)
 */
export const freePorts = (count: number): Effect.Effect<ReadonlyArray<number>, FixtureError> =>
  Effect.tryPromise({
    try: async () => {
      const servers: Array<net.Server> = []
      try {
        for (let i = 0; i < count; i++) servers.push(await listen())
        return servers.map((server) => (server.address() as net.AddressInfo).port)
      } finally {
        await Promise.all(servers.map(close))
      }
    },
    catch: (cause) => new FixtureError({ message: `cannot find a free port on ${HOST}: ${String(cause)}`, cause })
  })

/** True when something accepts a TCP connection on HOST:port within `timeoutMs`. */
export const canConnect = (port: number, timeoutMs = 500): Effect.Effect<boolean> =>
  Effect.callback<boolean>((resume) => {
    const socket = net.connect({ host: HOST, port })
    const done = (ok: boolean) => {
      socket.destroy()
      resume(Effect.succeed(ok))
    }
    socket.setTimeout(timeoutMs, () => done(false))
    socket.once("connect", () => done(true))
    socket.once("error", () => done(false))
    return Effect.sync(() => socket.destroy())
  })
