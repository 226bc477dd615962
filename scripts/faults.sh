#!/usr/bin/env bash
# The fault-injection suite (tests/faults): real sigil processes killed with
# SIGKILL under load, a throwaway Postgres cluster stopped under load, a pool
# starved by a locked table, two nodes with one killed mid key-rotation or
# cut off from LISTEN/NOTIFY, and a bounded soak. See docs/RELIABILITY.md.
#
#   scripts/faults.sh            # full run (40 kills a backend, 5-minute soaks)
#   scripts/faults.sh --quick    # what CI runs (8 kills, 45-second soaks)
#   scripts/faults.sh --quick soak   # only tests whose name contains "soak"
#
# The Postgres tests need the server binaries (initdb, pg_ctl); without them
# they are skipped with a notice, or fail with SIGIL_TEST_REQUIRE_POSTGRES=1.
set -euo pipefail
cd "$(dirname "$0")/.."

scale=full
if [[ "${1:-}" == "--quick" ]]; then
  scale=quick
  shift
fi
export FAULTS_SCALE="$scale"
export RUST_BACKTRACE=0
# One test at a time: each starts its own processes and load, and they
# would otherwise compete for the same two cores.
cargo test --test faults -- --test-threads=1 --nocapture "$@"
