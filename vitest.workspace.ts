import { defineConfig } from "vitest/config"

// Workspace packages resolve to their sources (`src/*.ts`) through the
// `@tether/source` export condition, so tests need no build; published
// consumers get `dist/` through `types`/`import` (see each package.json).
// The rest is Vite's default server conditions less `module`: a package's
// `module` build may be meant for bundlers only (`@opentelemetry/api`'s ESM
// build imports paths without extensions, which Node cannot load).
const resolve = { conditions: ["@tether/source", "node", "development|production"] }

// vitest 5's reporter calls Map.groupBy (Node >= 21). The project supports the
// machine's Node 20, so supply it here, in the process that reports.
if (typeof (Map as any).groupBy !== "function") {
  ;(Map as any).groupBy = <K, V>(items: Iterable<V>, key: (item: V, index: number) => K): Map<K, Array<V>> => {
    const groups = new Map<K, Array<V>>()
    let index = 0
    for (const item of items) {
      const k = key(item, index++)
      const group = groups.get(k)
      if (group === undefined) groups.set(k, [item])
      else group.push(item)
    }
    return groups
  }
}

/**
 * The test projects. `npm test` runs `vitest run --config vitest.workspace.ts`.
 * Unit tests are fast and need nothing; integration tests start real servers
 * (PostgreSQL, slapd) from the testkit fixtures and run one file at a time.
 */
export default defineConfig({
  test: {
    projects: [
      {
        resolve,
        ssr: { resolve },
        test: {
          name: "unit",
          include: ["packages/*/test/**/*.test.ts"],
          exclude: ["packages/*/test/**/*.integration.test.ts"],
          testTimeout: 30_000
        }
      },
      {
        resolve,
        ssr: { resolve },
        test: {
          name: "integration",
          include: ["packages/*/test/**/*.integration.test.ts"],
          testTimeout: 120_000,
          hookTimeout: 120_000,
          fileParallelism: false
        }
      }
    ]
  }
})
