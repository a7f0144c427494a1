import { assert, describe, layer } from "@effect/vitest"
import { Identity } from "@tether/core"
import { Slapd } from "@tether/testkit"
import { Effect, Option, Redacted } from "effect"
import { Attribute, Change } from "ldapts"
import { Changes, Controls, Entries, LdapClient, LdapSession, PasswordModify, PasswordPolicy, RootDse } from "../src/index.ts"

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

    describe("controls, observed on the server", () => {
      const replace = (type: string, value: string) =>
        new Change({ operation: "replace", modification: new Attribute({ type, values: [value] }) })
      const onSession = <A>(d: Slapd.Directory, f: (s: LdapSession.Session) => Promise<A>, as?: Identity.Credentials) =>
        Effect.scoped(Effect.flatMap(LdapSession.open(sessionOptions(d), as), (s) => Effect.tryPromise({ try: () => f(s), catch: (e) => e })))
      const codeOf = (e: unknown) => (e as { code?: number }).code

      it.effect("assertion (RFC 4528): the write applies only when the entry matches", () =>
        Effect.gen(function*() {
          const d = yield* Slapd.Slapd
          const dn = d.users[0]!.dn
          const wrong = yield* Controls.assertion("(sn=Nobody)")
          const refused = yield* Effect.flip(onSession(d, (s) => s.connection.client.modify(dn, [replace("title", "x")], [wrong])))
          assert.strictEqual(codeOf(refused), 122)
          const right = yield* Controls.assertion("(uid=user1)")
          yield* onSession(d, (s) => s.connection.client.modify(dn, [replace("title", "asserted")], [right]))
          const broken = yield* Effect.flip(Controls.assertion("(uid=unbalanced"))
          assert.strictEqual(broken.kind, "invalid-filter")
          const ldap = yield* clientOf(d)
          assert.deepStrictEqual(Option.getOrThrow(yield* ldap.get(dn)).attributes["title"], ["asserted"])
        }).pipe(Effect.scoped))

      it.effect("pre-read and post-read (RFC 4527): the values before and after a write", () =>
        Effect.gen(function*() {
          const d = yield* Slapd.Slapd
          const dn = d.users[0]!.dn
          const pre = Controls.preRead(["title", "uid"])
          const post = Controls.postRead(["title"])
          const present = yield* Controls.assertion("(title=*)")
          yield* onSession(d, (s) => s.connection.client.modify(dn, [replace("title", "after")], [present, pre, post]))
          const before = Controls.readEntry(pre)!
          const after = Controls.readEntry(post)!
          assert.strictEqual(before.dn, dn)
          assert.deepStrictEqual(before.attributes["uid"], ["user1"])
          assert.notDeepEqual(before.attributes["title"], ["after"])
          assert.deepStrictEqual(after.attributes["title"], ["after"])
        }))

      it.effect("proxied authorization (RFC 4370): the admin acts as a user; a user may not act as another", () =>
        Effect.gen(function*() {
          const d = yield* Slapd.Slapd
          const [u1, u2] = [d.users[0]!, d.users[1]!]
          const seen = yield* onSession(d, (s) => s.connection.client.exop("1.3.6.1.4.1.4203.1.11.3", undefined, [Controls.proxiedAuthorization(`dn:${u1.dn}`)]))
          assert.strictEqual(seen.value, `dn:${u1.dn}`)
          // As the user: a write the user may not do is refused even though the admin asked.
          const denied = yield* Effect.flip(onSession(d, (s) => s.connection.client.modify(u2.dn, [replace("title", "nope")], [Controls.proxiedAuthorization(`dn:${u1.dn}`)])))
          assert.strictEqual(codeOf(denied), 50)
          // A plain user may not proxy at all.
          const notAllowed = yield* Effect.flip(onSession(d, (s) => s.connection.client.exop("1.3.6.1.4.1.4203.1.11.3", undefined, [Controls.proxiedAuthorization(`dn:${u2.dn}`)]), userCredentials(u1)))
          assert.strictEqual(codeOf(notAllowed), 123)
        }))

      it.effect("ManageDsaIT (RFC 3296): a referral object is returned as an entry, not followed", () =>
        Effect.gen(function*() {
          const d = yield* Slapd.Slapd
          const ldap = yield* clientOf(d)
          const dn = `ou=elsewhere,${d.suffix}`
          yield* onSession(d, (s) => s.connection.client.add(dn, { objectClass: ["referral", "extensibleObject"], ou: "elsewhere", ref: "ldap://other.example.com/ou=elsewhere,dc=example,dc=com" }, [Controls.manageDsaIT()]))
          const referred = yield* Effect.flip(onSession(d, (s) => s.connection.client.search(dn, { scope: "base" })))
          assert.strictEqual(codeOf(referred), 10)
          const managed = yield* onSession(d, (s) => s.connection.client.search(dn, { scope: "base", attributes: ["ref"] }, [Controls.manageDsaIT()]))
          assert.strictEqual(managed.searchEntries[0]?.dn, dn)
          yield* onSession(d, (s) => s.connection.client.del(dn, [Controls.manageDsaIT()]))
          assert.isFalse(yield* Entries.exists(ldap, dn))
        }).pipe(Effect.scoped))

      it.effect("server-side sort (RFC 2891, sssvlv): results come back in the requested order", () =>
        Effect.gen(function*() {
          const d = yield* Slapd.Slapd
          // uid has no ORDERING rule: a critical sort on it alone is refused (inappropriate matching).
          const unsortable = yield* Effect.flip(onSession(d, (s) => s.connection.client.search(d.peopleDn, { filter: "(uid=user*)" }, [Controls.serverSideSort([{ attribute: "uid" }])])))
          assert.strictEqual(codeOf(unsortable), 18)
          const sort = Controls.serverSideSort([{ attribute: "uid", orderingRule: "caseIgnoreOrderingMatch", reverse: true }])
          const result = yield* onSession(d, (s) => s.connection.client.search(d.peopleDn, { filter: "(uid=user*)", attributes: ["uid"] }, [sort]))
          const uids = result.searchEntries.map((e) => String(e["uid"]))
          assert.isAbove(uids.length, 2)
          // Not the server's natural (insertion) order.
          assert.strictEqual(uids[uids.length - 1], "user1")
          assert.deepStrictEqual(uids, [...uids].sort().reverse())
          assert.strictEqual(Controls.sortResult(sort), 0)
          const forward = Controls.serverSideSort([{ attribute: "uid", orderingRule: "caseIgnoreOrderingMatch" }])
          const again = yield* onSession(d, (s) => s.connection.client.search(d.peopleDn, { filter: "(uid=user*)", attributes: ["uid"] }, [forward]))
          assert.deepStrictEqual(again.searchEntries.map((e) => String(e["uid"])), [...uids].reverse())
        }))
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
