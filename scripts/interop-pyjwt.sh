#!/usr/bin/env bash
# Interop check: start Sigil on a fresh SQLite database, log in with an RS256
# and an EdDSA client, and verify both tokens with PyJWT fed only the JWKS URL.
# Needs python3 with venv/pip (PyPI reachable). Uses the debug build.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cargo build --quiet --manifest-path "$root/Cargo.toml" --bin sigil
sigil="$root/target/debug/sigil"
work=$(mktemp -d)
venv="${INTEROP_VENV:-$root/target/interop-venv}"
cleanup() { [ -n "${pid:-}" ] && kill "$pid" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT

if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet 'pyjwt[crypto]>=2.8'
fi

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
base="http://$addr"

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
