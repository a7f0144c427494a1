/**
 * Small formatting helpers shared by the error messages and logs of the
 * core modules. Nothing here may print a secret.
 *
 * @internal
 */

/**
 * Formats a number of milliseconds for humans: `250ms`, `1.5s`, `2min`.
 *
 * @internal
 */
export const formatMillis = (millis: number): string => {
  if (!Number.isFinite(millis)) return "an unknown time"
  if (millis < 1000) return `${Math.max(0, Math.round(millis))}ms`
  if (millis < 60_000) return `${trim(millis / 1000)}s`
  return `${trim(millis / 60_000)}min`
}

const trim = (n: number): string => {
  const s = n.toFixed(1)
  return s.endsWith(".0") ? s.slice(0, -2) : s
}

/**
 * Replaces the user-info part of a URL (`user:password@`) with `***@`, so a
 * URL can be shown in a message or a log line.
 *
 * @internal
 */
export const redactUrl = (url: string): string => url.replace(/^([a-z][a-z0-9+.-]*:\/\/)[^@/?#]*@/i, "$1***@")

/**
 * Shortens a string to `max` characters, marking the cut with `…`.
 *
 * @internal
 */
export const truncate = (s: string, max: number): string => (s.length <= max ? s : `${s.slice(0, max - 1)}…`)

/**
 * A one-line description of an arbitrary failure: its `message` when it has
 * one (with its `_tag` or `name` in front when that adds something), else its
 * string form; at most `max` characters. Drivers are responsible for keeping
 * secrets out of their errors' messages.
 *
 * @internal
 */
export const describeError = (error: unknown, max = 200): string => {
  let text: string
  if (typeof error === "object" && error !== null) {
    const tag = (error as { _tag?: unknown })._tag ?? (error as { name?: unknown }).name
    const message = (error as { message?: unknown }).message
    if (typeof message === "string" && message.length > 0) {
      text = typeof tag === "string" && tag.length > 0 && tag !== "Error" && !message.startsWith(tag)
        ? `${tag}: ${message}`
        : message
    } else if (typeof tag === "string") {
      text = tag
    } else {
      text = safeString(error)
    }
  } else {
    text = safeString(error)
  }
  return truncate(text.replace(/\s+/g, " ").trim(), max)
}

const safeString = (u: unknown): string => {
  try {
    return String(u)
  } catch {
    return "<unprintable error>"
  }
}
