#!/usr/bin/env bash
# Browser tests of Sigil's pages: starts Sigil on a fresh SQLite database and
# drives, in headless Chromium (Debian's chromium, driven by playwright-core
# from npm), first the /docs page (docs.test.mjs), then a sign-in through the
# hosted pages as a relying party would start it (sign-in.test.mjs); then
# passkeys (passkeys.test.mjs, through Chromium's virtual authenticator) on
# a fresh Sigil whose issuer is http://localhost:PORT (passkeys need a
# domain name) with passkey-only sign-up on, next to a second Sigil on
# SQLite, issuer http://other.localhost:PORT (another RP id; its
# reauthentication window of 1 min, the shortest, is waited out once). Then
# the sign-in and the passkeys again on throwaway Postgres databases
# (SIGIL_TEST_POSTGRES_URL, default postgres://postgres@127.0.0.1:5432/postgres;
# skipped with a note when unreachable, or a failure with
# SIGIL_TEST_REQUIRE_POSTGRES=1).
# Needs chromium (apt-get install chromium), npm and python3.
#
# Screenshots of the hosted pages (sign-in, wrong password, consent, account,
# sign-out...) are written to target/browser-test/screenshots/, the passkey
# pages' to its passkeys/ folder (and the Postgres run's to postgres/ and
# postgres/passkeys/; emptied at each run); CI keeps that folder as an
# artifact.
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
cp "$root/scripts/browser/docs.test.mjs" "$root/scripts/browser/sign-in.test.mjs" \
  "$root/scripts/browser/passkeys.test.mjs" "$deps/"
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

# POST /users for each username, with the password "correct horse battery",
# to the Sigil at $1 (reached at its listening address: curl may not
# resolve *.localhost).
add_users() {
  local at="http://127.0.0.1:${1##*:}" name
  shift
  for name in "$@"; do
    curl -sf -X POST "$at/users" -H 'content-type: application/json' \
      -d "{\"username\":\"$name\",\"email\":\"$name@example.com\",\"password\":\"correct horse battery\"}" \
      > /dev/null || { echo "registering $name failed" >&2; return 1; }
  done
}

# passkeys NAME SCREENSHOTS [DATABASE_URL]: the passkey test, on a Sigil of
# issuer http://localhost:PORT (SQLite, or DATABASE_URL) with passkey-only
# accounts, and a second one of issuer http://other.localhost:PORT (always
# SQLite); both stopped afterwards, their logs' ends shown on failure.
# With CHECK_REAUTH_WINDOW=1 the test also waits out the second one's
# reauthentication window (a minute; the window lives on that SQLite
# Sigil alone, so once is enough).
passkeys() {
  SIGIL_TEST_HOST=other.localhost SIGIL_MFA__REAUTH_WINDOW=1m start_sigil "$1-other"
  local other_pid=$pid other_base=$base other_dir=$PWD rc=0
  SIGIL_TEST_HOST=localhost SIGIL_MFA__PASSKEY_ONLY_ACCOUNTS=true start_sigil "$1" "${3:-}"
  if "$sigil" clients create browser-rp --public --scopes "openid profile email" \
      --redirect-uri http://127.0.0.1/cb > /dev/null &&
    add_users "$base" alice bob && add_users "$other_base" alice; then
    SCREENSHOTS="$2" node "$deps/passkeys.test.mjs" "$base" "$other_base" browser-rp || rc=1
  else
    echo "setting up the passkey test failed" >&2
    rc=1
  fi
  if [ "$rc" != 0 ]; then
    { echo "--- the end of sigil serve's log ($1):"; tail -n 40 serve.log
      echo "--- the end of the other Sigil's log:"; tail -n 20 "$other_dir/serve.log"; } >&2
  fi
  stop_sigil
  stop_sigil "$other_pid"
  return "$rc"
}

status=0
echo "-- SQLite: /docs, then the sign-in (screenshots in $shots)"
start_sigil sqlite
"$sigil" clients create docs-demo --public --grant-types password,refresh_token --scopes "profile" > /dev/null
node "$deps/docs.test.mjs" "$base" docs-demo || status=1
sign_in "$shots" || status=1
[ "$status" = 0 ] || { echo "--- the end of sigil serve's log:"; tail -n 40 serve.log; } >&2
stop_sigil
echo "-- SQLite: passkeys (screenshots in $shots/passkeys)"
CHECK_REAUTH_WINDOW=1 passkeys passkeys-sqlite "$shots/passkeys" || status=1

throwaway_postgres browser_test
if [ -n "$db_url" ]; then
  echo "-- Postgres: the sign-in (screenshots in $shots/postgres)"
  start_sigil postgres "$db_url"
  if ! sign_in "$shots/postgres"; then
    status=1
    { echo "--- the end of sigil serve's log (Postgres):"; tail -n 40 serve.log; } >&2
  fi
  stop_sigil
  throwaway_postgres browser_passkeys
  echo "-- Postgres: passkeys (screenshots in $shots/postgres/passkeys)"
  passkeys passkeys-postgres "$shots/postgres/passkeys" "$db_url" || status=1
fi
exit "$status"
