#!/usr/bin/env bash
# The consumer check: what a new user gets from the published packages.
#   1. build, then `npm pack` every public workspace package (no private ones)
#   2. check each tarball: dist + README + LICENSE present, no tests, every
#      `exports` target present
#   3. install the tarballs into a fresh temp project with plain `npm install`
#      (effect, postgres, ldapts… come from the registry; the npm cache is reused)
#   4. (a) `import()` every export of every package with plain `node` on each Node
#      (b) `tsc` the consumer programs in scripts/consumer/ (NodeNext, strict,
#          exactOptionalPropertyTypes, no skipLibCheck)
#      (c) run them on each Node against PostgreSQL and slapd started by the
#          installed @tether/testkit (needs root, as the fixtures do)
# Usage: bash scripts/consumer-check.sh [NODE_BIN…]   (default: `node` and Node 24 from scripts/node24.sh)
# Env:   CONSUMER_KEEP=1 keeps the temp project; CONSUMER_SKIP_RUN=1 skips step (c).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"

nodes=("$@")
if [ ${#nodes[@]} -eq 0 ]; then nodes=("$(command -v node)" "$(bash scripts/node24.sh)"); fi

work="$(mktemp -d "${TMPDIR:-/tmp}/tether-consumer.XXXXXX")"
if [ "${CONSUMER_KEEP:-0}" != 1 ]; then trap 'rm -rf "$work"' EXIT; else echo "::: keeping $work"; fi
fail() { echo "consumer-check: FAIL: $*" >&2; exit 1; }

echo "::: build"
# tsc -b trusts its .tsbuildinfo and does not notice a deleted dist/: force a rebuild then.
force=()
for manifest in packages/*/package.json; do
  [ -f "$(dirname "$manifest")/dist/index.js" ] || force=(--force)
done
npx tsc -b tsconfig.build.json "${force[@]}"

echo "::: pack"
mkdir -p "$work/tarballs" "$work/app"
public=()
for manifest in packages/*/package.json; do
  dir="$(dirname "$manifest")"
  if [ "$(node -p "require('./$manifest').private === true")" = true ]; then continue; fi
  public+=("$dir")
  (cd "$dir" && npm pack --silent --pack-destination "$work/tarballs" >/dev/null)
done
[ ${#public[@]} -gt 0 ] || fail "no public packages"

echo "::: tarball contents"
node scripts/consumer/check-tarballs.mjs "$work/tarballs" || fail "tarball contents"

echo "::: install into a fresh project ($work/app)"
node scripts/consumer/make-app.mjs "$work/tarballs" "$work/app" "$root"
cp scripts/consumer/tsconfig.json scripts/consumer/*.ts "$work/app/"
cp scripts/consumer/import-all.mjs scripts/consumer/js-consumer.mjs "$work/app/"
(cd "$work/app" && npm install --prefer-offline --no-audit --no-fund --loglevel=error >/dev/null) || fail "npm install"

for node in "${nodes[@]}"; do
  echo "::: (a) import every export with $("$node" --version) ($node)"
  (cd "$work/app" && "$node" import-all.mjs) || fail "import on $("$node" --version)"
done

echo "::: (b) tsc, strict, no skipLibCheck"
(cd "$work/app" && ./node_modules/.bin/tsc -p tsconfig.json) || fail "tsc of the consumer program"

if [ "${CONSUMER_SKIP_RUN:-0}" != 1 ]; then
  for node in "${nodes[@]}"; do
    for program in "$work"/app/out/*-consumer.js "$work"/app/js-consumer.mjs; do
      echo "::: (c) $(basename "$program") on $("$node" --version)"
      (cd "$work/app" && "$node" "$program") || fail "$(basename "$program") on $("$node" --version)"
    done
  done
fi
echo "::: consumer check passed (${#public[@]} packages, ${#nodes[@]} Node versions)"
