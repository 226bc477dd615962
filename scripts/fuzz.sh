#!/usr/bin/env bash
# Bounded fuzzing smoke run: every target under fuzz/ for FUZZ_SECONDS
# (default 30) each, with libFuzzer through cargo-fuzz. A crash fails the
# run and leaves its input under fuzz/artifacts/TARGET/; turn it into a
# regression test before fixing it.
#
# cargo-fuzz needs nightly-only compiler flags; this machine has one stable
# toolchain, so RUSTC_BOOTSTRAP=1 enables them on it.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
seconds="${FUZZ_SECONDS:-30}"
if ! cargo fuzz --version > /dev/null 2>&1; then
  echo "installing cargo-fuzz"
  cargo install cargo-fuzz --locked --quiet
fi
export RUSTC_BOOTSTRAP=1
cd "$root/fuzz"
for target in $(cargo fuzz list); do
  echo "== fuzz $target for ${seconds}s"
  mkdir -p "corpus/$target"
  log="$root/target/fuzz-$target.log"
  mkdir -p "$root/target"
  status=0
  cargo fuzz run "$target" --release -- -max_total_time="$seconds" -max_len=8192 \
    -print_final_stats=1 > "$log" 2>&1 || status=$?
  grep -E "stat::number_of_executed_units|==[0-9]+== ERROR|SUMMARY|panicked" "$log" || true
  if [ "$status" -ne 0 ]; then
    tail -40 "$log"
    echo "fuzz target $target failed (exit $status); see $log and fuzz/artifacts/$target/" >&2
    exit 1
  fi
done
