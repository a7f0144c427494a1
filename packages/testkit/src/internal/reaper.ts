/**
 * Last-resort cleanup: when the test process exits without closing a fixture's scope (a crash,
 * `process.exit`), kill the fixture's servers and delete its temp dirs synchronously.
 *
 * @internal
 */
import * as fs from "node:fs"
import { processesUnder, signal } from "./process.ts"

const dirs = new Set<string>()
const pids = new Set<number>()
let installed = false

const reap = (): void => {
  for (const pid of pids) {
    signal(pid, "SIGCONT")
    signal(pid, "SIGKILL")
  }
  for (const dir of dirs) {
    for (const pid of processesUnder(dir)) signal(pid, "SIGKILL")
    try {
      fs.rmSync(dir, { recursive: true, force: true })
    } catch {
      // best effort
    }
  }
}

const install = (): void => {
  if (installed) return
  installed = true
  process.once("exit", reap)
}

/** Registers a temp dir: on exit, processes running under it are killed and it is removed. */
export const trackDir = (dir: string): void => {
  install()
  dirs.add(dir)
}
export const untrackDir = (dir: string): void => {
  dirs.delete(dir)
}

/** Registers a child process id to SIGKILL on exit. */
export const trackPid = (pid: number): void => {
  install()
  pids.add(pid)
}
export const untrackPid = (pid: number): void => {
  pids.delete(pid)
}
