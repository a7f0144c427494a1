/**
 * SASL binds on a connection: PLAIN and EXTERNAL in one step (ldapts's
 * `bindSASL`), SCRAM in two, through ldapts's sender (its `bindSASL` sends
 * one request and treats "SASL bind in progress" as an error).
 *
 * @internal
 */
import { Effect, Redacted } from "effect"
import { BindRequest, MessageResponseStatus, StatusCodeParser } from "ldapts"
import type { BindResponse } from "ldapts"
import type { LdapConnection } from "../LdapDriver.ts"
import { fromUnknown, LdapConnectionError, LdapInvalidCredentials } from "../LdapError.ts"
import type { LdapError } from "../LdapError.ts"
import type { Credentials } from "../Sasl.ts"
import * as scram from "./scram.ts"
import { senderOf } from "./sender.ts"

const WHO_AM_I = "1.3.6.1.4.1.4203.1.11.3"

class ScramServerRefused extends Error {}

const sendBind = async (connection: LdapConnection, mechanism: string, credentials: string): Promise<BindResponse> => {
  const sender = senderOf(connection.client)
  await sender._ensureConnected()
  const response = await sender._send<BindResponse>(
    new BindRequest({ messageId: sender._nextMessageId(), mechanism, password: credentials })
  )
  if (response === undefined) throw new Error("no bind response")
  return response
}

const runScram = async (connection: LdapConnection, hash: scram.Hash, mechanism: string, c: Credentials): Promise<void> => {
  const password = c.secret === undefined ? "" : Redacted.value(c.secret)
  const first = scram.start(c.sasl.user, c.sasl.authzId)
  const challenge = await sendBind(connection, mechanism, first.clientFirst)
  // 14: SASL bind in progress, carrying the server-first message.
  if (challenge.status !== 14) throw StatusCodeParser.parse(challenge)
  const final = scram.finish(hash, first, challenge.data[0] ?? "", password)
  if ("refused" in final) throw new ScramServerRefused(final.refused)
  const done = await sendBind(connection, mechanism, final.clientFinal)
  if (done.status !== MessageResponseStatus.Success) throw StatusCodeParser.parse(done)
  if (done.data[0] !== final.expectedServerFinal) throw new ScramServerRefused("the server did not prove it knows the password")
}

const describe = (c: Credentials) => `(SASL ${c.sasl.mechanism}${c.sasl.user === "" ? "" : ` ${c.sasl.user}`})`

/** Binds the connection with SASL, then records whom the server sees (Who am I?). */
export const bind = (connection: LdapConnection, c: Credentials): Effect.Effect<void, LdapError> => {
  const dn = describe(c)
  const exchange = (): Promise<void> => {
    switch (c.sasl.mechanism) {
      case "PLAIN": {
        const password = c.secret === undefined ? "" : Redacted.value(c.secret)
        return connection.client.bindSASL("PLAIN", `${c.sasl.authzId ?? ""}\u0000${c.sasl.user}\u0000${password}`)
      }
      case "EXTERNAL":
        return connection.client.bindSASL("EXTERNAL", c.sasl.authzId ?? "")
      case "SCRAM-SHA-1":
        return runScram(connection, "sha1", "SCRAM-SHA-1", c)
      case "SCRAM-SHA-256":
        return runScram(connection, "sha256", "SCRAM-SHA-256", c)
    }
  }
  return Effect.tryPromise({
    try: async () => {
      await exchange()
      const seen = (await connection.client.exop(WHO_AM_I)).value ?? ""
      return seen.startsWith("dn:") ? seen.slice(3) : seen
    },
    catch: (cause) => {
      if (cause instanceof ScramServerRefused) {
        return new LdapConnectionError({ endpoint: connection.endpoint, code: "ESCRAM", reason: cause.message, mayHaveReachedServer: true })
      }
      const error = fromUnknown(cause, { endpoint: connection.endpoint, operation: "bind", dn })
      // 7: the server does not offer the mechanism (or, for EXTERNAL, got no certificate it accepts).
      return error._tag === "LdapOperationError" && error.resultCode === 7
        ? new LdapInvalidCredentials({ endpoint: connection.endpoint, dn, resultCode: 7 })
        : error
    }
  }).pipe(
    Effect.tap((boundAs) => Effect.sync(() => (connection.boundAs = boundAs))),
    Effect.tapError(() => Effect.sync(() => (connection.boundAs = ""))),
    Effect.asVoid
  )
}
