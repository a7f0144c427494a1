/**
 * The load: one fiber per identity, each running a seeded random mix of LDAP and PostgreSQL
 * operations as that identity and checking, on every one, whom the server saw.
 */
import { Identity } from "@tether/core"
import type { LdapClient } from "@tether/ldap"
import type { PgClient } from "@tether/pg"
import { Cause, Effect, Exit, Option, Redacted } from "effect"
import type { History, OpKind } from "./history.ts"
import * as Prng from "./prng.ts"

class LdapUser extends Identity.Service<LdapUser>()("chaos/LdapUser") {}
class PgUser extends Identity.Service<PgUser>()("chaos/PgUser") {}
class Attacker extends Identity.Service<Attacker>()("chaos/Attacker") {}

/** One of the load's identities: an LDAP user and a PostgreSQL login role. */
export interface Principal {
  readonly index: number
  readonly ldapDn: string
  readonly ldapPassword: string
  readonly pgRole: string
  readonly pgPassword: string
}

export interface LoadOptions {
  readonly seed: number
  readonly principals: ReadonlyArray<Principal>
  readonly db: PgClient.PgClient
  readonly ldap: LdapClient.LdapClient
  readonly adminDn: string
  /** Where the service account adds its entries (`ou=chaos,…`). */
  readonly writeBase: string
  readonly history: History
  /** Workers start no new operation once this returns true. */
  readonly stopping: () => boolean
  /** A harness bound on every operation (the clients have their own, shorter ones). */
  readonly opTimeoutMillis: number
  readonly thinkMillis: readonly [number, number]
}

const weights: ReadonlyArray<readonly [OpKind, number]> = [
  ["ldap-whoami", 16],
  ["ldap-read-self", 14],
  ["ldap-service-whoami", 3],
  ["ldap-add", 8],
  ["ldap-wrong-password", 5],
  ["pg-read", 18],
  ["pg-write", 16],
  ["pg-transaction", 10],
  ["pg-wrong-password", 5]
]

const tagOf = (error: unknown): string => {
  if (typeof error !== "object" || error === null) return String(error)
  const tag = (error as { _tag?: unknown })._tag
  const kind = (error as { kind?: unknown }).kind
  const name = typeof tag === "string" ? tag : error.constructor?.name ?? "Error"
  return typeof kind === "string" ? `${name}(${kind})` : name
}

/**
 * Classifies an operation's exit: the value, a typed error (with its tag), or an untyped end
 * (a defect, or an interrupt the harness did not cause: the harness only ever bounds operations
 * with `Effect.timeout`, whose expiry is a typed `TimeoutError`).
 */
type Ended<A> =
  | { readonly _tag: "value"; readonly value: A }
  | { readonly _tag: "error"; readonly error: unknown; readonly tag: string }
  | { readonly _tag: "untyped"; readonly detail: string }

const classify = <A, E>(exit: Exit.Exit<A, E>): Ended<A> => {
  if (Exit.isSuccess(exit)) return { _tag: "value", value: exit.value }
  const cause = exit.cause
  const error = Cause.findErrorOption(cause)
  if (Option.isSome(error)) return { _tag: "error", error: error.value, tag: tagOf(error.value) }
  const detail = Cause.hasDies(cause) ? "defect" : Cause.hasInterrupts(cause) ? "interrupt" : "empty cause"
  return { _tag: "untyped", detail: `${detail}: ${Cause.pretty(cause).split("\n").slice(0, 3).join(" | ")}` }
}

/** Runs every worker until `stopping()`; returns when all have finished their last operation. */
export const run = (options: LoadOptions): Effect.Effect<void> =>
  Effect.forEach(options.principals, (principal) => worker(options, principal), {
    concurrency: "unbounded",
    discard: true
  })

const worker = (options: LoadOptions, me: Principal): Effect.Effect<void> =>
  Effect.gen(function*() {
    const { db, history, ldap } = options
    const rng = Prng.make(options.seed, 1000 + me.index)
    const ldapMe = Identity.make(me.ldapDn, Redacted.make(me.ldapPassword), { label: `u${me.index}` })
    const pgMe = Identity.make(me.pgRole, Redacted.make(me.pgPassword), { label: `u${me.index}` })
    const expectedDn = `dn:${me.ldapDn}`.toLowerCase()
    let n = 0

    const untyped = (kind: OpKind, detail: string) =>
      history.violate("failures that are not typed errors (defects, bare interrupts)", `${kind} as u${me.index}: ${detail}`)

    // The current operation's outcome (reset before each one).
    const result: { outcome: "ok" | "failed" | "expected-failure"; error: string | undefined } = {
      outcome: "ok",
      error: undefined
    }
    const fail = (tag: string) => {
      result.outcome = "failed"
      result.error = tag
    }
    const untypedEnd = (k: OpKind, detail: string) => {
      untyped(k, detail)
      fail("untyped")
    }

    const wrongIdentity = (kind: OpKind, detail: string) =>
      history.violate("operations as the wrong identity or anonymous", `${kind} as u${me.index}: ${detail}`)

    let kind: OpKind = "ldap-whoami"
    let burst = 0
    while (!options.stopping()) {
      // Reads come in bursts (a request doing a few operations as its user): back-to-back borrows
      // reuse a connection within the pool's validation window, where a silent reconnect hides.
      if (burst <= 0) {
        kind = rng.weighted(weights)
        burst = kind === "ldap-whoami" || kind === "ldap-read-self" || kind === "pg-read" ? rng.int(1, 4) : 1
      }
      burst--
      const victim = options.principals[rng.int(0, options.principals.length - 1)]!
      const wrong = `wrong-${options.seed}-${me.index}-${n}`
      const id = `s${options.seed}-w${me.index}-${++n}`
      const start = Date.now()
      const bound = <A, E, R>(effect: Effect.Effect<A, E, R>) =>
        Effect.exit(Effect.timeout(effect, options.opTimeoutMillis))
      result.outcome = "ok"
      result.error = undefined

      switch (kind) {
        case "ldap-whoami":
        case "ldap-service-whoami": {
          const service = kind === "ldap-service-whoami"
          const expected = service ? `dn:${options.adminDn}`.toLowerCase() : expectedDn
          const ended = classify(
            yield* bound(service ? ldap.whoami : ldap.as(LdapUser).whoami.pipe(Effect.provideService(LdapUser, ldapMe)))
          )
          if (ended._tag === "value") {
            const seen = ended.value.toLowerCase()
            if (seen !== expected) {
              wrongIdentity(kind, seen === "" ? "the server saw anonymous" : `the server saw ${seen}`)
            }
          } else if (ended._tag === "error") fail(ended.tag)
          else untypedEnd(kind, ended.detail)
          break
        }
        case "ldap-read-self": {
          // userPassword is readable by its owner only (the fixture's ACL): seeing it proves the bind.
          const ended = classify(
            yield* bound(
              ldap.as(LdapUser).get(me.ldapDn, ["uid", "userPassword"]).pipe(Effect.provideService(LdapUser, ldapMe))
            )
          )
          if (ended._tag === "value") {
            if (Option.isNone(ended.value)) wrongIdentity(kind, "own entry not found")
            else if ((ended.value.value.attributes["userPassword"] ?? []).length === 0) {
              wrongIdentity(kind, "own userPassword not readable: not bound as itself (anonymous or another user)")
            }
          } else if (ended._tag === "error") fail(ended.tag)
          else untypedEnd(kind, ended.detail)
          break
        }
        case "ldap-add": {
          const dn = `cn=${id},${options.writeBase}`
          const ended = classify(
            yield* bound(ldap.add(dn, { objectClass: ["device"], cn: id, description: `u${me.index}` }))
          )
          if (ended._tag === "value") history.ldapAcked.add(dn.toLowerCase())
          else {
            history.ldapUnknown.add(dn.toLowerCase())
            if (ended._tag === "error") {
              fail(ended.tag)
              if (ended.tag === "LdapOperationError(already-exists)") {
                history.violate("writes duplicated", `ldap add of the fresh ${dn} answered already-exists: it was sent twice`)
              }
              if (ended.tag === "LdapOperationError(insufficient-access)") {
                wrongIdentity(kind, "the service account's add was refused as unauthorised: it ran as someone else")
              }
            } else untypedEnd(kind, ended.detail)
          }
          break
        }
        case "ldap-wrong-password": {
          const attacker = Identity.make(victim.ldapDn, Redacted.make(wrong), { label: "attacker" })
          const ended = classify(
            yield* bound(ldap.as(Attacker).whoami.pipe(Effect.provideService(Attacker, attacker)))
          )
          if (ended._tag === "value") {
            history.violate("wrong passwords accepted", `ldap: a wrong password for u${victim.index} was accepted (saw ${ended.value || "anonymous"})`)
          } else if (ended._tag === "error") {
            if (ended.tag === "LdapInvalidCredentials") result.outcome = "expected-failure"
            else fail(ended.tag)
          } else untypedEnd(kind, ended.detail)
          break
        }
        case "pg-read": {
          const ended = classify(
            yield* bound(
              db.as(PgUser).read<{ u: string }>`select current_user::text as u`.pipe(Effect.provideService(PgUser, pgMe))
            )
          )
          if (ended._tag === "value") {
            const seen = ended.value[0]?.u
            if (seen !== me.pgRole) wrongIdentity(kind, `current_user is ${seen}`)
          } else if (ended._tag === "error") fail(ended.tag)
          else untypedEnd(kind, ended.detail)
          break
        }
        case "pg-write": {
          const ended = classify(
            yield* bound(
              db.as(PgUser).write<{ u: string; node: string }>`insert into chaos_writes (id, claimed) values (${id}, ${me.pgRole}) returning who as u, node`
                .pipe(Effect.provideService(PgUser, pgMe))
            )
          )
          if (ended._tag === "value") {
            const row = ended.value[0]
            history.pgAcked.set(id, { id, worker: me.index, node: row?.node ?? "?", start, end: Date.now() })
            if (row?.u !== me.pgRole) wrongIdentity(kind, `current_user is ${row?.u}`)
          } else {
            history.pgUnknown.add(id)
            if (ended._tag === "error") fail(ended.tag)
            else untypedEnd(kind, ended.detail)
          }
          break
        }
        case "pg-transaction": {
          const ids = [`${id}a`, `${id}b`]
          const ended = classify(
            yield* bound(
              db.as(PgUser).transaction((tx) =>
                Effect.gen(function*() {
                  const [me2] = yield* tx.sql<{ u: string }>`select current_user::text as u`
                  const [row] = yield* tx.sql<{ node: string }>`insert into chaos_writes (id, claimed) values (${ids[0]}, ${me.pgRole}) returning node`
                  yield* tx.sql`insert into chaos_writes (id, claimed) values (${ids[1]}, ${me.pgRole})`
                  return { u: me2?.u, node: row?.node ?? "?" }
                })
              ).pipe(Effect.provideService(PgUser, pgMe))
            )
          )
          if (ended._tag === "value") {
            for (const x of ids) history.pgAcked.set(x, { id: x, worker: me.index, node: ended.value.node, start, end: Date.now() })
            if (ended.value.u !== me.pgRole) wrongIdentity(kind, `current_user is ${ended.value.u}`)
          } else {
            for (const x of ids) history.pgUnknown.add(x)
            if (ended._tag === "error") fail(ended.tag)
            else untypedEnd(kind, ended.detail)
          }
          break
        }
        case "pg-wrong-password": {
          const attacker = Identity.make(victim.pgRole, Redacted.make(wrong), { label: "attacker" })
          const ended = classify(
            yield* bound(
              db.as(Attacker).read<{ u: string }>`select current_user::text as u`.pipe(Effect.provideService(Attacker, attacker))
            )
          )
          if (ended._tag === "value") {
            history.violate("wrong passwords accepted", `pg: a wrong password for ${victim.pgRole} was accepted (current_user ${ended.value[0]?.u})`)
          } else if (ended._tag === "error") {
            if (ended.tag === "PgAuthenticationError") result.outcome = "expected-failure"
            else fail(ended.tag)
          } else untypedEnd(kind, ended.detail)
          break
        }
      }
      history.record({ worker: me.index, kind, start, end: Date.now(), outcome: result.outcome, error: result.error })
      if (burst <= 0) yield* Effect.sleep(rng.int(options.thinkMillis[0], options.thinkMillis[1]))
    }
  })
