// Imports every export of every installed @tether package with plain node.
import * as fs from "node:fs"

const manifest = JSON.parse(fs.readFileSync("package.json", "utf8"))
let count = 0
for (const name of Object.keys(manifest.dependencies).filter((n) => n.startsWith("@tether/"))) {
  const own = JSON.parse(fs.readFileSync(`node_modules/${name}/package.json`, "utf8"))
  for (const subpath of Object.keys(own.exports ?? { ".": "" })) {
    if (subpath.endsWith(".json")) continue
    const specifier = subpath === "." ? name : `${name}/${subpath.slice(2)}`
    const module = await import(specifier)
    if (Object.keys(module).length === 0) throw new Error(`${specifier} exports nothing`)
    count++
  }
}
console.log(`  imported ${count} entry points on node ${process.version}`)
