import { describe, expectTypeOf, it } from "@effect/vitest"
import type { ServerSet } from "@tether/core"
import { Identity } from "@tether/core"
import { Effect } from "effect"

class Admin extends Identity.Service<Admin>()("test/Admin") {}
class EndUser extends Identity.Service<EndUser>()("test/EndUser") {}

type Conn = { readonly query: (q: string) => string }

/** Only type-checked (by `npm run typecheck`), never called. */
const typeChecks = (directory: ServerSet.ServerSet<Conn, never>) => {
  const asAdmin = directory.as(Admin).use((c) => Effect.succeed(c.query("whoami")))
  expectTypeOf(asAdmin).toEqualTypeOf<Effect.Effect<string, ServerSet.UseError<never>, Admin>>()
  const _both = Effect.andThen(asAdmin, directory.as(EndUser).use((c) => Effect.succeed(c.query("me"))))
  expectTypeOf<Effect.Services<typeof _both>>().toEqualTypeOf<Admin | EndUser>()
  // @ts-expect-error: Admin is missing, so this does not compile.
  Effect.runPromise(asAdmin)
  const _provided = asAdmin.pipe(Effect.provideService(Admin, Identity.anonymous))
  expectTypeOf<Effect.Services<typeof _provided>>().toEqualTypeOf<never>()
}

describe("Identity (types)", () => {
  it("an effect that runs as an identity requires it, and does not compile without it", () => {
    // The assertions live in `typeChecks`, checked by tsc; a wrong type fails `npm run typecheck`.
    expectTypeOf(typeChecks).toBeFunction()
    expectTypeOf(Identity.anonymous).toEqualTypeOf<Identity.Credentials>()
  })
})
