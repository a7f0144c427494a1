/**
 * The pooled client's operations with request controls (`withControls`):
 * each borrow checks the controls against its endpoint's root DSE, sends
 * fresh ldapts controls, and returns the typed responses. Refusals that are
 * not the server's fault (an unadvertised control, a password-policy
 * refusal) come back from the borrow as values, so the breaker and retries
 * never see them, and fail the operation after it.
 *
 * @internal
 */
import { Effect, Option } from "effect"
import { Attribute } from "ldapts"
import type { Change, Control, SearchEntry } from "ldapts"
import * as Controls from "../Controls.ts"
import type * as LdapClient from "../LdapClient.ts"
import type { LdapConnection } from "../LdapDriver.ts"
import { LdapPasswordPolicyError, reasonOf } from "../PasswordPolicy.ts"
import type * as RequestControl from "../RequestControl.ts"
import { featureOf } from "../RequestControl.ts"
import { LdapUnsupported } from "../RootDse.ts"
import type * as RootDse from "../RootDse.ts"
import * as controlledSearch from "./controlledSearch.ts"
import type * as wire from "./ldapWire.ts"
import * as requestControls from "./requestControls.ts"

/** What the client lends this module. */
export interface Deps<R> {
  readonly use: <A>(
    operation: string,
    f: (connection: LdapConnection) => Promise<A>,
    write: boolean
  ) => Effect.Effect<A, LdapClient.LdapClientError, R>
  readonly rootDseOf: (connection: LdapConnection) => Promise<RootDse.RootDse>
  readonly binaryTypes: (connection: LdapConnection) => Promise<ReadonlySet<string>>
  readonly toEntry: (raw: SearchEntry, binary: ReadonlySet<string>) => LdapClient.Entry
  readonly toChange: (change: LdapClient.Change) => Change
  readonly ldaptsValues: (values: ReadonlyArray<string | Uint8Array>) => Array<string> | Array<Buffer>
  readonly toRequest: (options: LdapClient.SearchOptions | undefined, limitsAsTruncation: boolean) => wire.SearchRequestOptions
  readonly isNoSuchObject: (error: unknown) => boolean
}

/** A borrow's outcome: refusals that are not the server's fault are values, not failures. */
type Outcome<A> =
  | { readonly _tag: "Done"; readonly value: A; readonly controls: RequestControl.ResponseControls }
  | { readonly _tag: "Unsupported"; readonly error: LdapUnsupported }
  | { readonly _tag: "Policy"; readonly error: LdapPasswordPolicyError }

/** The controlled operations for `controls`, borrowing through `deps.use`. */
export const operations = <R>(
  deps: Deps<R>,
  controls: ReadonlyArray<RequestControl.RequestControl>
): LdapClient.ControlledOperations<R> => {
  const { use, rootDseOf, binaryTypes, toEntry, toChange, ldaptsValues, toRequest, isNoSuchObject } = deps
  // Assertion filters are checked before anything is borrowed: a bad one is a typed invalid-filter error.
  const checked = Effect.forEach(
    controls.flatMap((c) => (c._tag === "Assertion" ? [c.filter] : [])),
    (filter) => Controls.assertion(filter),
    { discard: true }
  )
  const run = <A>(
    operation: string,
    dn: string,
    write: boolean,
    f: (connection: LdapConnection, ldapts: ReadonlyArray<Control>) => Promise<A>
  ): Effect.Effect<{ readonly value: A; readonly controls: RequestControl.ResponseControls }, LdapClient.ControlError, R> =>
    Effect.andThen(
      checked,
      use(operation, async (connection): Promise<Outcome<A>> => {
        if (controls.length > 0) {
          const rootDse = await rootDseOf(connection)
          for (const c of controls) {
            const { feature, oid } = featureOf(c)
            if (!rootDse.supportedControls.includes(oid)) {
              return { _tag: "Unsupported", error: new LdapUnsupported({ feature, oid, endpoint: connection.endpoint }) }
            }
          }
        }
        const prepared = requestControls.prepare(controls)
        try {
          const value = await f(connection, prepared.controls)
          return { _tag: "Done", value, controls: prepared.read() }
        } catch (cause) {
          const code = prepared.policyError()
          const resultCode = (cause as { code?: unknown })?.code
          if (code !== undefined && typeof resultCode === "number") {
            return {
              _tag: "Policy",
              error: new LdapPasswordPolicyError({ endpoint: connection.endpoint, dn, reason: reasonOf(code), code, resultCode })
            }
          }
          throw cause
        }
      }, write)
    ).pipe(
      Effect.flatMap((outcome) => (outcome._tag === "Done" ? Effect.succeed(outcome) : Effect.fail(outcome.error)))
    )
  const searchControlled = (base: string, searchOptions?: LdapClient.SearchOptions) => {
    // VLV and paged results do not mix: a VLV search is one request.
    const vlv = controls.some((c) => c._tag === "VirtualListView")
    const request = toRequest(vlv ? { ...searchOptions, pageSize: 0 } : searchOptions, true)
    return Effect.map(
      run("search", base, false, async (connection, ldapts) => {
        const binary = await binaryTypes(connection)
        const found = await controlledSearch.search(connection.client, base, request, ldapts)
        return { entries: found.entries.map((e) => toEntry(e, binary)), references: found.references, truncated: found.truncated }
      }),
      (r) => ({ ...r.value, controls: r.controls })
    )
  }
  const onlyControls = <A>(effect: Effect.Effect<{ readonly value: A; readonly controls: RequestControl.ResponseControls }, LdapClient.ControlError, R>) =>
    Effect.map(effect, (r) => r.controls)
  return {
    search: searchControlled,
    get: (dn, attributes) =>
      searchControlled(dn, { scope: "base", pageSize: 0, ...(attributes === undefined ? {} : { attributes }) }).pipe(
        Effect.map((r) => ({ entry: Option.fromNullishOr(r.entries[0]), controls: r.controls })),
        Effect.catchIf(isNoSuchObject, () => Effect.succeed({ entry: Option.none(), controls: {} }))
      ),
    add: (dn, attributes) =>
      onlyControls(run("add", dn, true, ({ client }, ldapts) =>
        client.add(
          dn,
          Object.entries(attributes).map(([type, v]) => new Attribute({ type, values: ldaptsValues(typeof v === "string" ? [v] : v) })),
          [...ldapts]
        ))),
    modify: (dn, changes) => onlyControls(run("modify", dn, true, ({ client }, ldapts) => client.modify(dn, changes.map(toChange), [...ldapts]))),
    delete: (dn) => onlyControls(run("delete", dn, true, ({ client }, ldapts) => client.del(dn, [...ldapts]))),
    modifyDN: (dn, newDn) => onlyControls(run("modifyDN", dn, true, ({ client }, ldapts) => client.modifyDN(dn, newDn, [...ldapts]))),
    compare: (dn, attribute, value) =>
      Effect.map(
        run("compare", dn, false, ({ client }, ldapts) => client.compare(dn, attribute, value, [...ldapts])),
        (r) => ({ matched: r.value, controls: r.controls })
      )
  }
}
