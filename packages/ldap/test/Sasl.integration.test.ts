import { assert, layer } from "@effect/vitest"
import { Identity } from "@tether/core"
import { Slapd } from "@tether/testkit"
import { Effect, Layer, Redacted } from "effect"
import { Client } from "ldapts"
import { LdapClient, LdapSession, Sasl } from "../src/index.ts"
import { adminClient } from "./support.ts"

class Ann extends Identity.Service<Ann>()("test/Ann") {}

const mechanisms = ["PLAIN", "SCRAM-SHA-1", "SCRAM-SHA-256"] as const

layer(Slapd.layer({ servers: 1, users: 3, sasl: true }), { excludeTestServices: true })("SASL PLAIN and SCRAM on slapd (Cyrus SASL)", (it) => {
  const anonymousClient = (d: Slapd.Directory) => LdapClient.make({ endpoints: [d.server.url], health: false, allowPlaintext: true })

  it.effect("an identity binds with each mechanism; the server sees the mapped entry", () =>
    Effect.gen(function*() {
      const d = yield* Slapd.Slapd
      const ldap = yield* anonymousClient(d)
      const u = d.users[0]!
      const rootDse = yield* ldap.rootDse
      for (const mechanism of mechanisms) {
        assert.include(rootDse.supportedSaslMechanisms, mechanism)
        const credentials = Sasl.credentials(mechanism, u.uid, Redacted.make(u.password))
        const who = yield* ldap.as(Ann).whoami.pipe(Effect.provide(Layer.succeed(Ann, credentials)))
        assert.strictEqual(who, `dn:${u.dn}`, mechanism)
        // Pooled connections are matched by mechanism: each has its own principal (and pool key).
        assert.strictEqual(credentials.principal, `sasl:${mechanism}:${u.uid}`)
      }
      assert.strictEqual(yield* ldap.whoami, "")
    }).pipe(Effect.scoped))

  it.effect("a wrong password is LdapInvalidCredentials with each mechanism, and never appears in the error", () =>
    Effect.gen(function*() {
      const d = yield* Slapd.Slapd
      const ldap = yield* anonymousClient(d)
      for (const mechanism of mechanisms) {
        const wrong = Sasl.credentials(mechanism, d.users[1]!.uid, Redacted.make("not-the-password-xyz"))
        const error = yield* Effect.flip(ldap.as(Ann).whoami.pipe(Effect.provide(Layer.succeed(Ann, wrong))))
        assert.strictEqual(error._tag, "LdapInvalidCredentials", mechanism)
        assert.strictEqual(error._tag === "LdapInvalidCredentials" && error.resultCode, 49)
        assert.notInclude(JSON.stringify(error) + error.message, "not-the-password-xyz")
      }
    }).pipe(Effect.scoped))

  it.effect("the service identity binds with SCRAM-SHA-256 (option sasl); sasl with bindDn is refused at construction", () =>
    Effect.gen(function*() {
      const d = yield* Slapd.Slapd
      const u = d.users[2]!
      const ldap = yield* LdapClient.make({
        endpoints: [d.server.url],
        sasl: Sasl.credentials("SCRAM-SHA-256", u.uid, Redacted.make(u.password)),
        health: false
      })
      assert.strictEqual(yield* ldap.whoami, `dn:${u.dn}`)
      assert.strictEqual(yield* ldap.whoami, `dn:${u.dn}`)
      const both = yield* Effect.flip(LdapClient.make({
        endpoints: [d.server.url],
        bindDn: d.adminDn,
        password: Redacted.make(d.adminPassword),
        sasl: Sasl.credentials("PLAIN", u.uid, Redacted.make(u.password))
      }))
      assert.match(both.message, /sasl/)
    }).pipe(Effect.scoped))

  it.effect("one pooled connection re-bound between mechanisms and identities always answers as the identity asked for", () =>
    Effect.gen(function*() {
      const d = yield* Slapd.Slapd
      const ldap = yield* adminClient(d, {
        allowPlaintext: true,
        pool: { max: 1 }
      })
      const [u1, u2] = [d.users[0]!, d.users[1]!]
      const asked: ReadonlyArray<readonly [Identity.Credentials | undefined, string]> = [
        [Sasl.credentials("PLAIN", u1.uid, Redacted.make(u1.password), { label: "plain" }), `dn:${u1.dn}`],
        [undefined, `dn:${d.adminDn}`],
        [Sasl.credentials("SCRAM-SHA-256", u2.uid, Redacted.make(u2.password), { label: "scram256" }), `dn:${u2.dn}`],
        [Sasl.credentials("SCRAM-SHA-1", u1.uid, Redacted.make(u1.password), { label: "scram1" }), `dn:${u1.dn}`],
        [Identity.make(u2.dn, Redacted.make(u2.password), { label: "simple" }), `dn:${u2.dn}`]
      ]
      for (let round = 0; round < 2; round++) {
        for (const [credentials, expected] of asked) {
          const who = credentials === undefined ? ldap.whoami : ldap.as(Ann).whoami.pipe(Effect.provide(Layer.succeed(Ann, credentials)))
          assert.strictEqual((yield* who).toLowerCase(), expected.toLowerCase())
        }
      }
      const [endpoint] = (yield* ldap.status).endpoints
      assert.isAtMost(endpoint!.pool.open, 1)
      assert.isAbove(endpoint!.pool.rebinds + endpoint!.pool.evictions, 0)
      // Each mechanism is its own identity in the pool (by label), never sharing a bound connection.
      assert.includeMembers(endpoint!.pool.identities.map((i) => i.label), ["plain", "scram256", "scram1", "simple"])
    }).pipe(Effect.scoped))

  it.effect("an unpooled session binds with SASL too (its options' sasl, or an identity)", () =>
    Effect.gen(function*() {
      const d = yield* Slapd.Slapd
      const [u1, u2] = [d.users[0]!, d.users[1]!]
      const service = yield* LdapSession.open({ endpoints: [d.server.url], sasl: Sasl.credentials("SCRAM-SHA-1", u1.uid, Redacted.make(u1.password)) })
      assert.strictEqual(service.connection.boundAs, u1.dn)
      const asUser = yield* LdapSession.open({ endpoints: [d.server.url] }, Sasl.credentials("SCRAM-SHA-256", u2.uid, Redacted.make(u2.password)))
      assert.strictEqual(asUser.connection.boundAs, u2.dn)
      const refused = yield* Effect.flip(LdapSession.open({ endpoints: [d.server.url] }, Sasl.credentials("SCRAM-SHA-256", u2.uid, Redacted.make("nope"))))
      assert.strictEqual(refused._tag, "LdapInvalidCredentials")
    }).pipe(Effect.scoped))

  it.effect("why Tether runs SCRAM itself: ldapts sends one bind request and stops at 'SASL bind in progress' (14)", () =>
    Effect.gen(function*() {
      const d = yield* Slapd.Slapd
      const client = new Client({ url: d.server.url })
      const error = yield* Effect.flip(Effect.tryPromise({
        try: () => client.bindSASL("SCRAM-SHA-1", `n,,n=${d.users[0]!.uid},r=abcdefgh`),
        catch: (e) => e as { code?: number }
      }))
      yield* Effect.promise(() => client.unbind().catch(() => undefined))
      assert.strictEqual(error.code, 14)
    }))
})

layer(Slapd.layer({ servers: 1, users: 1 }), { excludeTestServices: true })("SASL on a server that does not allow the mechanism", (it) => {
  it.effect("PLAIN without TLS on a default slapd (sasl-secprops noplain): LdapInvalidCredentials, result code 48 (inappropriate authentication)", () =>
    Effect.gen(function*() {
      const d = yield* Slapd.Slapd
      const ldap = yield* LdapClient.make({ endpoints: [d.server.url], health: false, allowPlaintext: true })
      const u = d.users[0]!
      const error = yield* Effect.flip(
        ldap.as(Ann).whoami.pipe(Effect.provide(Layer.succeed(Ann, Sasl.credentials("PLAIN", u.uid, Redacted.make(u.password)))))
      )
      assert.strictEqual(error._tag, "LdapInvalidCredentials")
      assert.strictEqual(error._tag === "LdapInvalidCredentials" && error.resultCode, 48)
    }).pipe(Effect.scoped))
})
