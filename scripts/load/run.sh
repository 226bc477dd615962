#!/usr/bin/env bash
# Load harness: starts a release build of Sigil on SQLite (default) or
# Postgres (--postgres), seeds users and clients through the CLI, and drives
# each hot endpoint with wrk, printing requests/s and p50/p99 latency per
# scenario, idle and loaded RSS, start-up time, and each figure's ratio to
# the primitive that bounds it (measured first, in the same run, by
# `cargo bench --bench ceilings`). See docs/BENCHMARKS.md.
#
# The browser sign-in scenarios (authorization code + PKCE through the
# sign-in page) are driven by browser_flow.py instead of wrk, since each
# sign-in is three requests that carry a page's fields and cookies:
#   browser_full    whole sign-ins: /authorize, the sign-in page's POST
#                   /login, the code exchange (one argon2 hash each)
#   authorize_sso   GET /authorize with a live session (wrk, a 303 with a
#                   new code each: a database write per request)
#   code_exchange   the code exchange alone (codes minted untimed)
#   flood_browser   browser sign-ins at --connections virtual users while
#                   the JWKS and refresh probes of flood_password run
#
#   scripts/load/run.sh [--quick] [--postgres] [--duration S] [--threads T]
#                       [--connections C] [--out FILE]
#
#   --quick        about 3 s per scenario (a smoke test; never assert on it)
#   --postgres     use the Postgres at 127.0.0.1:5432 (user postgres): a
#                  throwaway database is created and dropped with psql
#   --duration S   seconds per scenario (default 20; --quick: 3)
#   --threads T    wrk threads (default 2)
#   --connections C  wrk connections (default 32)
#   --out FILE     also write the markdown report to FILE (and the raw
#                  figures beside it: FILE without .md, plus .results.jsonl,
#                  .ceilings.txt, .startup.json)
#   --quiet-wait S  before each scenario, wait up to S seconds (default 120;
#                  0 with --quick) for other processes to leave the cores alone
#   --only LIST    run only these scenarios (comma-separated names, as in
#                  the report's raw results: jwks, cc_eddsa, users_me_rs256,
#                  flood_password, browser_full, authorize_sso, code_exchange,
#                  flood_browser, ...)
#   --profile      record each scenario with `perf record` (cpu-clock, on the
#                  server only) and print where its CPU went, by component
#                  (scripts/load/perf_categories.py); the figures of a profiled
#                  run are a few percent low
#   --binary PATH  load this sigil binary instead of building target/release/sigil
#                  (to compare two builds back to back)
#   --ceilings FILE  reuse the ceilings a previous run saved (--out's
#                  .ceilings.txt) instead of measuring them again; `none` to
#                  skip them (no bound or ratio columns, for A/B runs)
#
# Needs: wrk (Debian: apt-get install wrk), curl, python3, and psql for
# --postgres; for the browser scenarios also python3's venv module and
# PyPI: aiohttp goes into a venv of its own, target/load-venv, made on the
# first run that needs it and kept. Argon2 runs at the configured defaults
# (no lowered cost).
set -euo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
here="$root/scripts/load"
duration=20
quick=0
backend=sqlite
threads=2
connections=32
out=""
quiet_wait=120
quiet_wait_given=""
only=""
profile=0
binary=""
ceilings_file=""
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) quick=1; duration=3; quiet_wait=${quiet_wait_given:-0} ;;
    --postgres) backend=postgres ;;
    --duration) duration=$2; shift ;;
    --threads) threads=$2; shift ;;
    --connections) connections=$2; shift ;;
    --out) out=$2; shift ;;
    --quiet-wait) quiet_wait=$2; quiet_wait_given=$2; shift ;;
    --only) only=",$2,"; shift ;;
    --profile) profile=1 ;;
    --binary) binary=$(realpath "$2"); shift ;;
    --ceilings) if [ "$2" = none ]; then ceilings_file=none; else ceilings_file=$(realpath "$2"); fi; shift ;;
    -h|--help) sed -n '2,52p' "$0"; exit 0 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
  shift
done
for tool in wrk curl python3; do
  if ! command -v "$tool" > /dev/null; then
    echo "$tool is not installed (wrk: apt-get install wrk)" >&2
    exit 1
  fi
done
if [ "$backend" = postgres ] && ! command -v psql > /dev/null; then
  echo "psql is not installed (apt-get install postgresql-client)" >&2
  exit 1
fi

want() { [ -z "$only" ] || [[ "$only" == *",$1,"* ]]; }

# The browser driver's Python: a venv under target/, so that neither the
# system's Python nor the user's site-packages is changed or consulted.
venv="$root/target/load-venv"
if want browser_full || want authorize_sso || want code_exchange || want flood_browser; then
  if ! "$venv/bin/python" -c 'import aiohttp' 2> /dev/null; then
    echo "== installing aiohttp into $venv (browser scenarios)" >&2
    mkdir -p "$root/target"
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check 'aiohttp>=3.9,<4'
  fi
fi

run_started=$(date +%s)
if [ -n "$binary" ]; then
  sigil="$binary"
else
  echo "== building (cargo build --release -p sigil)" >&2
  cargo build --quiet --release --manifest-path "$root/Cargo.toml" -p sigil --bin sigil
  sigil="$root/target/release/sigil"
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/sigil-load.XXXXXX")
results="$work/results.jsonl"
: > "$results"
pid=""
dbname=""
cleanup() {
  if [ -n "$pid" ]; then kill "$pid" 2> /dev/null || true; wait "$pid" 2> /dev/null || true; fi
  if [ -n "$dbname" ]; then
    psql -q -h 127.0.0.1 -U postgres -d postgres -c "DROP DATABASE IF EXISTS $dbname WITH (FORCE)" > /dev/null 2>&1 || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT

# CPU accounting, in clock ticks: the whole machine (/proc/stat) and the
# server (/proc/PID/stat); wrk's own time comes from bash's `time`. What is
# left is other processes (a build, another test run), which would make the
# figures low: the harness waits for a quiet machine before each scenario
# and reports how much of the machine others took during it.
hz=$(getconf CLK_TCK)
machine_ticks() { awk '/^cpu / { print $2+$3+$4+$6+$7+$8, $2+$3+$4+$5+$6+$7+$8 }' /proc/stat; }
db_ticks() { # PostgreSQL's own processes (0 on SQLite, which runs inside the server)
  if [ "$backend" = postgres ]; then
    # A process may exit between the glob and the read: not an error.
    { cat /proc/[0-9]*/stat 2> /dev/null || true; } | awk '$2 == "(postgres)" { s += $14 + $15 } END { print s + 0 }'
  else echo 0; fi
}
server_ticks() { if [ -n "$pid" ]; then awk '{ print $14 + $15 }' "/proc/$pid/stat"; else echo 0; fi; }
others_busy_pct() { # over one second, with the server idle
  local a b
  a=($(machine_ticks)); local s0; s0=$(server_ticks)
  sleep 1
  b=($(machine_ticks)); local s1; s1=$(server_ticks)
  echo $(( 100 * (b[0] - a[0] - (s1 - s0)) / (b[1] - a[1] + 1) ))
}
wait_for_quiet() {
  local waited=0 busy
  busy=$(others_busy_pct)
  while [ "$busy" -ge 15 ] && [ "$waited" -lt "$quiet_wait" ]; do
    [ "$waited" = 0 ] && echo "   (machine busy with other processes: ${busy}%; waiting up to ${quiet_wait}s)" >&2
    sleep 4
    waited=$((waited + 5))
    busy=$(others_busy_pct)
  done
}

# The ceilings of the bounding primitives, on an otherwise idle machine.
ceiling_secs=3
[ "$quick" = 1 ] && ceiling_secs=1
if [ "$ceilings_file" = none ]; then
  : > "$work/ceilings.txt"
elif [ -n "$ceilings_file" ]; then
  cp "$ceilings_file" "$work/ceilings.txt"
else
  cargo bench --quiet --manifest-path "$root/Cargo.toml" -p sigil --bench ceilings --no-run 2> /dev/null
  wait_for_quiet
  echo "== measuring primitive ceilings (cargo bench -p sigil --bench ceilings)" >&2
  cargo bench --quiet --manifest-path "$root/Cargo.toml" -p sigil --bench ceilings -- \
    --secs "$ceiling_secs" --dir "$work" > "$work/ceilings.txt"
fi

cd "$work"
# Only the variables this harness sets: an operator's SIGIL_* would skew it.
while IFS='=' read -r name _; do unset "$name"; done < <(env | grep '^SIGIL_' || true)
if [ "$backend" = postgres ]; then
  dbname="sigil_load_$$_$RANDOM"
  psql -q -h 127.0.0.1 -U postgres -d postgres -c "CREATE DATABASE $dbname" > /dev/null
  export SIGIL_DATABASE_URL="postgres://postgres@127.0.0.1:5432/$dbname"
  mkdir -p keys
  "$sigil" keys new-kek > keys/kek
  chmod 600 keys/kek
fi

start_server() {
  local listen=$1 log=$2
  SIGIL_LISTEN=$listen "$sigil" serve 2> "$log" &
  pid=$!
  addr=""
  for _ in $(seq 1 300); do
    addr=$(grep -o 'listen=[0-9.:]*' "$log" | head -1 | cut -d= -f2 || true)
    [ -n "$addr" ] && return 0
    kill -0 "$pid" 2> /dev/null || break
    sleep 0.05
  done
  cat "$log" >&2
  echo "sigil did not start" >&2
  exit 1
}
stop_server() {
  kill -TERM "$pid"
  wait "$pid" || true
  pid=""
}
rss_kb() { awk -v f="$1:" '$1 == f { print $2 }' "/proc/$pid/status"; }
metric() { curl -s "$base/metrics" | awk -v m="$1" '$1 == m { print $2 }' | head -1; }

echo "== starting sigil ($backend) in $work" >&2
start_server 127.0.0.1:0 serve-first.log
base="http://$addr"

echo "== seeding clients and users" >&2
cc_secret_rs="load-cc-rs256-secret-0123456789abcdefghij"
cc_secret_ed="load-cc-eddsa-secret-0123456789abcdefghij"
intro_secret="load-introspector-secret-0123456789abcdef"
user_password="correct horse battery staple"
echo "$cc_secret_rs" | "$sigil" clients create cc-rs256 --grant-types client_credentials --alg RS256 --secret-stdin > /dev/null
echo "$cc_secret_ed" | "$sigil" clients create cc-eddsa --grant-types client_credentials --alg EdDSA --secret-stdin > /dev/null
echo "$intro_secret" | "$sigil" clients create introspector --grant-types client_credentials --secret-stdin > /dev/null
"$sigil" clients create app-rs256 --public --grant-types password,refresh_token --scopes profile --alg RS256 > /dev/null
"$sigil" clients create app-eddsa --public --grant-types password,refresh_token --scopes profile --alg EdDSA > /dev/null
for u in 1 2 3 4; do
  echo "$user_password" | "$sigil" users create "loaduser$u" --email "loaduser$u@example.com" --password-stdin > /dev/null
done
# The browser scenarios' app: first-party (no consent page between the
# sign-in and the code), public (PKCE, no secret). A loopback redirect URI
# matches any port, and nothing listens there: the driver reads the code
# from the 303's Location and never follows it.
web_redirect="http://127.0.0.1/cb"
"$sigil" clients create web-bench --public --first-party --scopes "openid profile" \
  --redirect-uri "$web_redirect" > /dev/null
b64() { printf '%s' "$1" | base64 -w0; }
auth_cc_rs="Basic $(b64 "cc-rs256:$cc_secret_rs")"
auth_cc_ed="Basic $(b64 "cc-eddsa:$cc_secret_ed")"
auth_intro="Basic $(b64 "introspector:$intro_secret")"

sleep 2
idle_rss=$(rss_kb VmRSS)

# Start-up with existing database and keys: restart on the same address
# (the issuer, and so every token, stays valid).
echo "== start-up time (existing keys)" >&2
stop_server
startup_runs=5
[ "$quick" = 1 ] && startup_runs=2
wait_for_quiet
python3 "$here/startup_time.py" "$sigil" "$addr" "$startup_runs" serve-startup.log > startup.json
start_server "$addr" serve.log

password_login() { # client user -> JSON of the grant
  curl -s "$base/oauth/token" -d grant_type=password -d "client_id=$1" -d "username=$2" \
    --data-urlencode "password=$user_password"
}
json_field() { python3 -c 'import json,sys; print(json.load(sys.stdin)[sys.argv[1]])' "$1"; }
user_token_rs=$(password_login app-rs256 loaduser1 | json_field access_token)
user_token_ed=$(password_login app-eddsa loaduser1 | json_field access_token)
etag=$(curl -s -o /dev/null -D - "$base/.well-known/jwks.json" | awk 'tolower($1) == "etag:" { print $2 }' | tr -d '\r')

# measure NAME COMMAND...: runs the load generator COMMAND (wrk or
# browser_flow.py), which prints a RESULT line, and appends that result to
# the run's with the CPU shares of the server, the database, the load
# generator and others.
measure() {
  local name=$1
  shift
  [ -n "${LOAD_NO_WAIT:-}" ] || wait_for_quiet
  echo "== $name (${duration}s) at +$(( $(date +%s) - run_started ))s" >&2
  local m0 m1 s0 s1 wrk_cpu
  m0=($(machine_ticks)); s0=$(server_ticks); local d0; d0=$(db_ticks)
  local perf_pid=""
  if [ "$profile" = 1 ]; then
    perf record -q -F 999 -e cpu-clock -p "$pid" -o "perf-$name.data" 2> /dev/null &
    perf_pid=$!
  fi
  local TIMEFORMAT='%U %S'
  { time "$@" > "wrk-$name.txt" ; } 2> "time-$name.txt"
  m1=($(machine_ticks)); s1=$(server_ticks); local d1; d1=$(db_ticks)
  if [ -n "$perf_pid" ]; then
    kill -INT "$perf_pid" 2> /dev/null || true
    wait "$perf_pid" || true
    { echo; echo "#### Where the server's CPU went: $name"; echo; echo '```'
      python3 "$here/perf_categories.py" "perf-$name.data"; echo '```'; } >> profiles.md
  fi
  # The last line is `time`'s; the Lua script or the driver may have
  # written to stderr before it (the first failures): shown, not lost.
  head -n -1 "time-$name.txt" | sed "s/^/   $name: /" >&2
  wrk_cpu=$(tail -n 1 "time-$name.txt" | awk -v hz="$hz" '{ printf "%d", ($1 + $2) * hz }')
  local line
  line=$(grep '^RESULT ' "wrk-$name.txt" | sed 's/^RESULT //')
  python3 -c 'import json,sys; r=json.loads(sys.argv[1]); r["name"]=sys.argv[2]; r.update(json.loads(sys.argv[3])); print(json.dumps(r))' \
    "$line" "$name" "{\"rss_mib\": $(( $(rss_kb VmRSS) / 1024 )), \"server_cpu_pct\": $(( 100 * (s1 - s0) / (m1[1] - m0[1] + 1) )), \"wrk_cpu_pct\": $(( 100 * wrk_cpu / (m1[1] - m0[1] + 1) )), \"db_cpu_pct\": $(( 100 * (d1 - d0) / (m1[1] - m0[1] + 1) )), \"others_cpu_pct\": $(( 100 * (m1[0] - m0[0] - (s1 - s0) - (d1 - d0) - wrk_cpu) / (m1[1] - m0[1] + 1) ))}" >> "$results"
}

# scenario NAME PATH [wrk options...] -- with LOAD_* variables in the environment
scenario() {
  local name=$1 path=$2
  shift 2
  want "$name" || return 0
  measure "$name" wrk -t "$threads" -c "$connections" -d "${duration}s" --timeout 10s "$@" \
    -s "$here/sigil.lua" "$base$path"
}

# The browser driver, as web-bench signing in loaduser1..4 (virtual user i
# is loaduser((i % 4) + 1)); the password through the environment, not
# the command line.
browser_flow() { # MODE [options...]
  LOAD_PASSWORD="$user_password" "$venv/bin/python" "$here/browser_flow.py" "$@" --base "$base" \
    --client web-bench --redirect-uri "$web_redirect" --user-prefix loaduser --users 4
}
# browser_scenario NAME MODE [options...]: a browser_flow.py scenario at
# --connections virtual users for --duration seconds.
browser_scenario() {
  local name=$1
  shift
  want "$name" || return 0
  measure "$name" browser_flow "$@" --name "$name" --duration "$duration" --connections "$connections"
}

# One refresh chain per connection: a login each, whose refresh token the
# scenario then rotates over and over; plus one that wrk takes but never
# sends (see sigil.lua).
mint_refresh_tokens() { # client count file
  : > "$3"
  for i in $(seq 1 "$2"); do
    password_login "$1" "loaduser$(( (i % 4) + 1 ))" | json_field refresh_token >> "$3"
  done
}

scenario healthz /healthz
scenario jwks /.well-known/jwks.json
LOAD_IF_NONE_MATCH="$etag" scenario jwks_304 /.well-known/jwks.json
LOAD_METHOD=POST LOAD_AUTH="$auth_cc_rs" LOAD_BODY="grant_type=client_credentials" \
  scenario cc_rs256 /oauth/token
LOAD_METHOD=POST LOAD_AUTH="$auth_cc_ed" LOAD_BODY="grant_type=client_credentials" \
  scenario cc_eddsa /oauth/token
LOAD_METHOD=POST LOAD_BODY="grant_type=password&client_id=app-rs256&username=loaduser1&password=correct+horse+battery+staple" \
  scenario password /oauth/token
for alg in rs256 eddsa; do
  want "refresh_$alg" || continue
  mint_refresh_tokens "app-$alg" $((connections + 1)) "refresh-$alg.txt"
  LOAD_MODE=refresh LOAD_TOKENS="refresh-$alg.txt" LOAD_CLIENT="app-$alg" LOAD_THREADS="$threads" \
    scenario "refresh_$alg" /oauth/token
done
LOAD_METHOD=POST LOAD_AUTH="$auth_intro" LOAD_BODY="token=$user_token_rs" scenario introspect_rs256 /oauth/introspect
LOAD_METHOD=POST LOAD_AUTH="$auth_intro" LOAD_BODY="token=$user_token_ed" scenario introspect_eddsa /oauth/introspect
LOAD_AUTH="Bearer $user_token_rs" scenario users_me_rs256 /users/me
LOAD_AUTH="Bearer $user_token_ed" scenario users_me_eddsa /users/me

# Revocation: every request revokes a different access token, minted just
# before by cc-eddsa (a client may revoke only its own tokens).
if want revoke; then
echo "== minting access tokens to revoke" >&2
LOAD_MODE=mint LOAD_OUT="$work/revoke-tokens" LOAD_METHOD=POST LOAD_AUTH="$auth_cc_ed" \
  LOAD_BODY="grant_type=client_credentials" \
  wrk -t "$threads" -c "$connections" -d "${duration}s" -s "$here/sigil.lua" "$base/oauth/token" > wrk-mint.txt
cat "$work"/revoke-tokens.* > revoke-tokens.txt
LOAD_MODE=revoke LOAD_TOKENS=revoke-tokens.txt LOAD_THREADS="$threads" LOAD_METHOD=POST LOAD_AUTH="$auth_cc_ed" \
  scenario revoke /oauth/revoke
fi

# Browser sign-in (authorization code + PKCE, first-party client, so no
# consent page): whole sign-ins, each bounded by one argon2 hash; then
# single sign-on, /authorize with a live session, a 303 with a fresh code
# (a database write) per request; then the code exchange alone (two RS256
# signatures, the access and the ID token, and the refresh family's write).
browser_scenario browser_full full
if want authorize_sso; then
  # One sign-in; wrk then sends its cookies as they are, with the same
  # request each time (state, nonce and the RFC 7636 example challenge:
  # the codes are never exchanged, and expire).
  sso_cookie=$(browser_flow session)
  LOAD_COOKIE="$sso_cookie" LOAD_EXPECT=303 scenario authorize_sso \
    "/authorize?response_type=code&client_id=web-bench&redirect_uri=http%3A%2F%2F127.0.0.1%2Fcb&scope=openid%20profile&state=load-sso&nonce=load-sso&code_challenge=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM&code_challenge_method=S256"
fi
browser_scenario code_exchange exchange

# Paced probes of JWKS and of refresh (two connections each, 10 ms between
# requests) while a login flood runs (started just before, in the
# background, as $flood): hashing must not starve them. Their results are
# PREFIX_jwks_probe and PREFIX_refresh_probe.
probe_flood() { # PREFIX
  local prefix=$1 probe_jwks
  local probe_duration=$(( duration > 4 ? duration - 2 : 2 ))
  sleep 1
  LOAD_DELAY_MS=10 wrk -t 1 -c 2 -d "${probe_duration}s" --timeout 10s -s "$here/sigil.lua" \
    "$base/.well-known/jwks.json" > "wrk-${prefix}_jwks_probe.txt" &
  probe_jwks=$!
  LOAD_DELAY_MS=10 LOAD_MODE=refresh LOAD_TOKENS="refresh-$prefix.txt" LOAD_CLIENT=app-eddsa LOAD_THREADS=1 \
    wrk -t 1 -c 2 -d "${probe_duration}s" --timeout 10s -s "$here/sigil.lua" "$base/oauth/token" \
    > "wrk-${prefix}_refresh_probe.txt"
  wait "$probe_jwks" "$flood"
  for probe in "${prefix}_jwks_probe" "${prefix}_refresh_probe"; do
    python3 -c 'import json,sys; r=json.loads(sys.argv[1]); r["name"]=sys.argv[2]; print(json.dumps(r))' \
      "$(grep '^RESULT ' "wrk-$probe.txt" | sed 's/^RESULT //')" "$probe" >> "$results"
  done
}

# A login flood through the password grant, and meanwhile the probes.
if want flood_password; then
echo "== login flood with JWKS and refresh probes" >&2
mint_refresh_tokens app-eddsa 3 refresh-flood.txt
wait_for_quiet
LOAD_NO_WAIT=1 LOAD_METHOD=POST LOAD_BODY="grant_type=password&client_id=app-rs256&username=loaduser2&password=correct+horse+battery+staple" \
  scenario flood_password /oauth/token &
flood=$!
probe_flood flood
fi

# The same through the sign-in page: browser_flow.py full at --connections
# virtual users (a session and a code exchange besides each hash).
if want flood_browser; then
echo "== browser sign-in flood with JWKS and refresh probes" >&2
mint_refresh_tokens app-eddsa 3 refresh-flood_browser.txt
wait_for_quiet
LOAD_NO_WAIT=1 browser_scenario flood_browser full &
flood=$!
probe_flood flood_browser
fi

loaded_rss=$(rss_kb VmRSS)
peak_rss=$(rss_kb VmHWM)
denylist=$(metric sigil_denylist_entries)
audit_dropped=$(metric sigil_audit_dropped_total)
argon2_queue=$(metric sigil_argon2_queue_depth)

# Rotation integrity: every refresh answered 200 spent exactly one token,
# no family was revoked as reused, and every chain still has exactly one
# live token.
stop_server
integrity_sql="SELECT
  (SELECT count(*) FROM refresh_tokens WHERE spent_at IS NOT NULL),
  (SELECT count(*) FROM refresh_families WHERE revoked_at IS NOT NULL),
  (SELECT count(*) FROM (SELECT family_id FROM refresh_tokens GROUP BY family_id
     HAVING sum(CASE WHEN spent_at IS NULL THEN 1 ELSE 0 END) <> 1) AS bad)"
if [ "$backend" = postgres ]; then
  integrity=$(psql -At -F ' ' -h 127.0.0.1 -U postgres -d "$dbname" -c "$integrity_sql")
else
  integrity=$(python3 -c 'import sqlite3,sys; print(*sqlite3.connect("sigil.db").execute(sys.argv[1]).fetchone())' "$integrity_sql")
fi

if [ -n "$out" ]; then  # the raw figures too, to re-render or compare
  raw="${out%.md}"
  cp "$results" "$raw.results.jsonl"; cp "$work/ceilings.txt" "$raw.ceilings.txt"; cp startup.json "$raw.startup.json"
fi
python3 "$here/report.py" \
  --results "$results" --ceilings "$work/ceilings.txt" --startup startup.json \
  --backend "$backend" --duration "$duration" --threads "$threads" --connections "$connections" \
  --idle-rss "$idle_rss" --loaded-rss "$loaded_rss" --peak-rss "$peak_rss" \
  --denylist "${denylist:-?}" --audit-dropped "${audit_dropped:-0}" --integrity "$integrity" \
  --elapsed $(( $(date +%s) - run_started )) | tee "${out:-/dev/null}"
if [ -f profiles.md ]; then
  tee -a "${out:-/dev/null}" < profiles.md
fi
