/**
 * The bulk engine behind `importLdif`, `addMany` and `modifyMany` (real and
 * in-memory clients): applies records `concurrency` at a time, never stops on
 * a bad one, keeps dependent records in order, reports progress on the
 * Effect `Clock`.
 *
 * Ordering: when a record is read, it is registered under its DN; a record
 * waits for the last earlier record on its own DN, on its parent DN, and (for
 * modrdn) on its new superior, so a child never overtakes its parent's add.
 * A delete or modrdn also waits for every earlier record still in flight (a
 * parent is deleted or renamed after what was done to its children).
 * Records are registered in input order, so the record waited for was
 * started first: no deadlock at any concurrency.
 *
 * @internal
 */
import { Clock, Deferred, Effect, Fiber, Stream } from "effect"
import type * as LdapClient from "../LdapClient.ts"
import type * as Ldif from "../Ldif.ts"
import { isRecordError } from "./ldifErrors.ts"
import { recordLines } from "./ldifRecord.ts"

/** DNs compare case-insensitively, ignoring spaces around `,` and `=` (a close-enough RFC 4514 match). */
export const normalizeDn = (dn: string): string => dn.trim().toLowerCase().replace(/\s*([,=+])\s*/g, "$1")

/** The parent of a DN (`""` for a one-RDN DN); escaped commas are not separators. */
export const parentDn = (dn: string): string => {
  for (let i = 0; i < dn.length; i++) {
    const c = dn[i]
    if (c === "\\") i++
    else if (c === ",") return dn.slice(i + 1).trim()
  }
  return ""
}

type Outcome = "done" | "skipped"

/** Runs records through `apply`; every record ends in the report. */
export const run = <E2, R2, R>(
  records: Stream.Stream<Ldif.LdifRecord | Ldif.LdifRecordError, E2, R2>,
  apply: (record: Ldif.LdifRecord) => Effect.Effect<Outcome, LdapClient.LdapClientError, R>,
  options: LdapClient.BulkOptions | undefined
): Effect.Effect<LdapClient.BulkReport, E2, R | R2> =>
  Effect.gen(function*() {
    const start = yield* Clock.currentTimeMillis
    let done = 0
    let skipped = 0
    let seen = 0
    const failed: Array<LdapClient.BulkFailure> = []
    /** The last pending record on each normalized DN. */
    const pending = new Map<string, Deferred.Deferred<void>>()
    /** Every record started and not finished. */
    const inFlight = new Set<Deferred.Deferred<void>>()

    const progress = (finished: boolean) =>
      Effect.map(Clock.currentTimeMillis, (now): LdapClient.Progress => {
        const elapsedMillis = Math.max(0, now - start)
        const count = done + skipped + failed.length
        return {
          done,
          skipped,
          failed: failed.length,
          seen,
          elapsedMillis,
          ratePerSecond: elapsedMillis > 0 ? (count * 1000) / elapsedMillis : 0,
          finished
        }
      })

    /** Registers a record in input order: what it waits for, and its own completion. */
    const prepare = (item: Ldif.LdifRecord | Ldif.LdifRecordError) => {
      seen++
      if (isRecordError(item)) return { item, waits: [], own: undefined, keys: [] }
      const key = normalizeDn(item.dn)
      const related = [key, normalizeDn(parentDn(item.dn))]
      if (item._tag === "ModRdn") {
        if (item.newSuperior !== undefined) related.push(normalizeDn(item.newSuperior))
      }
      const waits: Array<Deferred.Deferred<void>> = []
      if (item._tag === "Delete" || item._tag === "ModRdn") waits.push(...inFlight)
      else {
        for (const k of new Set(related)) {
          const d = k === "" ? undefined : pending.get(k)
          if (d !== undefined) waits.push(d)
        }
      }
      const own = Deferred.makeUnsafe<void>()
      inFlight.add(own)
      // A record is waited for under its DN, and a renamed entry under its new DN too.
      const keys = [key]
      if (item._tag === "ModRdn") {
        keys.push(normalizeDn(`${item.newRdn},${item.newSuperior ?? parentDn(item.dn)}`))
      }
      for (const k of keys) pending.set(k, own)
      return { item, waits, own, keys }
    }

    const one = (prepared: ReturnType<typeof prepare>) => {
      const { item, keys, own, waits } = prepared
      if (isRecordError(item)) {
        return Effect.sync(() => {
          failed.push({ dn: item._tag === "LdifRecordTooLarge" ? "" : item.dn ?? "", line: item.line, error: item })
        })
      }
      return Effect.forEach(waits, Deferred.await, { discard: true }).pipe(
        Effect.andThen(Effect.result(apply(item))),
        Effect.map((result) => {
          if (result._tag === "Failure") failed.push({ dn: item.dn, line: recordLines.get(item), error: result.failure })
          else if (result.success === "done") done++
          else skipped++
        }),
        Effect.ensuring(Effect.sync(() => {
          Deferred.doneUnsafe(own!, Effect.void)
          inFlight.delete(own!)
          for (const k of keys) if (pending.get(k) === own) pending.delete(k)
        }))
      )
    }

    const onProgress = options?.onProgress
    const ticker = onProgress === undefined
      ? undefined
      : yield* Effect.forkChild(
        Effect.forever(Effect.andThen(Effect.sleep("1 second"), Effect.flatMap(progress(false), onProgress)))
      )
    yield* records.pipe(
      Stream.map(prepare),
      Stream.mapEffect(one, { concurrency: options?.concurrency ?? 8, unordered: true }),
      Stream.runDrain,
      Effect.ensuring(ticker === undefined ? Effect.void : Fiber.interrupt(ticker))
    )
    if (onProgress !== undefined) yield* Effect.flatMap(progress(true), onProgress)
    return { done, skipped, failed }
  })
