#!/usr/bin/env bash
# Instructions per request, from valgrind's callgrind: a figure that other
# processes on the machine do not inflate (wall-clock and CPU shares are).
#
#   scripts/load/instructions.sh BINARY PATH [N]
#
# Starts BINARY (a release build of sigil) once to create a SQLite database
# and keys, then again under callgrind; warms up with wrk, zeroes the
# counters, sends N (default 2000) keep-alive GETs of PATH, dumps, and prints
# the server's instructions (all threads, user space only) per request.
# Needs valgrind, wrk, curl, python3. See docs/BENCHMARKS.md.
set -euo pipefail
bin=$(realpath "$1"); path=$2; n=${3:-2000}
work=$(mktemp -d "${TMPDIR:-/tmp}/sigil-instr.XXXXXX")
vpid=""
cleanup() {
  if [ -n "$vpid" ]; then kill "$vpid" 2> /dev/null || true; wait "$vpid" 2> /dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT
cd "$work"
while IFS='=' read -r name _; do unset "$name"; done < <(env | grep '^SIGIL_' || true)
listening() { # LOG -> address, once the server logged it
  local addr=""
  for _ in $(seq 1 1200); do
    addr=$(grep -o 'listen=[0-9.:]*' "$1" | head -1 | cut -d= -f2 || true)
    [ -n "$addr" ] && { echo "$addr"; return 0; }
    sleep 0.1
  done
  cat "$1" >&2; return 1
}
SIGIL_LISTEN=127.0.0.1:0 "$bin" serve 2> first.log &
vpid=$!
listening first.log > /dev/null
kill "$vpid"; wait "$vpid" || true
SIGIL_LISTEN=127.0.0.1:0 valgrind --tool=callgrind --callgrind-out-file="$work/cg.out" "$bin" serve 2> serve.log &
vpid=$!
addr=$(listening serve.log)
wrk -t1 -c2 -d2s "http://$addr$path" > /dev/null
callgrind_control -z "$vpid" > /dev/null
python3 - "$addr" "$path" "$n" <<'PY'
import http.client, sys
addr, path, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
host, port = addr.rsplit(":", 1)
c = http.client.HTTPConnection(host, int(port))
for _ in range(n):
    c.request("GET", path)
    r = c.getresponse()
    r.read()
    assert r.status in (200, 304), r.status
PY
callgrind_control -d "$vpid" > /dev/null
total=$(callgrind_annotate "$work"/cg.out.1 2> /dev/null | awk '/PROGRAM TOTALS/ { gsub(",", "", $1); print $1 }')
echo "$path: $(( total / n )) instructions per request ($total over $n requests)"
