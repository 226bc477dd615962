#!/usr/bin/env bash
# Interop: an independent client of Sigil's client-signed JWTs, made with
# joserfc (Python), not with Sigil's code (scripts/dpop/interop.py), on
# SQLite and on Postgres:
#   - DPoP (RFC 9449): tokens bound to ES256, EdDSA and PS256 keys, cnf.jkt
#     against joserfc's RFC 7638 thumbprint, the DPoP scheme at /users/me and
#     /userinfo, the refusals (replay, other key, htu, htm, ath, iat, typ,
#     alg), the refresh token bound to the key, introspection;
#   - private_key_jwt (RFC 7523): an inline JWKS (PS256, ES256) at the token,
#     revocation and introspection endpoints and its refusals (reused jti,
#     aud, unknown key, exp, sub), and a jwks_uri served by the script and
#     rotated to a new kid;
#   - then a second Sigil with SIGIL_DPOP__REQUIRE_NONCE=true: use_dpop_nonce
#     and DPoP-Nonce at the token endpoint and at a resource, and the retry.
# Needs python3 with venv (PyPI reachable).
#
# Postgres: SIGIL_TEST_POSTGRES_URL (default postgres://postgres@127.0.0.1:5432/postgres);
# throwaway databases are created and dropped. Unreachable, the Postgres run
# is skipped with a note, or fails with SIGIL_TEST_REQUIRE_POSTGRES=1.
# SIGIL_TEST_BIN=/path/to/sigil uses that binary instead of the debug build.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
. "$root/scripts/lib/throwaway-sigil.sh"
deps="$root/target/interop-dpop"
venv="$deps/venv"
mkdir -p "$deps"
# (Re)installed when the pins change.
if [ ! -x "$venv/bin/python" ] || ! cmp -s "$root/scripts/dpop/requirements.txt" "$deps/installed.txt"; then
  rm -rf "$venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet -r "$root/scripts/dpop/requirements.txt"
  cp "$root/scripts/dpop/requirements.txt" "$deps/installed.txt"
fi
"$venv/bin/python" -c 'import importlib.metadata as m; print("-- joserfc", m.version("joserfc"), "requests", m.version("requests"))'

app=dpop-app
user=alice
password="correct horse battery"

# setup LABEL: the user and the public client the script signs in with,
# on the server started last.
setup() {
  if ! "$sigil" clients create "$app" --public --grant-types password,refresh_token \
    --scopes "openid profile" > cli.log 2>&1 ||
    ! curl -sf -X POST "$base/users" -H 'content-type: application/json' \
      -d "{\"username\":\"$user\",\"email\":\"$user@example.com\",\"password\":\"$password\"}" > /dev/null; then
    cat cli.log >&2
    echo "--- setting up the $1 run failed; the end of sigil serve's log:" >&2
    tail -n 40 serve.log >&2
    exit 1
  fi
}

# interop MODE LABEL: the script against the server started last; its log
# on failure.
interop() {
  if ! "$venv/bin/python" "$root/scripts/dpop/interop.py" "$1" "$base" "$sigil" \
    "$app" "$user" "$password"; then
    echo "--- the end of sigil serve's log ($2):" >&2
    tail -n 40 serve.log >&2
    exit 1
  fi
}

# run LABEL DATABASE_URL NONCE_DATABASE_URL: a fresh Sigil on the first
# (empty: SQLite in the run's own directory), then one requiring DPoP nonces
# on the second.
run() {
  local started=$SECONDS
  echo "-- $1: DPoP and private_key_jwt"
  start_sigil "$1" "$2"
  setup "$1"
  interop main "$1"
  stop_sigil
  echo "-- $1: DPoP with server nonces"
  SIGIL_DPOP__REQUIRE_NONCE=true start_sigil "$1-nonce" "$3"
  setup "$1 (nonces)"
  interop nonce "$1 (nonces)"
  stop_sigil
  echo "-- $1: passed in $((SECONDS - started)) s"
}

run SQLite "" ""
throwaway_postgres interop_dpop
if [ -n "$db_url" ]; then
  first=$db_url
  throwaway_postgres interop_dpop_nonce
  run Postgres "$first" "$db_url"
fi
