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
if [ -n "${SIGIL_TEST_BIN:-}" ]; then
  sigil=$(cd "$(dirname "$SIGIL_TEST_BIN")" && pwd)/$(basename "$SIGIL_TEST_BIN")
else
  cargo build --quiet --manifest-path "$root/Cargo.toml" -p sigil --bin sigil
  sigil="$root/target/debug/sigil"
fi
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

# One run: a fresh Sigil on $1 (a database URL, or empty for SQLite in the
# run's own directory), both clients, one user, both libraries.
run() {
  local label=$1 url=$2 dir="$work/$1"
  mkdir -p "$dir"
  cd "$dir"
  if [ -n "$url" ]; then
    export SIGIL_DATABASE_URL="$url"
    # On Postgres the KEK is never created implicitly (every node needs the same one).
    mkdir -p keys
    "$sigil" keys new-kek > keys/kek
    chmod 600 keys/kek
  else
    unset SIGIL_DATABASE_URL
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
  local base="http://$addr" uris=(--scopes "openid profile email"
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
  kill "$pid"
  wait "$pid" 2>/dev/null || true
  pid=
  if [ "$status" != 0 ]; then
    echo "--- the end of sigil serve's log ($label):" >&2
    tail -n 40 serve.log >&2
    exit 1
  fi
}

run SQLite ""
if psql -q "$pg_admin" -c "SELECT 1" > /dev/null 2>&1; then
  db="sigil_interop_oidc_$$"
  psql -q "$pg_admin" -c "CREATE DATABASE $db" > /dev/null
  run Postgres "${pg_admin%/*}/$db"
elif [ "${SIGIL_TEST_REQUIRE_POSTGRES:-}" = 1 ]; then
  echo "Postgres at $pg_admin is unreachable and SIGIL_TEST_REQUIRE_POSTGRES=1" >&2
  exit 1
else
  echo "-- Postgres: skipped ($pg_admin unreachable; set SIGIL_TEST_POSTGRES_URL)"
fi
