#!/usr/bin/env bash
# Browser test of the /docs page: starts Sigil on a fresh SQLite database and
# drives the page in headless Chromium (Debian's chromium, driven by
# playwright-core from npm). Needs chromium (apt-get install chromium) and npm.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
if ! command -v "${CHROMIUM:-chromium}" > /dev/null; then
  echo "chromium is not installed (apt-get install chromium)" >&2
  exit 1
fi
cargo build --quiet --manifest-path "$root/Cargo.toml" -p sigil --bin sigil
sigil="$root/target/debug/sigil"
deps="$root/target/browser-test"
if [ ! -d "$deps/node_modules/playwright-core" ]; then
  mkdir -p "$deps"
  cp "$root/scripts/browser/package.json" "$deps/"
  (cd "$deps" && npm install --silent --no-audit --no-fund)
fi
cp "$root/scripts/browser/docs.test.mjs" "$deps/"
work=$(mktemp -d)
cleanup() { [ -n "${pid:-}" ] && kill "$pid" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT
cd "$work"
export SIGIL_ARGON2__MEMORY_KIB=1024 SIGIL_ARGON2__ITERATIONS=1
SIGIL_LISTEN=127.0.0.1:0 "$sigil" serve 2> serve.log &
pid=$!
for _ in $(seq 1 100); do
  addr=$(grep -o 'listen=[0-9.:]*' serve.log | head -1 | cut -d= -f2 || true)
  [ -n "$addr" ] && break
  sleep 0.1
done
[ -n "$addr" ] || { cat serve.log; echo "sigil did not start" >&2; exit 1; }
"$sigil" clients create docs-demo --public --scopes "profile" > /dev/null
node "$deps/docs.test.mjs" "http://$addr" docs-demo
