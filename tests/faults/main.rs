//! Fault injection against real `sigil` processes: kill -9 under load, a
//! Postgres stopped under load, a pool starved by locks, two nodes with one
//! killed mid-rotation or cut off from LISTEN/NOTIFY, and a bounded soak.
//!
//! Not part of `cargo test` (the target has `test = false`): run it with
//! `scripts/faults.sh` (`--quick` is what CI runs). What each test checks
//! and the figures of recorded runs are in docs/RELIABILITY.md.
//!
//! Postgres tests run a throwaway cluster of their own (initdb + pg_ctl on a
//! free port), so stopping it disturbs nothing else on the machine. Without
//! Postgres binaries they are skipped with a notice, unless
//! `SIGIL_TEST_REQUIRE_POSTGRES=1`, which makes that a failure.

mod crash;
mod first_seconds;
mod first_start;
mod harness;
mod load;
mod nodes;
mod outage;
mod pg;
mod soak;
