/**
 * Every Effect metric in the Prometheus text exposition format (0.0.4), held
 * to Prometheus's naming conventions: base units (a `*_ms` metric is exported
 * as `*_seconds`, its values divided by 1000), counters ending in `_total`,
 * and a `# HELP` line on every family. The output passes `promtool check metrics`.
 *
 * @example
 * ```ts
 * import { Prometheus } from "@tether/observe"
 * import { Effect } from "effect"
 *
 * const body = Effect.runSync(Prometheus.format)
 * ```
 *
 * @since 0.1.0
 */
import type { Context } from "effect"
import { Effect, Metric } from "effect"

/**
 * The exposition's content type.
 *
 * @since 0.1.0
 * @category constants
 */
export const contentType = "text/plain; version=0.0.4; charset=utf-8"

/**
 * The current metrics as exposition text.
 *
 * @since 0.1.0
 * @category formatting
 */
export const format: Effect.Effect<string> = Effect.map(Effect.context<never>(), (context) => formatUnsafe(context))

/**
 * The metrics registered in `context` as exposition text.
 *
 * @since 0.1.0
 * @category formatting
 */
export const formatUnsafe = (context: Context.Context<never>): string => {
  const families = new Map<string, { type: string; help: string; scale: number; lines: Array<string> }>()
  for (const metric of Metric.snapshotUnsafe(context)) {
    const { name, scale } = conventionalName(metric.id, metric.type)
    const type = typeOf(metric.type)
    let family = families.get(name)
    if (family === undefined) {
      family = { type, help: metric.description ?? `${metric.id} (${type})`, scale, lines: [] }
      families.set(name, family)
    } else if (family.type !== type) {
      continue // the same name with another type would make the whole exposition invalid
    }
    family.lines.push(...samples(name, metric, scale))
  }
  const out: Array<string> = []
  for (const [name, family] of families) {
    if (family.lines.length === 0) continue
    const unitNote = family.scale !== 1 ? " (seconds)" : ""
    out.push(`# HELP ${name} ${escapeHelp(family.help + unitNote)}`)
    out.push(`# TYPE ${name} ${family.type}`)
    out.push(...family.lines)
  }
  return out.length === 0 ? "" : out.join("\n") + "\n"
}

/**
 * The name Prometheus conventions ask for, and the factor to apply to values.
 *
 * @since 0.1.0
 * @category formatting
 */
export const conventionalName = (id: string, type: Metric.Metric.Type): { readonly name: string; readonly scale: number } => {
  let name = sanitize(id)
  let scale = 1
  const ms = /_(ms|millis|milliseconds)(_total)?$/.exec(name)
  if (ms !== null) {
    name = name.slice(0, ms.index) + "_seconds" + (ms[2] ?? "")
    scale = 1 / 1000
  }
  if ((type === "Counter" || type === "Frequency") && !name.endsWith("_total")) name += "_total"
  return { name, scale }
}

const typeOf = (type: Metric.Metric.Type): string => {
  switch (type) {
    case "Counter":
    case "Frequency":
      return "counter"
    case "Gauge":
      return "gauge"
    case "Histogram":
      return "histogram"
    case "Summary":
      return "summary"
  }
}

const samples = (name: string, metric: Metric.Metric.Snapshot, scale: number): Array<string> => {
  const labels = labelsOf(metric.attributes)
  switch (metric.type) {
    case "Counter":
      return [`${name}${render(labels)} ${value(metric.state.count, 1)}`]
    case "Gauge":
      return [`${name}${render(labels)} ${value(metric.state.value, scale)}`]
    case "Frequency":
      return [...metric.state.occurrences].map(([key, count]) => `${name}${render([...labels, ["key", key]])} ${count}`)
    case "Histogram": {
      const state = metric.state
      const lines: Array<string> = []
      for (const [boundary, cumulative] of state.buckets) {
        if (boundary === Number.POSITIVE_INFINITY) continue
        lines.push(`${name}_bucket${render([...labels, ["le", value(boundary, scale)]])} ${cumulative}`)
      }
      lines.push(`${name}_bucket${render([...labels, ["le", "+Inf"]])} ${state.count}`)
      lines.push(`${name}_sum${render(labels)} ${value(state.sum, scale)}`)
      lines.push(`${name}_count${render(labels)} ${state.count}`)
      return lines
    }
    case "Summary": {
      const state = metric.state
      const lines: Array<string> = []
      for (const [q, v] of state.quantiles) {
        if (v !== undefined) lines.push(`${name}${render([...labels, ["quantile", String(q)]])} ${value(v, scale)}`)
      }
      lines.push(`${name}_sum${render(labels)} ${value(state.sum, scale)}`)
      lines.push(`${name}_count${render(labels)} ${state.count}`)
      return lines
    }
  }
}

const labelsOf = (attributes: Metric.Metric.AttributeSet | undefined): Array<[string, string]> =>
  attributes === undefined
    ? []
    : Object.entries(attributes)
      .filter(([key]) => key !== "unit" && key !== "time_unit")
      .map(([key, v]) => [sanitizeLabel(key), String(v)])

const render = (labels: ReadonlyArray<readonly [string, string]>): string =>
  labels.length === 0 ? "" : `{${labels.map(([k, v]) => `${k}="${escapeLabel(v)}"`).join(",")}}`

const value = (v: number | bigint, scale: number): string => {
  if (typeof v === "bigint") return scale === 1 ? v.toString() : String(Number(v) * scale)
  const n = v * scale
  if (Number.isNaN(n)) return "NaN"
  if (n === Infinity) return "+Inf"
  if (n === -Infinity) return "-Inf"
  return String(scale === 1 ? n : Number(n.toPrecision(12)))
}

const sanitize = (name: string): string => {
  let s = name.replace(/[^a-zA-Z0-9_:]/g, "_").replace(/_+/g, "_").replace(/_$/, "")
  if (/^[0-9]/.test(s)) s = "_" + s
  return s
}

const sanitizeLabel = (name: string): string => {
  let s = name.replace(/[^a-zA-Z0-9_]/g, "_").replace(/_+/g, "_")
  if (/^[0-9]/.test(s)) s = "_" + s
  return s
}

const escapeLabel = (v: string): string => v.replace(/\\/g, "\\\\").replace(/"/g, "\\\"").replace(/\n/g, "\\n")
const escapeHelp = (v: string): string => v.replace(/\\/g, "\\\\").replace(/\n/g, "\\n")
