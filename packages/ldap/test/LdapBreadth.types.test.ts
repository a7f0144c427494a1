import { assert, describe, expectTypeOf, it } from "@effect/vitest"
import { Identity } from "@tether/core"
import { Effect, Layer, Redacted, Stream } from "effect"
import { LdapClient, LdapClientMemory, Ldif, RequestControl, Sasl } from "../src/index.ts"
import type { PasswordPolicy, RootDse } from "../src/index.ts"

class Ann extends Identity.Service<Ann>()("test/Ann") {}

/** Only type-checked (by `npm run typecheck`), never called. */
const typeChecks = (ldap: LdapClient.LdapClient) => {
  // A search result feeds Ldif.write with no cast.
  const ldif = Ldif.write(Stream.map(ldap.search("dc=example,dc=com"), (e) => Ldif.entry(e.dn, e.attributes)))
  expectTypeOf(ldif).toEqualTypeOf<Stream.Stream<string, LdapClient.LdapClientError>>()

  // Controlled operations: typed responses, the identity in R, LdapUnsupported and policy errors in E.
  const modified = ldap.as(Ann).withControls([RequestControl.postRead(["mail"])]).modify("uid=ann", [])
  expectTypeOf(modified).toEqualTypeOf<Effect.Effect<RequestControl.ResponseControls, LdapClient.ControlError, Ann>>()
  expectTypeOf<LdapClient.ControlError>().toEqualTypeOf<
    LdapClient.LdapClientError | RootDse.LdapUnsupported | PasswordPolicy.LdapPasswordPolicyError
  >()

  // SASL credentials say their mechanism, and are identity credentials.
  const scram = Sasl.credentials("SCRAM-SHA-256", "ann", Redacted.make("secret"))
  expectTypeOf(scram.sasl.mechanism).toEqualTypeOf<"SCRAM-SHA-256">()
  expectTypeOf(Layer.succeed(Ann, scram)).toEqualTypeOf<Layer.Layer<Ann>>()
  // @ts-expect-error: EXTERNAL has no password (Sasl.external()).
  Sasl.credentials("EXTERNAL", "ann", Redacted.make("secret"))
  // @ts-expect-error: a mechanism Tether does not bind with.
  Sasl.credentials("DIGEST-MD5", "ann", Redacted.make("secret"))
  // @ts-expect-error: PLAIN credentials are not SCRAM credentials.
  const _wrong: Sasl.Credentials<"SCRAM-SHA-256"> = Sasl.credentials("PLAIN", "ann", Redacted.make("secret"))
  // @ts-expect-error: plain identity credentials are not SASL credentials (they name no mechanism).
  LdapClient.make({ endpoints: ["ldap://x"], sasl: { principal: "x", secret: undefined, label: "x" } })
}

describe("LDAP breadth (types)", () => {
  it.effect("a search result feeds Ldif.write with no cast, and writes", () =>
    Effect.gen(function*() {
      expectTypeOf(typeChecks).toBeFunction()
      const ldap = LdapClientMemory.make([
        { dn: "dc=example,dc=com", attributes: { objectClass: ["domain"], dc: ["example"] } },
        { dn: "cn=a,dc=example,dc=com", attributes: { objectClass: ["device"], cn: ["a"], photo: [new Uint8Array([0xff])] } }
      ])
      const text = (yield* Stream.runCollect(
        Ldif.write(Stream.map(ldap.search("dc=example,dc=com", { filter: "(cn=a)" }), (e) => Ldif.entry(e.dn, e.attributes)))
      )).join("")
      assert.strictEqual(text, "version: 1\n\ndn: cn=a,dc=example,dc=com\nobjectClass: device\ncn: a\nphoto:: /w==\n\n")
    }))
})
