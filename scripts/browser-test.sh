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
if [ -n "${SIGIL_TEST_BIN:-}" ]; then
  sigil=$(cd "$(dirname "$SIGIL_TEST_BIN")" && pwd)/$(basename "$SIGIL_TEST_BIN")
else
  cargo build --quiet --manifest-path "$root/Cargo.toml" -p sigil --bin sigil
  sigil="$root/target/debug/sigil"
fi
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
pg_admin="${SIGIL_TEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/postgres}"
work=$(mktemp -d)
pid=
db=
cleanup() {
  set +e # every step, whatever the one before did
  [ -n "$pid" ] && { kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; }
  # FORCE: a Sigil that did not stop in time still holds connections.
  [ -n "$db" ] && psql -q "$pg_admin" -c "DROP DATABASE IF EXISTS $db WITH (FORCE)"
  rm -rf "$work"
}
trap cleanup EXIT
export SIGIL_ARGON2__MEMORY_KIB=1024 SIGIL_ARGON2__ITERATIONS=1

# Starts a fresh Sigil in its own directory on $2 (a Postgres URL, or empty
# for SQLite there); sets base.
start() {
  mkdir -p "$work/$1"
  cd "$work/$1"
  unset SIGIL_DATABASE_URL
  if [ -n "$2" ]; then
    export SIGIL_DATABASE_URL="$2"
    mkdir -p keys
    "$sigil" keys new-kek > keys/kek # Postgres never creates one implicitly
    chmod 600 keys/kek
  fi
  SIGIL_LISTEN=127.0.0.1:0 "$sigil" serve 2> serve.log &
  pid=$!
  local addr=
  for _ in $(seq 1 100); do
    addr=$(grep -o 'listen=[0-9.:]*' serve.log | head -1 | cut -d= -f2 || true)
    [ -n "$addr" ] && break
    sleep 0.1
  done
  [ -n "$addr" ] || { cat serve.log; echo "sigil did not start" >&2; exit 1; }
  base="http://$addr"
}

stop() {
  kill "$pid"
  wait "$pid" 2>/dev/null || true
  pid=
}

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
start sqlite ""
"$sigil" clients create docs-demo --public --grant-types password,refresh_token --scopes "profile" > /dev/null
node "$deps/docs.test.mjs" "$base" docs-demo || status=1
sign_in "$shots" || status=1
[ "$status" = 0 ] || { echo "--- the end of sigil serve's log:"; tail -n 40 serve.log; } >&2
stop

if psql -q "$pg_admin" -c "SELECT 1" > /dev/null 2>&1; then
  echo "-- Postgres: the sign-in (screenshots in $shots/postgres)"
  db="sigil_browser_test_$$"
  psql -q "$pg_admin" -c "CREATE DATABASE $db" > /dev/null
  start postgres "${pg_admin%/*}/$db"
  if ! sign_in "$shots/postgres"; then
    status=1
    { echo "--- the end of sigil serve's log (Postgres):"; tail -n 40 serve.log; } >&2
  fi
  stop
elif [ "${SIGIL_TEST_REQUIRE_POSTGRES:-}" = 1 ]; then
  echo "Postgres at $pg_admin is unreachable and SIGIL_TEST_REQUIRE_POSTGRES=1" >&2
  exit 1
else
  echo "-- Postgres: skipped ($pg_admin unreachable; set SIGIL_TEST_POSTGRES_URL)"
fi
exit "$status"
