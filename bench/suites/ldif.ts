/**
 * The `ldif` suite (no server): parse time per MiB of LDIF for a file made of
 * one 32 MiB unfolded line (a base64 value) against a file of short lines of
 * the same size, both fed in 64 KiB byte chunks. Linear parsing keeps the
 * ratio near 1 (issue 13 asks ≤ 2x; the old parser took 6.7 s for the long
 * line, quadratic in its length). Also the peak live-heap growth while
 * parsing the long line, against its size.
 */
import { Ldif } from "@tether/ldap"
import { Effect, Stream } from "effect"
import { collectGarbage, now } from "../harness/measure.ts"
import type { Measurement, Suite } from "../harness/types.ts"

const MiB = 2 ** 20
const CHUNK = 64 * 1024

const chunksOf = (bytes: Uint8Array): ReadonlyArray<Uint8Array> => {
  const chunks: Array<Uint8Array> = []
  for (let i = 0; i < bytes.length; i += CHUNK) chunks.push(bytes.subarray(i, i + CHUNK))
  return chunks
}

/** One record whose jpegPhoto line is `size` bytes of base64, unfolded. */
const longLine = (size: number): Uint8Array => {
  const raw = Buffer.alloc(Math.floor((size * 3) / 4))
  for (let i = 0; i < raw.length; i++) raw[i] = (i * 131 + 7) & 0xff
  return Buffer.from(`dn: cn=big,dc=example,dc=com\nobjectClass: device\ncn: big\njpegPhoto:: ${raw.toString("base64")}\n`)
}

/** Short-line records adding up to about `size` bytes. */
const shortLines = (size: number): Uint8Array => {
  const parts: Array<string> = []
  let total = 0
  for (let i = 1; total < size; i++) {
    const record = `dn: cn=d${i},dc=example,dc=com\nobjectClass: device\ncn: d${i}\ndescription: short line number ${i}\n\n`
    parts.push(record)
    total += record.length
  }
  return Buffer.from(parts.join(""))
}

/** Best of `rounds` parse times, in ms per MiB. */
const msPerMiB = (bytes: Uint8Array, rounds: number) =>
  Effect.gen(function*() {
    const chunks = chunksOf(bytes)
    let best = Infinity
    for (let r = 0; r < rounds; r++) {
      collectGarbage()
      const t0 = now()
      yield* Stream.runDrain(Ldif.parse(Stream.fromIterable(chunks), { maxRecordBytes: 256 * MiB }))
      best = Math.min(best, now() - t0)
    }
    return best / (bytes.length / MiB)
  })

export const ldifSuite: Suite = {
  name: "ldif",
  description: "LDIF parse time per MiB: one 32 MiB line vs short lines (linear in line length)",
  run: async ({ quick, log }) => {
    const size = 32 * MiB
    const rounds = quick ? 2 : 5
    const program = Effect.gen(function*() {
      const long = longLine(size)
      const short = shortLines(size)
      const longMs = yield* msPerMiB(long, rounds)
      const shortMs = yield* msPerMiB(short, rounds)
      log(`ldif: one ${Math.round(long.length / MiB)} MiB line ${longMs.toFixed(1)} ms/MiB; short lines ${shortMs.toFixed(1)} ms/MiB; ratio ${(longMs / shortMs).toFixed(2)}`)

      collectGarbage()
      const before = process.memoryUsage().heapUsed + process.memoryUsage().arrayBuffers
      let peak = before
      yield* Stream.runForEach(
        Ldif.parse(Stream.fromIterable(chunksOf(long)), { maxRecordBytes: 256 * MiB }),
        () => Effect.sync(() => (peak = Math.max(peak, process.memoryUsage().heapUsed + process.memoryUsage().arrayBuffers)))
      )
      const growth = (peak - before) / MiB
      const measurements: Array<Measurement> = [
        {
          case: `one ${Math.round(long.length / MiB)} MiB line vs ${Math.round(short.length / MiB)} MiB of short lines, 64 KiB chunks`,
          metric: "parse time per MiB",
          unit: "ms/MiB",
          higherIsBetter: false,
          tether: longMs,
          peers: { "short lines": shortMs }
        },
        {
          case: `one ${Math.round(long.length / MiB)} MiB line`,
          metric: "peak heap + buffers growth",
          unit: "MiB",
          higherIsBetter: false,
          tether: growth,
          peers: { "input size": long.length / MiB }
        }
      ]
      return measurements
    })
    const measurements = await Effect.runPromise(program)
    return {
      tetherLabel: "Ldif.parse",
      peers: ["short lines", "input size"],
      measurements,
      notes: [
        "Best of the rounds. The long line is one base64 jpegPhoto value (24 MiB decoded); it is held once as bytes and decoded once.",
        "Linear: the 'vs short lines' ratio stays near 1 (issue 13 requires ≤ 2x)."
      ]
    }
  }
}
