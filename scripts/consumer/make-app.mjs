// Writes the fresh consumer project's package.json: the tarballs, plus what a
// user installs next to them (effect, and typescript + @types/node at the
// workspace's versions to typecheck).
import * as fs from "node:fs"
import * as path from "node:path"
import { execFileSync } from "node:child_process"

const [tarballs, app, root] = process.argv.slice(2)
const rootManifest = JSON.parse(fs.readFileSync(path.join(root, "package.json"), "utf8"))
const installed = (name) => JSON.parse(fs.readFileSync(path.join(root, "node_modules", name, "package.json"), "utf8")).version
const dependencies = {}
for (const tarball of fs.readdirSync(tarballs).filter((f) => f.endsWith(".tgz"))) {
  const manifest = JSON.parse(execFileSync("tar", ["xzOf", path.join(tarballs, tarball), "package/package.json"], { encoding: "utf8" }))
  dependencies[manifest.name] = `file:${path.join(tarballs, tarball)}`
}
const manifest = {
  name: "tether-consumer",
  private: true,
  type: "module",
  dependencies: {
    ...dependencies,
    effect: `^${installed("effect")}`,
    "@electric-sql/pglite": `^${installed("@electric-sql/pglite")}`
  },
  devDependencies: {
    typescript: rootManifest.devDependencies.typescript,
    "@types/node": rootManifest.devDependencies["@types/node"]
  },
  // Our packages depend on each other by version: use the tarballs, never the registry.
  overrides: Object.fromEntries(Object.keys(dependencies).map((name) => [name, `$${name}`]))
}
fs.writeFileSync(path.join(app, "package.json"), JSON.stringify(manifest, null, 2) + "\n")
