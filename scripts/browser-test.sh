#!/usr/bin/env bash
# Browser tests of Sigil's pages: starts Sigil on a fresh SQLite database and
# drives, in headless Chromium (Debian's chromium, driven by playwright-core
# from npm), first the /docs page (docs.test.mjs), then a sign-in through the
# hosted pages as a relying party would start it (sign-in.test.mjs); then
# the sign-in again on a throwaway Postgres database (SIGIL_TEST_POSTGRES_URL,
# default postgres://postgres@127.0.0.1:5432/postgres; skipped with a note
# when unreachable, or a failure with SIGIL_TEST_REQUIRE_POSTGRES=1).
# Needs chromium (apt-get install chromium) and npm.
#
# Screenshots of the hosted pages (sign-in, wrong password, consent, account,
# sign-out...) are written to target/browser-test/screenshots/ (and the
# Postgres run's to its postgres/ folder; emptied at each run); CI keeps that
# folder as an artifact.
#
# SIGIL_TEST_BIN=/path/to/sigil uses that binary instead of building one.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
if ! command -v "${CHROMIUM:-chromium}" > /dev/null; then
  echo "chromium is not installed (apt-get install chromium)" >&2
  exit 1
fi
. "$root/scripts/lib/throwaway-sigil.sh"
deps="$root/target/browser-test"
if [ ! -d "$deps/node_modules/playwright-core" ]; then
  mkdir -p "$deps"
  cp "$root/scripts/browser/package.json" "$deps/"
  (cd "$deps" && npm install --silent --no-audit --no-fund)
fi
cp "$root/scripts/browser/docs.test.mjs" "$root/scripts/browser/sign-in.test.mjs" "$deps/"
shots="$deps/screenshots"
rm -rf "$shots"
mkdir -p "$shots"
# The sign-in through the hosted pages, on the running Sigil. Its relying
# party's loopback redirect URIs match any port (RFC 8252 §7.3), so the
# test's own server on port 0 receives them.
# (Called under || and if: set -e is off inside, so each step says so.)
sign_in() {
  "$sigil" clients create browser-rp --public --scopes "openid profile email" \
    --redirect-uri http://127.0.0.1/cb --post-logout-redirect-uri http://127.0.0.1/bye > /dev/null ||
    { echo "registering the client failed" >&2; return 1; }
  curl -sf -X POST "$base/users" -H 'content-type: application/json' \
    -d '{"username":"alice","email":"alice@example.com","password":"correct horse battery"}' > /dev/null ||
    { echo "registering alice failed" >&2; return 1; }
  SCREENSHOTS="$1" node "$deps/sign-in.test.mjs" "$base" browser-rp
}

status=0
echo "-- SQLite: /docs, then the sign-in (screenshots in $shots)"
start_sigil sqlite
"$sigil" clients create docs-demo --public --grant-types password,refresh_token --scopes "profile" > /dev/null
node "$deps/docs.test.mjs" "$base" docs-demo || status=1
sign_in "$shots" || status=1
[ "$status" = 0 ] || { echo "--- the end of sigil serve's log:"; tail -n 40 serve.log; } >&2
stop_sigil

throwaway_postgres browser_test
if [ -n "$db_url" ]; then
  echo "-- Postgres: the sign-in (screenshots in $shots/postgres)"
  start_sigil postgres "$db_url"
  if ! sign_in "$shots/postgres"; then
    status=1
    { echo "--- the end of sigil serve's log (Postgres):"; tail -n 40 serve.log; } >&2
  fi
  stop_sigil
fi
exit "$status"
