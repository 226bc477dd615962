#!/usr/bin/env bash
# Interop check: start Sigil on a fresh SQLite database, log in with an RS256
# and an EdDSA client, and verify both tokens with PyJWT fed only the JWKS URL.
# Needs python3 with venv/pip (PyPI reachable). Uses the debug build
# (or SIGIL_TEST_BIN).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
. "$root/scripts/lib/throwaway-sigil.sh"
venv="${INTEROP_VENV:-$root/target/interop-venv}"

if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet 'pyjwt[crypto]>=2.8'
fi

start_sigil sqlite

curl -sf -X POST "$base/users" -H 'content-type: application/json' \
  -d '{"username":"alice","email":"alice@example.com","password":"correct horse battery"}' > /dev/null
"$sigil" clients create rs-app --public --grant-types password,refresh_token --scopes "profile" --alg RS256 > /dev/null
"$sigil" clients create ed-app --public --grant-types password,refresh_token --scopes "profile" --alg EdDSA > /dev/null
token() {
  curl -sf "$base/oauth/token" -d grant_type=password -d "client_id=$1" \
    -d username=alice --data-urlencode 'password=correct horse battery' |
    "$venv/bin/python" -c 'import json,sys; print(json.load(sys.stdin)["access_token"])'
}
"$venv/bin/python" "$root/scripts/verify_pyjwt.py" "$base" "$(token rs-app)" "$(token ed-app)"
