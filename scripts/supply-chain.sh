#!/usr/bin/env bash
# Supply-chain checks with cargo-deny (policy in deny.toml).
#
#   scripts/supply-chain.sh              licences, bans, sources, advisories
#   scripts/supply-chain.sh --self-test  proves the advisory check can fail
#
# Licences, banned and duplicate crates, and sources must pass.
#
# RustSec advisories (vulnerabilities; unmaintained, unsound and yanked
# notices) against the crates every workspace member locks must pass too,
# but for deny.toml's `ignore` entries, each with its reason. They are
# checked against the live database when it can be fetched from github.com
# (within SIGIL_RUSTSEC_FETCH_TIMEOUT seconds, 60 by default), else against
# the offline snapshot: advisory-db.tar.gz in ../shared/rustsec relative to
# the repository root, or in the folder named by SIGIL_RUSTSEC_SNAPSHOT.
# The output says which database was used and, for the snapshot, its
# commit date: advisories published after that date are not checked. No
# database at all is a failure, never a skip. SIGIL_RUSTSEC_OFFLINE=1 goes
# straight to the snapshot. docs/security.md, "Supply chain", says how to
# refresh the snapshot.
#
# --self-test pins smallvec 1.6.0 (RUSTSEC-2021-0003) in a scratch project,
# asserts that the same advisory check fails on it naming that advisory,
# then asserts that this workspace passes. Only lockfiles are read; nothing
# is compiled.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

mode=check
case "${1:-}" in
  "") ;;
  --self-test) mode=self-test ;;
  *) echo "usage: $0 [--self-test]" >&2; exit 2 ;;
esac

snapshot_dir=${SIGIL_RUSTSEC_SNAPSHOT:-$(cd "$root/.." && pwd)/shared/rustsec}
fetch_timeout=${SIGIL_RUSTSEC_FETCH_TIMEOUT:-60}
# cargo-deny keeps a database in <db-path>/<last url segment>-<xxhash64 of
# the lowercased url>; this is the name for its default url
# (https://github.com/RustSec/advisory-db), the one deny.toml uses by
# setting no db-urls.
db_dir_name=advisory-db-3157b0e258782691
live_db=${CARGO_HOME:-$HOME/.cargo}/advisory-dbs/$db_dir_name
# An advisory database older than this draws a warning (cargo-deny's own
# default for maximum-db-staleness).
stale_days=90

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

if ! cargo deny --version > /dev/null 2>&1; then
  echo "installing cargo-deny"
  cargo install cargo-deny --locked --quiet
fi

# "commit <short hash> of <date>" for the git clone $1
db_commit() {
  git -C "$1" log -1 --format='commit %h of %cs'
}

# Where the live database cannot be fetched, the snapshot is unpacked into
# $work and read through a copy of deny.toml that points db-path at it.
snapshot_config=
snapshot_desc=
snapshot_warning=
prepare_snapshot() {
  [[ -n $snapshot_config ]] && return 0
  local tarball=$snapshot_dir/advisory-db.tar.gz db commit_epoch age
  if [[ ! -f $tarball ]]; then
    echo "advisories FAILED: no advisory database. The live one was not fetched and there is no snapshot at $tarball (set SIGIL_RUSTSEC_SNAPSHOT to the folder holding advisory-db.tar.gz; see docs/security.md)" >&2
    return 1
  fi
  mkdir -p "$work/rustsec"
  if ! tar -xzf "$tarball" -C "$work/rustsec" || [[ ! -d $work/rustsec/advisory-db/.git ]]; then
    echo "advisories FAILED: $tarball does not unpack to advisory-db/, a git clone of the RustSec advisory database" >&2
    return 1
  fi
  db=$work/rustsec/$db_dir_name
  mv "$work/rustsec/advisory-db" "$db" || return 1
  if grep -Eq '^[[:space:]]*(db-path|db-urls|maximum-db-staleness)[[:space:]]*=' deny.toml; then
    echo "advisories FAILED: deny.toml sets db-path, db-urls or maximum-db-staleness; for the snapshot this script sets db-path and maximum-db-staleness, and expects the default db-urls" >&2
    return 1
  fi
  # cargo-deny judges staleness by file times, which in an unpacked tarball
  # say when it was packed; the snapshot's age is judged here instead, by
  # its commit date, and printed.
  snapshot_config=$work/deny-snapshot.toml
  sed "s|^\[advisories\]\$|[advisories]\ndb-path = \"$work/rustsec\"\nmaximum-db-staleness = \"P36500D\"|" \
    deny.toml > "$snapshot_config"
  grep -q '^db-path = ' "$snapshot_config" || { echo "advisories FAILED: no [advisories] table in deny.toml" >&2; return 1; }
  commit_epoch=$(git -C "$db" log -1 --format=%ct) || {
    echo "advisories FAILED: cannot read the snapshot's commit (git -C $db log)" >&2
    return 1
  }
  age=$(( ($(date +%s) - commit_epoch) / 86400 ))
  snapshot_desc="RustSec offline snapshot $tarball, $(db_commit "$db"), $age days old; advisories published after $(git -C "$db" log -1 --format=%cs) are not checked"
  if (( age > stale_days )); then
    snapshot_warning="warning: the advisory snapshot is more than $stale_days days old; refresh it (docs/security.md, \"Supply chain\")"
  fi
}

# check_advisories <Cargo.toml>: the advisory check of that project's
# lockfile. Prints the findings and which database was read; returns
# non-zero if an advisory is found or no database could be read.
source_used=
check_advisories() {
  local manifest=$1 log rc
  if [[ ${SIGIL_RUSTSEC_OFFLINE:-0} != 1 && $source_used != snapshot ]]; then
    rc=0
    log=$(GIT_TERMINAL_PROMPT=0 timeout -k 10 "$fetch_timeout" \
      cargo deny --log-level error --workspace --manifest-path "$manifest" --config "$root/deny.toml" \
      check advisories 2>&1) || rc=$?
    if (( rc == 0 )); then
      source_used=live
      echo "advisories ok: live RustSec database (github.com/RustSec/advisory-db, fetched now, $(db_commit "$live_db" 2>/dev/null || echo "at $live_db"))"
      return 0
    elif (( rc == 124 || rc == 137 )); then
      echo "advisories: fetching the live RustSec database timed out after $fetch_timeout s; using the offline snapshot"
    elif grep -q "failed to fetch advisory database" <<< "$log"; then
      echo "advisories: the live RustSec database (github.com) cannot be fetched here; using the offline snapshot"
      grep -m1 -E "^(fatal|error):" <<< "$log" | sed 's/^/  /' || true
    else
      echo "$log"
      echo "advisories FAILED (live RustSec database, github.com/RustSec/advisory-db, $(db_commit "$live_db" 2>/dev/null || echo "at $live_db"))"
      return 1
    fi
  fi
  source_used=snapshot
  prepare_snapshot || return 1
  # Offline, cargo-deny fetches neither the database nor crates: fetch the
  # crates (their manifests make the graph) first; crates.io is reachable.
  timeout -k 10 300 cargo fetch --quiet --manifest-path "$manifest" || {
    echo "advisories FAILED: cargo fetch failed for $manifest" >&2
    return 1
  }
  rc=0
  log=$(cargo deny --log-level error --offline --workspace --manifest-path "$manifest" --config "$snapshot_config" \
    check advisories 2>&1) || rc=$?
  if (( rc == 0 )); then
    echo "advisories ok: $snapshot_desc"
  else
    echo "$log"
    echo "advisories FAILED (checked against the $snapshot_desc)"
  fi
  [[ -z $snapshot_warning ]] || echo "$snapshot_warning"
  return "$rc"
}

if [[ $mode == check ]]; then
  cargo deny --log-level error check licenses bans sources
  check_advisories "$root/Cargo.toml"
  exit
fi

# --self-test: a lockfile pinning smallvec 1.6.0, whose SmallVec::insert_many
# can overflow the heap (RUSTSEC-2021-0003, fixed in 1.6.1).
advisory=RUSTSEC-2021-0003
scratch=$work/self-test
mkdir -p "$scratch/src"
cat > "$scratch/Cargo.toml" <<'EOF'
[package]
name = "advisory-self-test"
version = "0.0.0"
edition = "2021"
publish = false

[dependencies]
smallvec = "=1.6.0"

[workspace]
EOF
: > "$scratch/src/lib.rs"
timeout -k 10 300 cargo generate-lockfile --quiet --manifest-path "$scratch/Cargo.toml"

echo "self-test: smallvec 1.6.0 must fail the advisory check with $advisory"
rc=0
check_advisories "$scratch/Cargo.toml" > "$work/self-test.log" 2>&1 || rc=$?
sed 's/^/  | /' "$work/self-test.log"
if (( rc == 0 )); then
  echo "self-test FAILED: the advisory check passed a lockfile pinning smallvec 1.6.0" >&2
  exit 1
fi
if ! grep -q "ID: $advisory" "$work/self-test.log"; then
  echo "self-test FAILED: the advisory check failed without naming $advisory" >&2
  exit 1
fi
echo "self-test: failed as it must, naming $advisory"

echo "self-test: this workspace must pass the same check"
if ! check_advisories "$root/Cargo.toml"; then
  echo "self-test FAILED: this workspace does not pass the advisory check" >&2
  exit 1
fi
echo "self-test ok"
