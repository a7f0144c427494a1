import { assert, describe, layer } from "@effect/vitest"
import { Identity } from "@tether/core"
import { Slapd } from "@tether/testkit"
import { Effect, Option, Redacted } from "effect"
import { Changes, Entries, LdapClient, LdapSession, PasswordModify, PasswordPolicy, RootDse } from "../src/index.ts"

class EndUser extends Identity.Service<EndUser>()("test/EndUser") {}

const POLICY = { pwdMaxFailure: "3", pwdLockout: "TRUE", pwdMustChange: "TRUE", pwdAllowUserChange: "TRUE" }

layer(Slapd.layer({ servers: 1, users: 6, ppolicy: { defaultPolicy: POLICY }, sssvlv: true }), { excludeTestServices: true })(
  "LDAP breadth",
  (it) => {
    const sessionOptions = (d: Slapd.Directory, extra?: Partial<LdapSession.Options>): LdapSession.Options => ({
      endpoints: [d.server.url],
      bindDn: d.adminDn,
      password: Redacted.make(d.adminPassword),
      ...extra
    })
    const clientOf = (d: Slapd.Directory) =>
      LdapClient.make({ endpoints: [d.server.url], bindDn: d.adminDn, password: Redacted.make(d.adminPassword), health: false })
    const userCredentials = (u: Slapd.User, password = u.password) => Identity.make(u.dn, Redacted.make(password))
    /** Whether a plain bind as dn/password succeeds (its own session). */
    const canBind = (d: Slapd.Directory, dn: string, password: string) =>
      Effect.scoped(LdapSession.open(sessionOptions(d), Identity.make(dn, Redacted.make(password)))).pipe(
        Effect.as(true),
        Effect.catchTag("LdapInvalidCredentials", () => Effect.succeed(false))
      )

    describe("root DSE and subschema", () => {
      it.effect("reads what the server advertises, and refuses what it does not with LdapUnsupported", () =>
        Effect.gen(function*() {
          const d = yield* Slapd.Slapd
          const { rootDse, subschema } = yield* Effect.scoped(
            Effect.flatMap(LdapSession.open(sessionOptions(d)), (s) => RootDse.read(s))
          )
          assert.strictEqual(rootDse.endpoint, d.server.url)
          assert.include(rootDse.namingContexts, d.suffix)
          assert.include(rootDse.supportedLdapVersions, "3")
          for (const f of ["passwordModify", "whoAmI", "pagedResults", "passwordPolicy", "serverSideSort", "assertion", "preRead", "postRead", "manageDsaIT", "proxiedAuthorization"] as const) {
            assert.isTrue(RootDse.supports(rootDse, f), f)
          }
          // OpenLDAP has no Tree Delete control: refused before anything is sent, naming feature and server.
          const refused = yield* Effect.flip(RootDse.require(rootDse, "treeDelete"))
          assert.strictEqual(refused._tag, "LdapUnsupported")
          assert.strictEqual(refused.endpoint, d.server.url)
          assert.strictEqual(refused.oid, "1.2.840.113556.1.4.805")
          assert.match(refused.message, /does not support treeDelete/)

          const inet = subschema!.objectClasses.get("inetorgperson")!
          assert.strictEqual(inet.kind, "structural")
          assert.deepStrictEqual(inet.sup, ["organizationalPerson"])
          assert.include(inet.may, "mail")
          assert.include(subschema!.objectClasses.get("top")!.must, "objectClass")
          assert.strictEqual(RootDse.syntaxOf(subschema!, "userPassword"), "1.3.6.1.4.1.1466.115.121.1.40")
          // cn has no SYNTAX of its own: inherited from name.
          assert.strictEqual(RootDse.syntaxOf(subschema!, "CN"), "1.3.6.1.4.1.1466.115.121.1.15")
        }))

      it.effect("a session fails over past a dead endpoint; a wrong password is the answer, not a reason to fail over", () =>
        Effect.gen(function*() {
          const d = yield* Slapd.Slapd
          const reached = yield* Effect.scoped(
            Effect.map(LdapSession.open(sessionOptions(d, { endpoints: ["ldap://127.0.0.1:1", d.server.url] })), (s) => s.endpoint)
          )
          assert.strictEqual(reached, d.server.url)
          const wrong = yield* Effect.flip(Effect.scoped(LdapSession.open(sessionOptions(d, { password: Redacted.make("wrong") }))))
          assert.strictEqual(wrong._tag, "LdapInvalidCredentials")
          assert.notInclude(JSON.stringify(wrong) + wrong.message, "wrong\"")
          const none = yield* Effect.flip(Effect.scoped(LdapSession.open(sessionOptions(d, { endpoints: ["ldap://127.0.0.1:1"] }))))
          assert.strictEqual(none._tag, "LdapConnectionError")
        }))
    })

    describe("Entries and Changes", () => {
      it.effect("searchOne: the entry, LdapNotFound, LdapNotUnique; exists", () =>
        Effect.gen(function*() {
          const d = yield* Slapd.Slapd
          const ldap = yield* clientOf(d)
          const one = yield* Entries.searchOne(ldap, d.peopleDn, { filter: "(uid=user1)" })
          assert.strictEqual(one.dn, d.users[0]!.dn)
          const missing = yield* Effect.flip(Entries.searchOne(ldap, d.peopleDn, { filter: "(uid=nobody)" }))
          assert.strictEqual(missing._tag, "LdapNotFound")
          const many = yield* Effect.flip(Entries.searchOne(ldap, d.peopleDn, { filter: "(uid=user*)" }))
          assert.strictEqual(many._tag, "LdapNotUnique")
          if (many._tag === "LdapNotUnique") assert.strictEqual(many.dns.length, 2)
          assert.isTrue(yield* Entries.exists(ldap, d.users[0]!.dn))
          assert.isFalse(yield* Entries.exists(ldap, `uid=ghost,${d.peopleDn}`))
          assert.isFalse(yield* Entries.exists(ldap, `uid=ghost,ou=nowhere,${d.suffix}`))
        }).pipe(Effect.scoped))

      it.effect("the change builder's changes land on the server", () =>
        Effect.gen(function*() {
          const d = yield* Slapd.Slapd
          const ldap = yield* clientOf(d)
          const dn = d.users[1]!.dn
          yield* ldap.modify(dn, Changes.make().replace("mail", "new@example.com").add("description", "a", "b").build())
          yield* ldap.modify(dn, Changes.make().delete("description", "a").delete("givenName").build())
          const entry = Option.getOrThrow(yield* ldap.get(dn))
          assert.deepStrictEqual(entry.attributes["mail"], ["new@example.com"])
          assert.deepStrictEqual(entry.attributes["description"], ["b"])
          assert.isUndefined(entry.attributes["givenName"])
        }).pipe(Effect.scoped))

      it.effect("deleteTree deletes a deep subtree leaves first; without rights it deletes nothing and reports every entry", () =>
        Effect.gen(function*() {
          const d = yield* Slapd.Slapd
          const ldap = yield* clientOf(d)
          const root = `ou=tree,${d.suffix}`
          const dns: Array<string> = [root]
          yield* ldap.add(root, { objectClass: "organizationalUnit", ou: "tree" })
          for (const a of ["a", "b"]) {
            const mid = `ou=${a},${root}`
            yield* ldap.add(mid, { objectClass: "organizationalUnit", ou: a })
            dns.push(mid)
            for (let i = 0; i < 3; i++) {
              const leaf = `cn=x\\,${i},${mid}`
              yield* ldap.add(leaf, { objectClass: "organizationalRole", cn: `x,${i}` })
              dns.push(leaf)
            }
          }
          // A plain user may only read: every delete is refused, nothing is lost, all reported.
          const user = d.users[5]!
          const denied = yield* Effect.provideService(
            Entries.deleteTree(ldap.as(EndUser), root),
            EndUser,
            userCredentials(user)
          )
          assert.strictEqual(denied.deleted, 0)
          // Leaves are tried (and refused); their parents are tried too and refused.
          assert.strictEqual(denied.failed.length, dns.length)
          assert.isTrue(denied.failed.every((f) => f.error._tag === "LdapOperationError"))
          assert.isTrue(yield* Entries.exists(ldap, root))

          const report = yield* Entries.deleteTree(ldap, root)
          assert.deepStrictEqual(report, { deleted: dns.length, failed: [] })
          assert.isFalse(yield* Entries.exists(ldap, root))
          assert.deepStrictEqual(yield* Entries.deleteTree(ldap, root), { deleted: 0, failed: [] })
        }).pipe(Effect.scoped))
    })

    describe("Password Modify (RFC 3062)", () => {
      it.effect("a user changes their own password; the pooled identity follows the new secret", () =>
        Effect.gen(function*() {
          const d = yield* Slapd.Slapd
          const user = d.users[2]!
          const ldap = yield* clientOf(d)
          const directories = RootDse.makeCache()
          const opts = sessionOptions(d)

          const wrong = yield* Effect.flip(
            PasswordModify.changeOwnPassword(opts, userCredentials(user, "not-it"), Redacted.make("n3w-pass"), directories)
          )
          assert.strictEqual(wrong._tag, "LdapInvalidCredentials")
          assert.isTrue(yield* canBind(d, user.dn, user.password))

          const old = userCredentials(user)
          const whoami = Effect.provideService(ldap.as(EndUser).whoami, EndUser, old)
          assert.strictEqual(yield* whoami, `dn:${user.dn}`)

          const updated = yield* PasswordModify.changeOwnPassword(opts, old, Redacted.make("n3w-pass"), directories)
          assert.strictEqual(updated.principal, user.dn)
          assert.strictEqual(Redacted.value(updated.secret!), "n3w-pass")
          assert.isFalse(yield* canBind(d, user.dn, user.password))
          assert.isTrue(yield* canBind(d, user.dn, "n3w-pass"))

          // Through the pool: the new credentials work, the old ones are refused (never an old connection).
          assert.strictEqual(yield* Effect.provideService(ldap.as(EndUser).whoami, EndUser, updated), `dn:${user.dn}`)
          const stale = yield* Effect.flip(whoami)
          assert.strictEqual(stale._tag, "LdapInvalidCredentials")
        }).pipe(Effect.scoped))

      it.effect("a wrong old password is refused on a bound session and changes nothing", () =>
        Effect.gen(function*() {
          const d = yield* Slapd.Slapd
          const user = d.users[3]!
          const error = yield* Effect.flip(Effect.scoped(Effect.flatMap(
            LdapSession.open(sessionOptions(d), userCredentials(user)),
            (s) => PasswordModify.modify(s, { oldPassword: Redacted.make("bad"), newPassword: Redacted.make("other") })
          )))
          assert.strictEqual(error._tag, "LdapOperationError")
          assert.isTrue(yield* canBind(d, user.dn, user.password))
          assert.isFalse(yield* canBind(d, user.dn, "other"))
        }))

      it.effect("an administrator reset generates a password; the policy then demands a change", () =>
        Effect.gen(function*() {
          const d = yield* Slapd.Slapd
          const user = d.users[4]!
          const generated = yield* Effect.scoped(Effect.flatMap(
            LdapSession.open(sessionOptions(d)),
            (s) => PasswordModify.modify(s, { user: user.dn })
          ))
          const secret = Option.getOrThrow(generated)
          assert.isAbove(Redacted.value(secret).length, 4)
          assert.notInclude(String(secret), Redacted.value(secret))
          assert.isFalse(yield* canBind(d, user.dn, user.password))

          const state = yield* PasswordPolicy.bind(sessionOptions(d), user.dn, secret)
          assert.isTrue(state.mustChangePassword)
          const changed = yield* PasswordModify.changeOwnPassword(sessionOptions(d), Identity.make(user.dn, secret), Redacted.make("mine-now"))
          const after = yield* PasswordPolicy.bind(sessionOptions(d), user.dn, changed.secret!)
          assert.isFalse(after.mustChangePassword)
        }))
    })

    describe("password policy on binds", () => {
      const addUser = (ldap: LdapClient.LdapClient, d: Slapd.Directory, uid: string, policy?: string) =>
        ldap.add(`uid=${uid},${d.peopleDn}`, {
          objectClass: "inetOrgPerson",
          uid,
          cn: uid,
          sn: uid,
          userPassword: `${uid}-pw`,
          ...(policy === undefined ? {} : { pwdPolicySubentry: policy })
        })
      const addPolicy = (ldap: LdapClient.LdapClient, d: Slapd.Directory, cn: string, attributes: Record<string, string>) =>
        Effect.as(
          ldap.add(`cn=${cn},ou=policies,${d.suffix}`, { objectClass: ["device", "pwdPolicy"], cn, pwdAttribute: "userPassword", ...attributes }),
          `cn=${cn},ou=policies,${d.suffix}`
        )

      it.effect("three wrong passwords lock the account: the right one is then refused as accountLocked", () =>
        Effect.gen(function*() {
          const d = yield* Slapd.Slapd
          const ldap = yield* clientOf(d)
          yield* addUser(ldap, d, "locky")
          const dn = `uid=locky,${d.peopleDn}`
          const ok = yield* PasswordPolicy.bind(sessionOptions(d), dn, Redacted.make("locky-pw"))
          assert.isFalse(ok.mustChangePassword)
          for (let i = 0; i < 3; i++) {
            const e = yield* Effect.flip(PasswordPolicy.bind(sessionOptions(d), dn, Redacted.make("wrong")))
            assert.strictEqual(e._tag, "LdapInvalidCredentials")
          }
          const locked = yield* Effect.flip(PasswordPolicy.bind(sessionOptions(d), dn, Redacted.make("locky-pw")))
          assert.strictEqual(locked._tag, "LdapPasswordPolicyError")
          if (locked._tag === "LdapPasswordPolicyError") {
            assert.strictEqual(locked.reason, "accountLocked")
            assert.notInclude(locked.message, "locky-pw")
          }
        }).pipe(Effect.scoped))

      it.effect("an expiring password warns; an expired one uses grace logins, then is refused as passwordExpired", () =>
        Effect.gen(function*() {
          const d = yield* Slapd.Slapd
          const ldap = yield* clientOf(d)
          const warn = yield* addPolicy(ldap, d, "warn", { pwdMaxAge: "100000", pwdExpireWarning: "200000" })
          yield* addUser(ldap, d, "warren", warn)
          const warned = yield* PasswordPolicy.bind(sessionOptions(d), `uid=warren,${d.peopleDn}`, Redacted.make("warren-pw"))
          assert.isDefined(warned.secondsBeforeExpiration)
          assert.isAbove(warned.secondsBeforeExpiration!, 0)
          assert.isAtMost(warned.secondsBeforeExpiration!, 100000)

          const short = yield* addPolicy(ldap, d, "short", { pwdMaxAge: "1", pwdGraceAuthNLimit: "2" })
          yield* addUser(ldap, d, "gracie", short)
          const dn = `uid=gracie,${d.peopleDn}`
          const login = PasswordPolicy.bind(sessionOptions(d), dn, Redacted.make("gracie-pw"))
          // Wait (polling, no wall-clock bound) until the 1-second password has expired: the first grace login.
          let state = yield* login
          while (state.graceLoginsRemaining === undefined) {
            yield* Effect.sleep("200 millis")
            state = yield* login
          }
          assert.strictEqual(state.graceLoginsRemaining, 1)
          assert.strictEqual((yield* login).graceLoginsRemaining, 0)
          const expired = yield* Effect.flip(login)
          assert.strictEqual(expired._tag, "LdapPasswordPolicyError")
          if (expired._tag === "LdapPasswordPolicyError") assert.strictEqual(expired.reason, "passwordExpired")
          // A wrong password stays a plain LdapInvalidCredentials.
          const wrong = yield* Effect.flip(PasswordPolicy.bind(sessionOptions(d), `uid=warren,${d.peopleDn}`, Redacted.make("nope")))
          assert.strictEqual(wrong._tag, "LdapInvalidCredentials")
        }).pipe(Effect.scoped))
    })

    describe("per-endpoint cache", () => {
      it.effect("reads once per endpoint: a dead server still answers from the cache until invalidated", () =>
        Effect.gen(function*() {
          const d = yield* Slapd.Slapd
          const cache = RootDse.makeCache()
          yield* Effect.scoped(Effect.gen(function*() {
            const session = yield* LdapSession.open(sessionOptions(d))
            const first = yield* cache.get(session)
            yield* d.kill(d.server)
            const again = yield* cache.get(session)
            assert.strictEqual(again, first)
            yield* cache.invalidate(session.endpoint)
            const gone = yield* Effect.flip(cache.get(session))
            assert.include(["LdapConnectionError", "LdapTimeout"], gone._tag)
            // A failed read is not cached.
            yield* d.restart(d.server)
          }))
          const fresh = yield* Effect.scoped(Effect.flatMap(LdapSession.open(sessionOptions(d)), (s) => cache.get(s)))
          assert.include(fresh.rootDse.namingContexts, d.suffix)
        }))
    })
  }
)
