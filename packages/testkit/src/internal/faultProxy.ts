/**
 * The socket plumbing of `FaultProxy`: a loopback listener, one pair of sockets per proxied
 * connection and the per-direction queues that carry latency, black-holing and byte cuts.
 * Everything here runs on Node's event loop; the public module wraps it in Effects.
 *
 * @internal
 */
import * as net from "node:net"
import { performance } from "node:perf_hooks"

/** Where the proxy forwards to. */
export interface Target {
  readonly host: string
  readonly port: number
}

/** How `refuseNew` refuses: RST right after accept, or no listening socket at all. */
export type RefuseMode = "reset" | "unlisten"

/** The faults in force; mutated by the controls. */
export interface Faults {
  latencyMs: number
  blackholed: boolean
  refusing: RefuseMode | undefined
  closeAfterBytes: number | undefined
}

export interface Counters {
  accepted: number
  refused: number
  bytesToServer: number
  bytesToClient: number
}

// ---------------------------------------------------------------------------------------------
// Address checks

const loopback = new net.BlockList()
loopback.addSubnet("127.0.0.0", 8, "ipv4")
loopback.addAddress("::1", "ipv6")

/** True for 127.0.0.0/8 and ::1 (in any spelling), and for `localhost` when `allowName`. */
export const isLoopback = (host: string, allowName: boolean): boolean => {
  if (allowName && host.toLowerCase() === "localhost") return true
  const family = net.isIP(host)
  if (family === 4) return loopback.check(host, "ipv4")
  if (family === 6) return loopback.check(host, "ipv6")
  return false
}

/** `127.0.0.1:PORT` or `[::1]:PORT`. */
export const formatAddress = (host: string, port: number): string =>
  net.isIPv6(host) ? `[${host}]:${port}` : `${host}:${port}`

// ---------------------------------------------------------------------------------------------
// Sockets

const noop = (): void => undefined

/** Sends an RST (SO_LINGER 0) where the socket still has a handle, else just destroys it. */
const reset = (socket: net.Socket): void => {
  if (socket.destroyed) return
  try {
    socket.resetAndDestroy()
  } catch {
    socket.destroy()
  }
}

/** A chunk, or the FIN when `data` is undefined, and when it may leave. */
interface Item {
  readonly data: Buffer | undefined
  readonly due: number
}

/**
 * One direction of a connection. Chunks (and the FIN, as an item without data) are queued with
 * the time they may leave, so latency delays each of them and never reorders them; while black-
 * holed nothing leaves. When the destination's buffer is full the source is paused (backpressure).
 */
class Pipe {
  private readonly queue: Array<Item> = []
  private lastDue = 0
  private timer: ReturnType<typeof setTimeout> | undefined = undefined
  /** The destination asked us to wait for `drain`. */
  full = false
  /** Nothing more goes this way (after a cut). */
  dead = false

  constructor(
    private readonly conn: Connection,
    private readonly toServer: boolean
  ) {}

  private get dest(): net.Socket | undefined {
    return this.toServer ? this.conn.upstream : this.conn.client
  }

  push(data: Buffer | undefined): void {
    if (this.dead) return
    const due = Math.max(performance.now() + this.conn.core.faults.latencyMs, this.lastDue)
    this.lastDue = due
    this.queue.push({ data, due })
    this.flush()
  }

  flush(): void {
    if (this.conn.closed || this.dead || this.conn.core.faults.blackholed) return
    const dest = this.dest
    if (dest === undefined) return
    while (this.queue.length > 0) {
      const head = this.queue[0]!
      const wait = head.due - performance.now()
      if (wait > 0) {
        if (this.timer === undefined) {
          this.timer = setTimeout(() => {
            this.timer = undefined
            this.flush()
          }, Math.max(1, Math.ceil(wait)))
          this.timer.unref()
        }
        return
      }
      this.queue.shift()
      this.deliver(dest, head)
      if (this.conn.closed || this.dead) return
    }
  }

  private deliver(dest: net.Socket, item: Item): void {
    if (dest.destroyed || dest.writableEnded) return
    if (item.data === undefined) {
      dest.end()
      return
    }
    const core = this.conn.core
    let data = item.data
    if (!this.toServer && this.conn.cutAfter !== undefined) {
      const left = this.conn.cutAfter - this.conn.bytesToClient
      if (data.length >= left) {
        data = data.subarray(0, Math.max(0, left))
        this.conn.bytesToClient += data.length
        core.counters.bytesToClient += data.length
        this.conn.cut(data)
        return
      }
    }
    if (this.toServer) {
      core.counters.bytesToServer += data.length
    } else {
      this.conn.bytesToClient += data.length
      core.counters.bytesToClient += data.length
    }
    if (!dest.write(data) && !this.full) {
      this.full = true
      this.conn.updateFlow()
      dest.once("drain", () => {
        this.full = false
        this.conn.updateFlow()
      })
    }
  }

  stop(): void {
    this.dead = true
    this.queue.length = 0
    if (this.timer !== undefined) clearTimeout(this.timer)
    this.timer = undefined
  }
}

/** A client socket accepted by the proxy and its socket to the target. */
export class Connection {
  upstream: net.Socket | undefined = undefined
  closed = false
  bytesToClient = 0
  /** `closeAfterBytes` as it was when this connection was accepted. */
  readonly cutAfter: number | undefined
  private readonly toServer: Pipe
  private readonly toClient: Pipe

  constructor(
    readonly core: Core,
    readonly client: net.Socket
  ) {
    this.cutAfter = core.faults.closeAfterBytes
    this.toServer = new Pipe(this, true)
    this.toClient = new Pipe(this, false)
    client.setNoDelay(true)
    client.on("data", (chunk: Buffer) => this.toServer.push(chunk))
    client.on("end", () => this.toServer.push(undefined))
    client.on("error", () => this.reset())
    client.on("close", () => this.onSocketClose())
    if (!core.faults.blackholed) this.start()
    this.updateFlow()
  }

  /** Opens the socket to the target (deferred while black-holed: the server sees nothing). */
  start(): void {
    if (this.upstream !== undefined || this.closed) return
    const { host, port } = this.core.target
    const upstream = net.connect({ host, port, allowHalfOpen: true, noDelay: true })
    upstream.on("data", (chunk: Buffer) => this.toClient.push(chunk))
    upstream.on("end", () => this.toClient.push(undefined))
    // The target refused or reset us: pass the reset on to the client.
    upstream.on("error", () => this.reset())
    upstream.on("close", () => this.onSocketClose())
    this.upstream = upstream
    this.toServer.flush()
  }

  /** Re-applies the faults: starts a deferred connection, flushes held data, (un)pauses. */
  kick(): void {
    if (this.closed) return
    if (!this.core.faults.blackholed) this.start()
    this.toServer.flush()
    this.toClient.flush()
    this.updateFlow()
  }

  updateFlow(): void {
    if (this.closed) return
    const hold = this.core.faults.blackholed
    const apply = (socket: net.Socket | undefined, paused: boolean) => {
      if (socket === undefined || socket.destroyed) return
      if (paused) socket.pause()
      else socket.resume()
    }
    apply(this.client, hold || this.toServer.full)
    apply(this.upstream, hold || this.toClient.full)
  }

  /** `closeAfterBytes` reached: the client gets `last` and a FIN; the server side is closed. */
  cut(last: Buffer): void {
    this.toClient.stop()
    this.toServer.stop()
    this.upstream?.destroy()
    this.client.end(last, () => this.client.destroy())
  }

  /** Both sides get an RST. */
  reset(): void {
    if (this.closed) return
    reset(this.client)
    if (this.upstream !== undefined) reset(this.upstream)
    this.finish()
  }

  /** Both sides are destroyed quietly (scope close). */
  destroy(): void {
    if (this.closed) return
    this.client.destroy()
    this.upstream?.destroy()
    this.finish()
  }

  private onSocketClose(): void {
    if (this.client.destroyed && (this.upstream === undefined || this.upstream.destroyed)) this.finish()
  }

  private finish(): void {
    if (this.closed) return
    this.closed = true
    this.toServer.stop()
    this.toClient.stop()
    this.core.connections.delete(this)
  }
}

/** The listener, the faults, the counters and the open connections. */
export class Core {
  readonly faults: Faults = { latencyMs: 0, blackholed: false, refusing: undefined, closeAfterBytes: undefined }
  readonly counters: Counters = { accepted: 0, refused: 0, bytesToServer: 0, bytesToClient: 0 }
  readonly connections = new Set<Connection>()
  /** The listening server, `undefined` while refusing with `unlisten` or after `close`. */
  private listener: net.Server | undefined = undefined
  /** Every server object not yet fully closed (an unlistened one waits for its connections). */
  private readonly servers = new Map<net.Server, Promise<void>>()
  port = 0
  closed = false

  constructor(
    readonly target: Target,
    readonly host: string
  ) {}

  /** Listens on `port` (0: a free one) and records the port. */
  listen(port: number): Promise<void> {
    return new Promise((resolve, reject) => {
      const server = net.createServer({ allowHalfOpen: true, pauseOnConnect: false })
      server.on("connection", (socket) => this.accept(socket))
      const onError = (error: Error) => {
        server.close()
        reject(error)
      }
      server.once("error", onError)
      server.listen({ port, host: this.host, exclusive: true }, () => {
        server.off("error", onError)
        server.on("error", noop)
        this.port = (server.address() as net.AddressInfo).port
        this.listener = server
        this.servers.set(
          server,
          new Promise<void>((done) => server.once("close", () => done())).then(() => {
            this.servers.delete(server)
          })
        )
        resolve()
      })
    })
  }

  /** Closes the listening socket (new connections get ECONNREFUSED); open connections stay. */
  unlisten(): void {
    const server = this.listener
    this.listener = undefined
    server?.close()
  }

  get listening(): boolean {
    return this.listener !== undefined
  }

  private accept(socket: net.Socket): void {
    socket.on("error", noop)
    if (this.closed) {
      socket.destroy()
      return
    }
    if (this.faults.refusing !== undefined) {
      this.counters.refused++
      reset(socket)
      return
    }
    this.counters.accepted++
    this.connections.add(new Connection(this, socket))
  }

  /** Applies changed faults to every open connection. */
  kick(): void {
    for (const conn of [...this.connections]) conn.kick()
  }

  /** RSTs every open connection; returns how many. */
  resetAll(): number {
    const all = [...this.connections]
    for (const conn of all) conn.reset()
    return all.length
  }

  /** Stops listening, destroys every connection and resolves when every server has closed. */
  close(): Promise<void> {
    this.closed = true
    this.unlisten()
    for (const conn of [...this.connections]) conn.destroy()
    return Promise.all(this.servers.values()).then(noop)
  }
}
