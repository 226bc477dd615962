//! One-time identifiers (a DPoP proof's `jti`, a client assertion's):
//! each is accepted once within the time it could be accepted at all.
//!
//! Held in memory on every node, each until its own expiry, at most
//! [`CAPACITY`] at once; on Postgres, where several nodes serve, also
//! recorded in the store (`JtiStore`), so a proof replayed against another
//! node is refused too. SQLite has one node: memory is enough there, and no
//! request pays a write for it.
//!
//! Full, the set forgets the identifier closest to its expiry (counted in
//! `sigil_replay_evictions_total`): the one an attacker has least time to
//! replay. A cache that chose by frequency instead could refuse to keep a
//! new identifier, and leave the freshest proofs open to replay.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::sync::{Mutex, PoisonError};

use crate::store::{Store, StoreResult};

/// Most identifiers held in memory per node (about 100 bytes each).
pub const CAPACITY: usize = 200_000;

pub struct ReplayGuard {
    seen: Mutex<Seen>,
    capacity: usize,
    /// Whether other nodes share the store (Postgres).
    shared: bool,
}

type Key = [u8; 32];

#[derive(Default)]
struct Seen {
    until: HashMap<Key, i64>,
    /// Every identifier by expiry, soonest first.
    by_expiry: BinaryHeap<Reverse<(i64, Key)>>,
}

impl ReplayGuard {
    pub fn new(shared: bool) -> ReplayGuard {
        ReplayGuard::with_capacity(shared, CAPACITY)
    }

    fn with_capacity(shared: bool, capacity: usize) -> ReplayGuard {
        ReplayGuard {
            seen: Mutex::new(Seen::default()),
            capacity,
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
        let digest = ring::digest::digest(
            &ring::digest::SHA256,
            format!("{purpose}\u{0}{issuer}\u{0}{jti}").as_bytes(),
        );
        let mut key = [0u8; 32];
        key.copy_from_slice(digest.as_ref());
        if !self.remember(key, expires_at, now) {
            return Ok(false);
        }
        if self.shared && !store.remember_jti(&key, expires_at, now).await? {
            return Ok(false);
        }
        Ok(true)
    }

    /// Whether `key` is new in memory; remembers it until `expires_at`.
    fn remember(&self, key: Key, expires_at: i64, now: i64) -> bool {
        let mut seen = self.seen.lock().unwrap_or_else(PoisonError::into_inner);
        // What has expired could not be accepted anyway.
        while seen
            .by_expiry
            .peek()
            .is_some_and(|Reverse((expiry, _))| *expiry <= now)
        {
            seen.pop_soonest();
        }
        if seen.until.contains_key(&key) {
            return false;
        }
        let mut evicted = 0u64;
        while seen.until.len() >= self.capacity && seen.pop_soonest() {
            evicted += 1;
        }
        if evicted > 0 {
            metrics::counter!(crate::metrics::REPLAY_EVICTIONS).increment(evicted);
        }
        seen.until.insert(key, expires_at);
        seen.by_expiry.push(Reverse((expires_at, key)));
        true
    }

    /// How many identifiers are held in memory.
    pub fn len(&self) -> usize {
        self.seen
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .until
            .len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Seen {
    /// Forgets the identifier that expires first; whether there was one.
    fn pop_soonest(&mut self) -> bool {
        match self.by_expiry.pop() {
            Some(Reverse((_, key))) => {
                self.until.remove(&key);
                true
            }
            None => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(n: u8) -> Key {
        [n; 32]
    }

    #[test]
    fn an_identifier_is_new_once_until_it_expires() {
        let guard = ReplayGuard::new(false);
        assert!(guard.remember(key(1), 100, 10));
        assert!(!guard.remember(key(1), 100, 50));
        // Past its expiry it could not be accepted anyway; it is forgotten.
        assert!(guard.remember(key(1), 200, 101));
        assert_eq!(guard.len(), 1);
    }

    #[test]
    fn expired_identifiers_are_dropped_as_new_ones_arrive() {
        let guard = ReplayGuard::new(false);
        for n in 0..10 {
            assert!(guard.remember(key(n), 20 + i64::from(n), 10));
        }
        assert!(guard.remember(key(100), 1_000, 25));
        // 20..=25 have expired and are gone; 26..=29 and the new one stay.
        assert_eq!(guard.len(), 5);
    }

    #[test]
    fn full_it_forgets_the_identifier_closest_to_its_expiry_never_a_new_one() {
        let guard = ReplayGuard::with_capacity(false, 3);
        assert!(guard.remember(key(1), 300, 0));
        assert!(guard.remember(key(2), 100, 0));
        assert!(guard.remember(key(3), 200, 0));
        // Full: the next one evicts key 2 (expires first) and is kept.
        assert!(guard.remember(key(4), 90, 0));
        assert!(!guard.remember(key(4), 90, 1), "the newest is remembered");
        assert!(!guard.remember(key(1), 300, 1));
        assert!(!guard.remember(key(3), 200, 1));
        assert_eq!(guard.len(), 3);
    }
}
