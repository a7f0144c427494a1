/**
 * ldapts's request sender (`_ensureConnected`, `_nextMessageId`, `_send`),
 * private in its types: looked up at run time, a missing one reported as an
 * error (never a crash), so an ldapts upgrade that renames it fails loudly.
 *
 * @internal
 */
import type { Client } from "ldapts"

export interface Sender {
  _ensureConnected(): Promise<void>
  _nextMessageId(): number
  _send<T>(message: unknown): Promise<T | undefined>
}

export const senderOf = (client: Client): Sender => {
  const s = client as unknown as Partial<Sender>
  if (typeof s._ensureConnected !== "function" || typeof s._nextMessageId !== "function" || typeof s._send !== "function") {
    throw new Error("this ldapts version does not expose its request sender (_send); Tether needs ldapts 9.x")
  }
  return s as Sender
}
