/**
 * Child processes and signals for the fixtures, wrapped in Effect. Linux only (reads /proc).
 *
 * @internal
 */
import { spawn } from "node:child_process"
import type { ChildProcess } from "node:child_process"
import * as fs from "node:fs"
import { Duration, Effect } from "effect"
import { FixtureError } from "../FixtureError.ts"

/** Environment for child processes: ours, without libpq/LDAP client settings that would leak in. */
export const childEnv = (extra: Record<string, string> = {}): NodeJS.ProcessEnv => {
  const env: NodeJS.ProcessEnv = {}
  for (const [key, value] of Object.entries(process.env)) {
    if (key.startsWith("PG") || key.startsWith("LDAP")) continue
    env[key] = value
  }
  env.LC_ALL = "C"
  env.LANG = "C"
  return { ...env, ...extra }
}

/** Replaces every secret in `text` with `***` (for error messages built from server output). */
export const redact = (text: string, secrets: ReadonlyArray<string>): string =>
  secrets.reduce((acc, secret) => (secret.length > 0 ? acc.split(secret).join("***") : acc), text)

/** The last `max` characters of `text`, trimmed. */
export const tail = (text: string, max = 2000): string => {
  const trimmed = text.trim()
  return trimmed.length > max ? `…${trimmed.slice(-max)}` : trimmed
}

export interface RunOptions {
  /** What this is, for error messages ("initdb", "slapadd for ldap1"). */
  readonly what: string
  readonly timeout?: Duration.Input
  readonly env?: NodeJS.ProcessEnv
  readonly cwd?: string
  /** Strings to hide in error messages. */
  readonly secrets?: ReadonlyArray<string>
}

export interface RunResult {
  readonly stdout: string
  readonly stderr: string
}

/**
 * Runs a command to completion. Fails with a `FixtureError` carrying the tail of its output when
 * it exits non-zero, cannot be spawned or exceeds the timeout (then it is SIGKILLed); it is also
 * SIGKILLed when the fiber is interrupted.
 */
export const run = (command: string, args: ReadonlyArray<string>, options: RunOptions): Effect.Effect<
  RunResult,
  FixtureError
> =>
  Effect.callback<RunResult, FixtureError>((resume) => {
    const secrets = options.secrets ?? []
    const timeoutMs = Duration.toMillis(options.timeout ?? Duration.seconds(60))
    let stdout = ""
    let stderr = ""
    let settled = false
    let timer: ReturnType<typeof setTimeout> | undefined = undefined
    const settle = (effect: Effect.Effect<RunResult, FixtureError>) => {
      if (settled) return
      settled = true
      clearTimeout(timer)
      resume(effect)
    }
    const fail = (message: string, cause?: unknown) =>
      settle(Effect.fail(new FixtureError({ message: redact(message, secrets), cause })))
    let child: ChildProcess
    try {
      child = spawn(command, args, {
        env: options.env ?? childEnv(),
        ...(options.cwd === undefined ? {} : { cwd: options.cwd }),
        stdio: ["ignore", "pipe", "pipe"]
      })
    } catch (cause) {
      fail(`${options.what}: cannot run ${command}: ${String(cause)}`, cause)
      return
    }
    timer = setTimeout(() => {
      child.kill("SIGKILL")
      fail(`${options.what}: timed out after ${timeoutMs} ms\n${tail(stderr || stdout)}`)
    }, timeoutMs)
    child.stdout?.setEncoding("utf8").on("data", (chunk: string) => {
      stdout = (stdout + chunk).slice(-65536)
    })
    child.stderr?.setEncoding("utf8").on("data", (chunk: string) => {
      stderr = (stderr + chunk).slice(-65536)
    })
    child.on("error", (cause) => fail(`${options.what}: cannot run ${command}: ${cause.message}`, cause))
    child.on("close", (code, signal) => {
      if (code === 0) {
        settle(Effect.succeed({ stdout, stderr }))
      } else {
        const how = signal === null ? `exit code ${code}` : `signal ${signal}`
        fail(`${options.what} failed (${how}):\n${tail(stderr || stdout)}`)
      }
    })
    return Effect.sync(() => {
      if (!settled) {
        settled = true
        clearTimeout(timer)
        child.kill("SIGKILL")
      }
    })
  })

/** Sends a signal, ignoring processes that are already gone. */
export const signal = (pid: number, sig: NodeJS.Signals): void => {
  try {
    process.kill(pid, sig)
  } catch {
    // ESRCH: already gone
  }
}

/** Parses /proc/PID/stat: state letter and parent pid, or undefined when the process is gone. */
const stat = (pid: number): { readonly state: string; readonly ppid: number } | undefined => {
  try {
    const text = fs.readFileSync(`/proc/${pid}/stat`, "utf8")
    // "pid (comm) S ppid ..." — comm may contain spaces and parentheses, so split after the last ")".
    const rest = text.slice(text.lastIndexOf(")") + 2).split(" ")
    return { state: rest[0] ?? "?", ppid: Number(rest[1]) }
  } catch {
    return undefined
  }
}

/** True while the process exists and is not a zombie. */
export const isAlive = (pid: number): boolean => {
  const s = stat(pid)
  return s !== undefined && s.state !== "Z" && s.state !== "X"
}

/**
 * True when the process is stopped by a signal (SIGSTOP): every one of its
 * threads, since `kill` returns once the signal is queued and a thread that
 * is running finishes what it is doing first (slapd's worker threads can
 * still answer a request in that window).
 */
export const isStopped = (pid: number): boolean => {
  if (stat(pid)?.state !== "T") return false
  let tasks: Array<string>
  try {
    tasks = fs.readdirSync(`/proc/${pid}/task`)
  } catch {
    return true
  }
  return tasks.every((tid) => {
    try {
      const text = fs.readFileSync(`/proc/${pid}/task/${tid}/stat`, "utf8")
      return text.slice(text.lastIndexOf(")") + 2, text.lastIndexOf(")") + 3) === "T"
    } catch {
      return true // the thread is gone
    }
  })
}

/**
 * Live processes whose working directory is `dir` or below it. PostgreSQL's postmaster and all
 * its children run with the data directory as their working directory, so this finds them even
 * after the postmaster died and the children were re-parented.
 */
export const processesUnder = (dir: string): ReadonlyArray<number> => {
  const prefix = dir.endsWith("/") ? dir : `${dir}/`
  const found: Array<number> = []
  let entries: Array<string>
  try {
    entries = fs.readdirSync("/proc")
  } catch {
    return found
  }
  for (const entry of entries) {
    const pid = Number(entry)
    if (!Number.isInteger(pid) || pid <= 1 || pid === process.pid) continue
    let cwd: string
    try {
      cwd = fs.readlinkSync(`/proc/${pid}/cwd`)
    } catch {
      continue
    }
    if ((cwd === dir || cwd.startsWith(prefix)) && isAlive(pid)) found.push(pid)
  }
  return found
}

/** Polls until none of `pids` is alive, or the timeout passes (then returns the survivors). */
export const awaitExit = (pids: ReadonlyArray<number>, timeout: Duration.Input): Effect.Effect<
  ReadonlyArray<number>
> =>
  Effect.gen(function*() {
    const deadline = Date.now() + Duration.toMillis(timeout)
    let alive = pids.filter(isAlive)
    while (alive.length > 0 && Date.now() < deadline) {
      yield* Effect.sleep(Duration.millis(10))
      alive = alive.filter(isAlive)
    }
    return alive
  })

/** SIGKILLs every process running under `dir` and waits until they are gone. */
export const killAllUnder = (dir: string): Effect.Effect<void> =>
  Effect.gen(function*() {
    for (let round = 0; round < 3; round++) {
      const pids = processesUnder(dir)
      if (pids.length === 0) return
      for (const pid of pids) {
        signal(pid, "SIGCONT")
        signal(pid, "SIGKILL")
      }
      yield* awaitExit(pids, Duration.seconds(5))
    }
  })
