#!/usr/bin/env bash
# Interop: two relying-party libraries not written here sign a user in
# through Sigil's hosted pages (driven over plain HTTP, no browser), on
# SQLite and on Postgres:
#   - openid-client 6 (Node), a public client: discovery, PKCE, state, iss,
#     nonce, the ID token's signature and claims, userinfo, refresh, logout;
#   - authlib (Python), a confidential client with client_secret_basic:
#     authlib's OIDC Discovery and RFC 8414 metadata validators, the ID token
#     through CodeIDToken, userinfo, refresh, logout.
# Needs node/npm and python3 with venv (npm and PyPI reachable).
#
# Postgres: SIGIL_TEST_POSTGRES_URL (default postgres://postgres@127.0.0.1:5432/postgres);
# a throwaway database is created and dropped. Unreachable, the Postgres run
# is skipped with a note, or fails with SIGIL_TEST_REQUIRE_POSTGRES=1.
# SIGIL_TEST_BIN=/path/to/sigil uses that binary instead of the debug build.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
. "$root/scripts/lib/throwaway-sigil.sh"
deps="$root/target/interop-oidc"
mkdir -p "$deps"
if [ ! -d "$deps/node_modules/openid-client" ]; then
  cp "$root/scripts/oidc/package.json" "$deps/"
  (cd "$deps" && npm install --silent --no-audit --no-fund)
fi
cp "$root/scripts/oidc/rp.mjs" "$deps/"
venv="$deps/venv"
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet -r "$root/scripts/oidc/requirements.txt"
fi
# One run: a fresh Sigil on $1 (a database URL, or empty for SQLite in the
# run's own directory), both clients, one user, both libraries.
run() {
  local label=$1
  start_sigil "$label" "$2"
  local uris=(--scopes "openid profile email"
    --redirect-uri http://127.0.0.1/cb --post-logout-redirect-uri http://127.0.0.1/bye)
  local secret
  if ! "$sigil" clients create node-rp --public "${uris[@]}" > /dev/null ||
    ! secret=$("$sigil" clients create py-rp "${uris[@]}" 2>> cli.log | sed -n 's/^client_secret: //p') ||
    [ -z "$secret" ] ||
    ! curl -sf -X POST "$base/users" -H 'content-type: application/json' \
      -d '{"username":"alice","email":"alice@example.com","password":"correct horse battery"}' > /dev/null; then
    cat cli.log 2>/dev/null >&2
    echo "--- setting up the $label run failed; the end of sigil serve's log:" >&2
    tail -n 40 serve.log >&2
    exit 1
  fi
  echo "-- $label"
  local status=0
  node "$deps/rp.mjs" "$base" node-rp alice "correct horse battery" || status=1
  "$venv/bin/python" "$root/scripts/oidc/rp.py" "$base" py-rp "$secret" alice "correct horse battery" || status=1
  stop_sigil
  if [ "$status" != 0 ]; then
    echo "--- the end of sigil serve's log ($label):" >&2
    tail -n 40 serve.log >&2
    exit 1
  fi
}

run SQLite ""
throwaway_postgres interop_oidc
if [ -n "$db_url" ]; then
  run Postgres "$db_url"
fi
