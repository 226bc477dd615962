# Sourced (not run) by the scripts that test against a throwaway Sigil:
# the binary, a fresh server on SQLite or on a throwaway Postgres database,
# and the cleanup of both. Set `root` (the repository) before sourcing; the
# script's own `set -euo pipefail` applies.
#
#   SIGIL_TEST_BIN=/path/to/sigil   that binary instead of the debug build
#   SIGIL_TEST_POSTGRES_URL         the Postgres to create databases on
#                                   (default postgres://postgres@127.0.0.1:5432/postgres)
#   SIGIL_TEST_REQUIRE_POSTGRES=1   unreachable Postgres fails instead of skipping
#
# Sets: sigil (the binary), work (a temporary directory, removed at exit),
# and, while a server runs, pid and base (its URL). At exit, every server
# started is stopped and every database throwaway_postgres made dropped; so
# a script may keep a second server running (save pid and base before
# starting the next) and stop it with stop_sigil PID.

if [ -n "${SIGIL_TEST_BIN:-}" ]; then
  sigil=$(cd "$(dirname "$SIGIL_TEST_BIN")" && pwd)/$(basename "$SIGIL_TEST_BIN")
else
  cargo build --quiet --manifest-path "$root/Cargo.toml" -p sigil --bin sigil
  sigil="$root/target/debug/sigil"
fi
pg_admin="${SIGIL_TEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/postgres}"
work=$(mktemp -d)
pid=
pids= # every server still running, for the cleanup
dbs= # every database created, for the cleanup
base=
cleanup() {
  set +e # every step, whatever the one before did
  local p
  for p in $pids; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
  # FORCE: a Sigil that did not stop in time still holds connections.
  for p in $dbs; do psql -q "$pg_admin" -c "DROP DATABASE IF EXISTS $p WITH (FORCE)"; done
  rm -rf "$work"
}
trap cleanup EXIT
# Tests need no production-strength hashing.
export SIGIL_ARGON2__MEMORY_KIB=1024 SIGIL_ARGON2__ITERATIONS=1

# start_sigil NAME [DATABASE_URL]: a fresh Sigil in $work/NAME (the current
# directory afterwards, so the CLI finds the same database), on SQLite
# there or on DATABASE_URL; sets pid and base. It listens on 127.0.0.1, on
# a port of its choosing with the issuer http://127.0.0.1:PORT; or, with
# SIGIL_TEST_HOST=NAME set (e.g. `SIGIL_TEST_HOST=localhost start_sigil
# ...`), on a free port picked beforehand (with python3) with the issuer
# http://NAME:PORT: passkeys need a domain name (`localhost` and its
# subdomains are, and browsers resolve them to the loopback). Other
# SIGIL_* variables set for the call configure that server.
start_sigil() {
  mkdir -p "$work/$1"
  cd "$work/$1"
  unset SIGIL_DATABASE_URL
  if [ -n "${2:-}" ]; then
    export SIGIL_DATABASE_URL="$2"
    mkdir -p keys
    "$sigil" keys new-kek > keys/kek # Postgres never creates one implicitly
    chmod 600 keys/kek
  fi
  local listen=127.0.0.1:0 issuer=
  if [ -n "${SIGIL_TEST_HOST:-}" ]; then
    local port
    port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    listen="127.0.0.1:$port"
    issuer="http://$SIGIL_TEST_HOST:$port"
  fi
  if [ -n "$issuer" ]; then
    SIGIL_LISTEN=$listen SIGIL_ISSUER=$issuer "$sigil" serve 2> serve.log &
  else
    SIGIL_LISTEN=$listen "$sigil" serve 2> serve.log &
  fi
  pid=$!
  pids="$pids $pid"
  local addr=
  for _ in $(seq 1 100); do
    addr=$(grep -o 'listen=[0-9.:]*' serve.log | head -1 | cut -d= -f2 || true)
    [ -n "$addr" ] && break
    sleep 0.1
  done
  [ -n "$addr" ] || { cat serve.log; echo "sigil did not start" >&2; exit 1; }
  if [ -n "$issuer" ]; then base=$issuer; else base="http://$addr"; fi
}

# stop_sigil [PID]: stops the server started last (or the one PID).
stop_sigil() {
  local p=${1:-$pid}
  kill "$p"
  wait "$p" 2>/dev/null || true
  pids=$(echo "$pids" | tr ' ' '\n' | grep -vx "$p" | tr '\n' ' ' || true)
  [ "$p" != "$pid" ] || pid=
}

# throwaway_postgres NAME: sets db_url to a database created for this run
# (dropped at exit, like every other one created); leaves db_url empty,
# with a note, when Postgres is unreachable, or exits when
# SIGIL_TEST_REQUIRE_POSTGRES=1.
throwaway_postgres() {
  db_url=
  if psql -q "$pg_admin" -c "SELECT 1" > /dev/null 2>&1; then
    local db="sigil_${1}_$$"
    psql -q "$pg_admin" -c "CREATE DATABASE $db" > /dev/null
    dbs="$dbs $db"
    db_url="${pg_admin%/*}/$db"
  elif [ "${SIGIL_TEST_REQUIRE_POSTGRES:-}" = 1 ]; then
    echo "Postgres at $pg_admin is unreachable and SIGIL_TEST_REQUIRE_POSTGRES=1" >&2
    exit 1
  else
    echo "-- Postgres: skipped ($pg_admin unreachable; set SIGIL_TEST_POSTGRES_URL)" >&2
  fi
}
