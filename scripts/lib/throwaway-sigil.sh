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
# and, while a server runs, pid and base (its URL).

if [ -n "${SIGIL_TEST_BIN:-}" ]; then
  sigil=$(cd "$(dirname "$SIGIL_TEST_BIN")" && pwd)/$(basename "$SIGIL_TEST_BIN")
else
  cargo build --quiet --manifest-path "$root/Cargo.toml" -p sigil --bin sigil
  sigil="$root/target/debug/sigil"
fi
pg_admin="${SIGIL_TEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/postgres}"
work=$(mktemp -d)
pid=
db=
base=
cleanup() {
  set +e # every step, whatever the one before did
  [ -n "$pid" ] && { kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; }
  # FORCE: a Sigil that did not stop in time still holds connections.
  [ -n "$db" ] && psql -q "$pg_admin" -c "DROP DATABASE IF EXISTS $db WITH (FORCE)"
  rm -rf "$work"
}
trap cleanup EXIT
# Tests need no production-strength hashing.
export SIGIL_ARGON2__MEMORY_KIB=1024 SIGIL_ARGON2__ITERATIONS=1

# start_sigil NAME [DATABASE_URL]: a fresh Sigil in $work/NAME (the current
# directory afterwards, so the CLI finds the same database), on SQLite
# there or on DATABASE_URL; sets pid and base.
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

stop_sigil() {
  kill "$pid"
  wait "$pid" 2>/dev/null || true
  pid=
}

# throwaway_postgres NAME: sets db_url to a database created for this run
# (dropped at exit); leaves db_url empty, with a note, when Postgres is
# unreachable, or exits when SIGIL_TEST_REQUIRE_POSTGRES=1.
throwaway_postgres() {
  db_url=
  if psql -q "$pg_admin" -c "SELECT 1" > /dev/null 2>&1; then
    db="sigil_${1}_$$"
    psql -q "$pg_admin" -c "CREATE DATABASE $db" > /dev/null
    db_url="${pg_admin%/*}/$db"
  elif [ "${SIGIL_TEST_REQUIRE_POSTGRES:-}" = 1 ]; then
    echo "Postgres at $pg_admin is unreachable and SIGIL_TEST_REQUIRE_POSTGRES=1" >&2
    exit 1
  else
    echo "-- Postgres: skipped ($pg_admin unreachable; set SIGIL_TEST_POSTGRES_URL)" >&2
  fi
}
