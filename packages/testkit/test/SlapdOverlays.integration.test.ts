import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { Client } from "ldapts"
import { Slapd } from "../src/index.ts"

const rootDse = (url: string) =>
  Effect.promise(async () => {
    const client = new Client({ url })
    try {
      const { searchEntries } = await client.search("", { scope: "base", attributes: ["supportedControl"] })
      return ([] as Array<string>).concat(searchEntries[0]?.["supportedControl"] as Array<string> ?? [])
    } finally {
      await client.unbind()
    }
  })

describe("Slapd overlays", () => {
  it.live("ppolicy and sssvlv are off by default, on when asked, with the default policy seeded", () =>
    Effect.scoped(Effect.gen(function*() {
      const plain = yield* Slapd.make({ users: 0 })
      const off = yield* rootDse(plain.server.url)
      assert.notInclude(off, "1.3.6.1.4.1.42.2.27.8.5.1")
      assert.notInclude(off, "1.2.840.113556.1.4.473")

      const d = yield* Slapd.make({ users: 1, ppolicy: { defaultPolicy: { pwdMaxFailure: "2", pwdLockout: "TRUE" } }, sssvlv: true })
      const on = yield* rootDse(d.server.url)
      assert.include(on, "1.3.6.1.4.1.42.2.27.8.5.1")
      assert.include(on, "1.2.840.113556.1.4.473")
      const policy = yield* Effect.promise(async () => {
        const client = new Client({ url: d.server.url })
        try {
          await client.bind(d.adminDn, d.adminPassword)
          const { searchEntries } = await client.search(`cn=default,ou=policies,${d.suffix}`, { scope: "base" })
          return searchEntries[0]
        } finally {
          await client.unbind()
        }
      })
      assert.strictEqual(policy?.["pwdMaxFailure"], "2")
      assert.strictEqual(policy?.["pwdAttribute"], "userPassword")
      // The policy is in force: two wrong binds lock the user.
      const user = d.users[0]!
      const bind = (password: string) =>
        Effect.promise(async () => {
          const client = new Client({ url: d.server.url })
          try {
            await client.bind(user.dn, password)
            return true
          } catch {
            return false
          } finally {
            await client.unbind()
          }
        })
      assert.isFalse(yield* bind("wrong"))
      assert.isFalse(yield* bind("wrong"))
      assert.isFalse(yield* bind(user.password))
    })))
})
