//! End-to-end tests: an in-process Sigil (SQLite in a temp dir, a manual
//! clock) and the notes service or a verifier in front of it. One binary,
//! because each file under tests/ links separately.

mod helpers;

mod dpop;
mod layer;
mod outage;
mod revocation;
mod rotation;
mod tokens;
