/**
 * `RequestControl` values as fresh ldapts controls (one set per attempt:
 * ldapts parses a response into the request's own instance), and their
 * responses read back as `ResponseControls`.
 *
 * @internal
 */
import { Control, FilterParser, PasswordPolicyControl, ServerSideSortingRequestControl } from "ldapts"
import type { BerReader, BerWriter } from "ldapts"
import { BerWriter as Writer } from "ldapts"
import { decodeEntry } from "../Controls.ts"
import { reasonOf } from "../PasswordPolicy.ts"
import type { RequestControl, ResponseControls } from "../RequestControl.ts"
import { featureOf } from "../RequestControl.ts"
import * as ber from "./ber.ts"

/** A control with a BER value that keeps its response's raw value. */
class Captured extends Control {
  response: Uint8Array | undefined
  constructor(oid: string, critical: boolean, readonly value: Uint8Array | undefined, responseType?: string) {
    super(oid, { critical, ...(responseType === undefined ? {} : { responseType }) })
  }
  protected override writeControl(writer: BerWriter): void {
    if (this.value !== undefined) writer.writeBuffer(Buffer.from(this.value), 0x04)
  }
  protected override parseControl(reader: BerReader): void {
    this.response = new Uint8Array(reader.remainingBuffer)
  }
}

const VLV_RESPONSE = "2.16.840.1.113730.3.4.10"

const attributeSelection = (attributes: ReadonlyArray<string>) =>
  ber.constructed(0x30, attributes.map((a) => ber.primitive(0x04, a)))

const int = (n: number) => ber.primitive(0x02, ber.encodeInteger(n))

export interface Prepared {
  readonly controls: ReadonlyArray<Control>
  /** The responses, after the operation settled (also when it failed). */
  readonly read: () => ResponseControls
  /** The password-policy error the server named, if any. */
  readonly policyError: () => number | undefined
}

/** Fresh ldapts controls for one attempt. Assertion filters must have been checked (they parse). */
export const prepare = (requests: ReadonlyArray<RequestControl>): Prepared => {
  let sortControl: ServerSideSortingRequestControl | undefined
  let vlv: Captured | undefined
  let pre: Captured | undefined
  let post: Captured | undefined
  let policy: PasswordPolicyControl | undefined
  const controls = requests.map((r): Control => {
    const oid = featureOf(r).oid
    switch (r._tag) {
      case "Sort":
        return (sortControl = new ServerSideSortingRequestControl({
          critical: r.critical,
          value: r.keys.map((k) => ({
            attributeType: k.attribute,
            ...(k.orderingRule === undefined ? {} : { orderingRule: k.orderingRule }),
            ...(k.reverse === undefined ? {} : { reverseOrder: k.reverse })
          }))
        }))
      case "VirtualListView":
        return (vlv = new Captured(oid, true, ber.constructed(0x30, [
          int(r.beforeCount),
          int(r.afterCount),
          ber.constructed(0xa0, [int(r.offset), int(r.contentCount)])
        ]), VLV_RESPONSE))
      case "ProxiedAuthorization":
        return new Captured(oid, true, new TextEncoder().encode(r.authzId))
      case "ManageDsaIT":
        return new Captured(oid, r.critical, undefined)
      case "SubtreeDelete":
        return new Captured(oid, true, undefined)
      case "Assertion": {
        const writer = new Writer()
        FilterParser.parseString(r.filter).write(writer)
        return new Captured(oid, true, new Uint8Array(writer.buffer))
      }
      case "PreRead":
        return (pre = new Captured(oid, false, attributeSelection(r.attributes)))
      case "PostRead":
        return (post = new Captured(oid, false, attributeSelection(r.attributes)))
      case "PasswordPolicy":
        return (policy = new PasswordPolicyControl())
      case "Other":
        return new Captured(oid, r.critical, r.value)
    }
  })
  return {
    controls,
    read: () => {
      const out: { -readonly [K in keyof ResponseControls]: ResponseControls[K] } = {}
      const sorted = sortControl?.result?.sortResult
      if (sorted !== undefined) out.sort = { resultCode: sorted }
      if (vlv?.response !== undefined) {
        const parts = ber.readAll(ber.readOne(vlv.response)?.value ?? new Uint8Array(0))
        const [target, count, result] = (parts ?? []).map((p) => ber.decodeInteger(p.value))
        if (target !== undefined && count !== undefined && result !== undefined) {
          out.virtualListView = { targetPosition: target, contentCount: count, resultCode: result }
        }
      }
      const preEntry = pre?.response === undefined ? undefined : decodeEntry(pre.response)
      if (preEntry !== undefined) out.preRead = preEntry
      const postEntry = post?.response === undefined ? undefined : decodeEntry(post.response)
      if (postEntry !== undefined) out.postRead = postEntry
      const value = policy?.value
      if (value !== undefined) {
        out.passwordPolicy = {
          secondsBeforeExpiration: value.timeBeforeExpiration,
          graceLoginsRemaining: value.graceAuthNsRemaining,
          error: value.error === undefined ? undefined : reasonOf(value.error)
        }
      }
      return out
    },
    policyError: () => policy?.value?.error
  }
}
