// Checks each packed tarball: it holds dist/, README.md, LICENSE and
// package.json, no test files, and every file its `exports` map points at.
import { execFileSync } from "node:child_process"
import * as fs from "node:fs"
import * as path from "node:path"

const dir = process.argv[2]
let failed = false
const problem = (tarball, message) => {
  failed = true
  console.error(`  ${tarball}: ${message}`)
}
const targets = (value) =>
  typeof value === "string" ? [value] : value === null ? [] : Object.values(value).flatMap(targets)

for (const tarball of fs.readdirSync(dir).filter((f) => f.endsWith(".tgz"))) {
  const files = new Set(
    execFileSync("tar", ["tzf", path.join(dir, tarball)], { encoding: "utf8" })
      .split("\n").filter((l) => l !== "").map((l) => l.replace(/^package\//, ""))
  )
  const manifest = JSON.parse(execFileSync("tar", ["xzOf", path.join(dir, tarball), "package/package.json"], { encoding: "utf8" }))
  for (const required of ["package.json", "README.md", "LICENSE", "dist/index.js", "dist/index.d.ts"]) {
    if (!files.has(required)) problem(tarball, `missing ${required}`)
  }
  for (const file of files) {
    if (/(^|\/)test\/|\.test\.[cm]?[jt]s$|\.tsbuildinfo$/.test(file)) problem(tarball, `holds ${file}`)
  }
  for (const [subpath, value] of Object.entries(manifest.exports ?? {})) {
    for (const target of targets(value)) {
      if (!files.has(target.replace(/^\.\//, ""))) problem(tarball, `exports["${subpath}"] -> ${target} is not in the tarball`)
    }
  }
  if (manifest.dependencies?.effect !== undefined) problem(tarball, "effect must be a peer dependency")
  console.log(`  ${tarball}: ${files.size} files`)
}
process.exit(failed ? 1 : 0)
