#!/usr/bin/env bash
# Runs the verification snippets of docs/verifying.md (scripts/verifying/verify.py
# with PyJWT, scripts/verifying/verify.mjs with jose) against a fresh Sigil on a
# throwaway SQLite database, with an RS256 and an EdDSA token: genuine tokens must
# pass; wrong audience, foreign issuer, expired, wrong typ, HS256/none forgeries,
# tampered and unknown-kid tokens must be rejected, each for the expected reason.
# Also checks that docs/verifying.md shows each snippet file verbatim.
#
# Needs python3 (venv, pip), node + npm, curl; PyPI and npm reachable on the first
# run (dependencies go to target/verifying-test). Builds target/debug/sigil, unless
# VERIFYING_SIGIL_BIN names a binary to use as it is (not SIGIL_*: Sigil refuses to
# start when a SIGIL_ variable is not one of its settings).
set -euo pipefail
started=$(date +%s)
root=$(cd "$(dirname "$0")/.." && pwd)
src="$root/scripts/verifying"
doc="$root/docs/verifying.md"
deps="$root/target/verifying-test"
passed=0
failed=0
ok() { echo "ok   $*"; passed=$((passed + 1)); }
fail() { echo "FAIL $*"; failed=$((failed + 1)); }

# The doc must show every snippet file verbatim, so the two cannot drift apart.
for f in requirements.txt verify.py package.json verify.mjs; do
  if python3 -c 'import sys; sys.exit(open(sys.argv[1]).read() not in open(sys.argv[2]).read())' \
    "$src/$f" "$doc"; then
    ok "docs/verifying.md shows scripts/verifying/$f verbatim"
  else
    fail "docs/verifying.md does not show scripts/verifying/$f verbatim"
  fi
done

if [ -n "${VERIFYING_SIGIL_BIN:-}" ]; then
  sigil=$(realpath "$VERIFYING_SIGIL_BIN")
else
  cargo build --quiet --manifest-path "$root/Cargo.toml" -p sigil --bin sigil
  sigil="$root/target/debug/sigil"
fi

# Dependencies, pinned by the snippet files; reinstalled when those change.
mkdir -p "$deps"
if [ ! -x "$deps/venv/bin/python" ] || ! cmp -s "$src/requirements.txt" "$deps/requirements.txt"; then
  python3 -m venv "$deps/venv"
  "$deps/venv/bin/pip" install --quiet --disable-pip-version-check -r "$src/requirements.txt"
  cp "$src/requirements.txt" "$deps/requirements.txt"
fi
if [ ! -d "$deps/node_modules/jose" ] || ! cmp -s "$src/package.json" "$deps/package.json"; then
  cp "$src/package.json" "$deps/package.json"
  (cd "$deps" && npm install --silent --no-audit --no-fund)
fi
# Node resolves 'jose' next to the script, so run a copy that sits beside node_modules.
cp "$src/verify.mjs" "$deps/verify.mjs"
py="$deps/venv/bin/python"

work=$(mktemp -d)
cleanup() {
  if [ -n "${pid:-}" ]; then
    kill "$pid" 2> /dev/null || true
    wait "$pid" 2> /dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
cd "$work"

export SIGIL_ARGON2__MEMORY_KIB=1024 SIGIL_ARGON2__ITERATIONS=1
SIGIL_LISTEN=127.0.0.1:0 "$sigil" serve 2> serve.log &
pid=$!
addr=
for _ in $(seq 1 100); do
  addr=$(grep -o 'listen=[0-9.:]*' serve.log | head -1 | cut -d= -f2 || true)
  [ -n "$addr" ] && break
  kill -0 "$pid" 2> /dev/null || break
  sleep 0.1
done
[ -n "$addr" ] || { cat serve.log; echo "sigil did not start" >&2; exit 1; }
base="http://$addr" # also the issuer, and the default audience

echo 'correct horse battery' |
  "$sigil" users create alice --email alice@example.com --password-stdin > /dev/null
"$sigil" clients create rs-app --public --grant-types password,refresh_token --scopes profile --alg RS256 > /dev/null
"$sigil" clients create ed-app --public --grant-types password,refresh_token --scopes profile --alg EdDSA > /dev/null
"$sigil" clients create rs-other --public --grant-types password,refresh_token --scopes profile --alg RS256 --audience https://other.example > /dev/null
"$sigil" clients create ed-other --public --grant-types password,refresh_token --scopes profile --alg EdDSA --audience https://other.example > /dev/null
token() {
  curl -sf "$base/oauth/token" -d grant_type=password -d "client_id=$1" \
    -d username=alice --data-urlencode 'password=correct horse battery' |
    "$py" -c 'import json, sys; print(json.load(sys.stdin)["access_token"])'
}

# The test's own tokens helper: forges and mints the negative cases.
cat > forge.py << 'EOF'
import base64, hashlib, hmac, json, sys, time, urllib.request, uuid

import jwt
from cryptography.hazmat.primitives import serialization as ser
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa


def b64(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def seg(obj):
    return b64(json.dumps(obj, separators=(",", ":")).encode())


def parts(token):
    h, p, s = token.split(".")
    unb64 = lambda x: json.loads(base64.urlsafe_b64decode(x + "=" * (-len(x) % 4)))
    return unb64(h), unb64(p), s


if sys.argv[1] == "keygen":  # keygen RSA_PEM ED_PEM
    for path, key in ((sys.argv[2], rsa.generate_private_key(65537, 2048)),
                      (sys.argv[3], ed25519.Ed25519PrivateKey.generate())):
        with open(path, "wb") as f:
            f.write(key.private_bytes(ser.Encoding.PEM, ser.PrivateFormat.PKCS8,
                                      ser.NoEncryption()))
    sys.exit()

# cases BASE ALG GENUINE OTHER_AUD_TOKEN KEY_PEM KID: one "alg<TAB>case<TAB>expect<TAB>token"
# line per case; expect is "accept" or a regex the rejection must match (PyJWT|jose).
base, alg, genuine, other_aud, key_pem, kid = sys.argv[2:8]
other_alg = "EdDSA" if alg == "RS256" else "RS256"
header, claims, sig = parts(genuine)
h64, p64, _ = genuine.split(".")
jwks = json.load(urllib.request.urlopen(f"{base}/.well-known/jwks.json"))
jwk = next(k for k in jwks["keys"] if k["kid"] == header["kid"])
public_pem = jwt.PyJWK(jwk).key.public_bytes(ser.Encoding.PEM, ser.PublicFormat.SubjectPublicKeyInfo)
private_pem = open(key_pem, "rb").read()
now = int(time.time())


def hs256(hdr):
    signing_input = f"{seg(hdr)}.{p64}".encode()
    return f"{signing_input.decode()}.{b64(hmac.new(public_pem, signing_input, hashlib.sha256).digest())}"


def mint(typ="at+jwt", **changes):
    """A token signed by the imported key: published in the JWKS, so valid but for `changes`."""
    body = dict(claims, jti=uuid.uuid4().hex, iat=now, nbf=now, exp=now + 600)
    body.update(changes)
    body = {k: v for k, v in body.items() if v is not None}
    return jwt.encode(body, private_pem, algorithm=alg, headers={"kid": kid, "typ": typ})


ALG = r"InvalidAlgorithmError|ERR_JOSE_ALG_NOT_ALLOWED"
SIG = r"InvalidSignatureError|ERR_JWS_SIGNATURE_VERIFICATION_FAILED"
TYP = r"InvalidTokenError: typ|\(typ\)"
cases = [
    # First, as it is the one case that turns with the clock.
    ("minted, expired 10 s ago (inside the 30 s leeway)", "accept",
     mint(iat=now - 1000, nbf=now - 1000, exp=now - 10)),
    ("genuine token", "accept", genuine),
    ("wrong audience (client created with --audience)", r"InvalidAudienceError|\(aud\)", other_aud),
    ("alg swapped to HS256, HMAC keyed with the public key PEM", ALG,
     hs256(dict(header, alg="HS256"))),
    ("alg none, empty signature", ALG, f"{seg(dict(header, alg='none'))}.{p64}."),
    (f"alg header swapped to {other_alg}", r"InvalidAlgorithmError|ERR_JWKS_NO_MATCHING_KEY",
     f"{seg(dict(header, alg=other_alg))}.{p64}.{sig}"),
    ("typ edited to JWT, signature kept", SIG, f"{seg(dict(header, typ='JWT'))}.{p64}.{sig}"),
    ("scope edited, signature kept", SIG,
     f"{h64}.{seg(dict(claims, scope='profile sigil:admin'))}.{sig}"),
    ("unknown kid", r"PyJWKClientError|ERR_JWKS_NO_MATCHING_KEY",
     f"{seg(dict(header, kid='not-a-sigil-kid'))}.{p64}.{sig}"),
    ("minted with a published key (control for the cases below)", "accept", mint()),
    ("minted with typ application/at+jwt", "accept", mint(typ="application/at+jwt")),
    ("minted with typ JWT", TYP, mint(typ="JWT")),
    ("minted without typ", TYP, mint(typ=None)),
    ("minted, expired 120 s ago", r"ExpiredSignatureError|ERR_JWT_EXPIRED",
     mint(iat=now - 1000, nbf=now - 1000, exp=now - 120)),
    ("minted, nbf 300 s ahead", r"ImmatureSignatureError|\(nbf\)", mint(nbf=now + 300)),
    ("minted with a foreign issuer", r"InvalidIssuerError|\(iss\)", mint(iss="https://issuer.example")),
    ("minted without exp", r"MissingRequiredClaimError|\(exp\)", mint(exp=None)),
]
for name, expect, token in cases:
    print(f"{alg}\t{name}\t{expect}\t{token}")
EOF

# Keys imported into this Sigil are published at once but sign only after
# key_pending_lead (1 h): tokens minted with them here differ from a genuine
# token only where a case says so.
"$py" forge.py keygen rsa.pem ed.pem
rs_kid=$("$sigil" keys import --alg RS256 < rsa.pem 2>> import.log | sed -n 's/^new key: //p')
ed_kid=$("$sigil" keys import --alg EdDSA < ed.pem 2>> import.log | sed -n 's/^new key: //p')
[ -n "$rs_kid" ] && [ -n "$ed_kid" ] || { cat import.log; echo "sigil keys import printed no kid" >&2; exit 1; }
# An imported key is published at once (pending), but the server notices a key
# added by another process on its next re-read of the key table.
for _ in $(seq 1 150); do
  jwks=$(curl -sf "$base/.well-known/jwks.json" || true)
  case "$jwks" in *"$rs_kid"*"$ed_kid"* | *"$ed_kid"*"$rs_kid"*) break ;; esac
  jwks=
  sleep 0.1
done
if [ -n "$jwks" ]; then ok "imported keys appear in the JWKS"; else fail "imported keys never appeared in the JWKS"; fi
echo "info JWKS $(curl -sfI "$base/.well-known/jwks.json" | grep -i '^cache-control' | tr -d '\r')"

run_cases() { # ALG CLIENT OTHER_AUD_CLIENT KEY_PEM KID
  # Made just before they run: one case depends on the clock.
  "$py" forge.py cases "$base" "$1" "$(token "$2")" "$(token "$3")" "$4" "$5" > "cases-$1.tsv"
  while IFS=$'\t' read -r alg name expect tok; do
    for lang in python node; do
      if [ "$lang" = python ]; then
        out=$("$py" "$src/verify.py" "$base" "$base" "$tok" 2>&1 < /dev/null) && rc=0 || rc=$?
      else
        out=$(node "$deps/verify.mjs" "$base" "$base" "$tok" 2>&1 < /dev/null) && rc=0 || rc=$?
      fi
      what="$lang $alg: $name"
      if [ "$expect" = accept ]; then
        if [ "$rc" -eq 0 ] && [[ "$out" == "{"*'"sub"'* ]]; then
          ok "$what: accepted"
        else
          fail "$what: expected acceptance, got exit $rc: $out"
        fi
      elif [ "$rc" -eq 1 ] && [[ "$out" == "rejected: "* ]] && grep -qE "$expect" <<< "$out"; then
        ok "$what: $out"
      else
        fail "$what: expected a rejection matching /$expect/, got exit $rc: $out"
      fi
    done
  done < "cases-$1.tsv"
}
run_cases RS256 rs-app rs-other rsa.pem "$rs_kid"
run_cases EdDSA ed-app ed-other ed.pem "$ed_kid"

echo "took $(($(date +%s) - started)) s"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
