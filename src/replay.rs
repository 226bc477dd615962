//! One-time identifiers (a DPoP proof's `jti`, a client assertion's):
//! each is accepted once within the time it could be accepted at all.
//!
//! Held in memory on every node, bounded, for the longest such time; on
//! Postgres, where several nodes serve, also recorded in the store
//! (`JtiStore`), so a proof replayed against another node is refused too.
//! SQLite has one node: memory is enough there, and no request pays a
//! write for it.

use std::time::Duration;

use moka::sync::Cache;

use crate::store::{Store, StoreResult};

/// Most identifiers held in memory per node.
const CAPACITY: u64 = 200_000;
/// Longest an identifier is remembered in memory (at least every window a
/// caller uses: proofs' `iat` age, assertions' lifetime).
const REMEMBERED: Duration = Duration::from_secs(10 * 60);

pub struct ReplayGuard {
    seen: Cache<Vec<u8>, ()>,
    /// Whether other nodes share the store (Postgres).
    shared: bool,
}

impl ReplayGuard {
    pub fn new(shared: bool) -> ReplayGuard {
        ReplayGuard {
            seen: Cache::builder()
                .max_capacity(CAPACITY)
                .time_to_live(REMEMBERED)
                .build(),
            shared,
        }
    }

    /// Whether the identifier (`purpose`, issuer or key, `jti`) is used
    /// for the first time; it is remembered until `expires_at`.
    pub async fn first_use(
        &self,
        store: &dyn Store,
        purpose: &str,
        issuer: &str,
        jti: &str,
        expires_at: i64,
        now: i64,
    ) -> StoreResult<bool> {
        let key = ring::digest::digest(
            &ring::digest::SHA256,
            format!("{purpose}\u{0}{issuer}\u{0}{jti}").as_bytes(),
        )
        .as_ref()
        .to_vec();
        // Inserted atomically: of concurrent callers one finds it fresh.
        if !self.seen.entry(key.clone()).or_insert(()).is_fresh() {
            return Ok(false);
        }
        if self.shared && !store.remember_jti(&key, expires_at, now).await? {
            return Ok(false);
        }
        Ok(true)
    }
}
