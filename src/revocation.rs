//! The deny-list: revoked access tokens (`jti`), revoked login sessions
//! (`sid`, a refresh-token family) and per-user "not before" times.
//!
//! The database holds the list; every node mirrors the unexpired entries in a
//! bounded in-memory cache (moka), each entry living only until the tokens
//! it could match have expired. Nodes pick up each other's revocations
//! through the store's change signal (Postgres LISTEN/NOTIFY) and a periodic
//! re-read as a backstop. Checking a token is a few hash lookups.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::time::Duration;

use moka::Expiry;
use moka::sync::Cache;

use crate::keys::CLOCK_SKEW_LEEWAY;
use crate::store::{Families, NewRevocation, RevocationRecord, Store, StoreResult};
use crate::tokens::AccessClaims;

pub const KIND_TOKEN: &str = "token";
pub const KIND_SESSION: &str = "session";
pub const KIND_USER: &str = "user";

const SYNC_PAGE: i64 = 1000;

#[derive(Clone, Copy)]
struct Entry {
    /// For user entries: tokens issued at or before this are revoked.
    not_before: i64,
    /// How long, from insertion, the entry is worth keeping.
    ttl: Duration,
}

struct ByEntry;

impl Expiry<String, Entry> for ByEntry {
    fn expire_after_create(
        &self,
        _: &String,
        entry: &Entry,
        _: std::time::Instant,
    ) -> Option<Duration> {
        Some(entry.ttl)
    }
}

pub struct DenyList {
    cache: Cache<String, Entry>,
    capacity: u64,
    /// The highest `seq` applied; the next sync reads past it.
    cursor: AtomicI64,
    /// Set if the list ever outgrew the cache: lookups then go to the
    /// database, so that an evicted entry can never let a revoked token in.
    overflowed: AtomicBool,
}

impl DenyList {
    pub fn new(capacity: u64) -> DenyList {
        DenyList {
            cache: Cache::builder()
                .max_capacity(capacity)
                .expire_after(ByEntry)
                .build(),
            capacity,
            cursor: AtomicI64::new(0),
            overflowed: AtomicBool::new(false),
        }
    }

    /// Applies every entry added since the last sync.
    pub async fn sync(&self, store: &dyn Store, now: i64) -> StoreResult<usize> {
        let mut applied = 0;
        loop {
            let after = self.cursor.load(Ordering::Acquire);
            let page = store.revocations_since(after, now, SYNC_PAGE).await?;
            for record in &page {
                self.apply(record, now);
            }
            applied += page.len();
            if let Some(last) = page.last() {
                self.cursor.fetch_max(last.seq, Ordering::AcqRel);
            }
            if (page.len() as i64) < SYNC_PAGE {
                return Ok(applied);
            }
        }
    }

    fn apply(&self, record: &RevocationRecord, now: i64) {
        let ttl = Duration::from_secs(record.expires_at.saturating_sub(now).max(1) as u64);
        let key = cache_key(&record.kind, &record.value);
        let not_before = record.not_before.unwrap_or(0);
        let not_before = match self.cache.get(&key) {
            Some(existing) => existing.not_before.max(not_before),
            None => not_before,
        };
        self.cache.insert(key, Entry { not_before, ttl });
        if self.cache.entry_count() >= self.capacity
            && !self.overflowed.swap(true, Ordering::AcqRel)
        {
            tracing::error!(
                capacity = self.capacity,
                "the deny-list outgrew revocation_cache_capacity; checking revocations in the database from now on"
            );
        }
    }

    /// Whether the token is revoked by its `jti`, its session or its user.
    pub async fn is_revoked(
        &self,
        store: &dyn Store,
        claims: &AccessClaims,
        now: i64,
    ) -> StoreResult<bool> {
        if self.overflowed.load(Ordering::Acquire) {
            return store
                .is_revoked(
                    &claims.jti,
                    claims.sid.as_deref(),
                    &claims.sub,
                    claims.iat,
                    now,
                )
                .await;
        }
        Ok(self.is_revoked_cached(claims))
    }

    fn is_revoked_cached(&self, claims: &AccessClaims) -> bool {
        if self.cache.contains_key(&cache_key(KIND_TOKEN, &claims.jti)) {
            return true;
        }
        if let Some(sid) = &claims.sid {
            if self.cache.contains_key(&cache_key(KIND_SESSION, sid)) {
                return true;
            }
        }
        self.cache
            .get(&cache_key(KIND_USER, &claims.sub))
            .is_some_and(|e| claims.iat <= e.not_before)
    }

    /// Entries currently held in memory.
    pub fn len(&self) -> u64 {
        self.cache.run_pending_tasks();
        self.cache.entry_count()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Keeps the list current until the store is dropped: re-reads on every
    /// change signal and at least every `interval`.
    pub fn spawn_sync(
        self: &Arc<Self>,
        store: Arc<dyn Store>,
        clock: Arc<dyn crate::clock::Clock>,
        interval: Duration,
    ) -> tokio::task::JoinHandle<()> {
        let list = Arc::clone(self);
        let mut changes = store.changes();
        tokio::spawn(async move {
            let mut ticker = tokio::time::interval(interval);
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                match changes.as_mut() {
                    Some(rx) => {
                        tokio::select! {
                            _ = ticker.tick() => {}
                            changed = rx.changed() => if changed.is_err() { changes = None },
                        }
                    }
                    None => {
                        ticker.tick().await;
                    }
                }
                if let Err(e) = list.sync(store.as_ref(), clock.now()).await {
                    tracing::warn!(error = %e, "re-reading the deny-list failed; will retry");
                }
            }
        })
    }
}

fn cache_key(kind: &str, value: &str) -> String {
    let tag = match kind {
        KIND_TOKEN => 'j',
        KIND_SESSION => 's',
        _ => 'u',
    };
    format!("{tag}:{value}")
}

/// How long a session or user entry must live: until every access token
/// that could match it has expired.
fn covering(now: i64, access_token_ttl: Duration) -> i64 {
    now + access_token_ttl.as_secs() as i64 + CLOCK_SKEW_LEEWAY
}

/// Puts one access token on the deny-list until it expires.
pub async fn revoke_access_token(
    store: &dyn Store,
    claims: &AccessClaims,
    now: i64,
) -> StoreResult<()> {
    let revocation = NewRevocation {
        kind: KIND_TOKEN,
        value: claims.jti.clone(),
        not_before: None,
        expires_at: claims.exp + CLOCK_SKEW_LEEWAY,
    };
    store.insert_revocation(&revocation, now).await?;
    Ok(())
}

/// Revokes a login session: its refresh-token family and every access token
/// issued in it.
pub async fn revoke_session(
    store: &dyn Store,
    family_id: &str,
    ttl: Duration,
    now: i64,
) -> StoreResult<u64> {
    let revocation = NewRevocation {
        kind: KIND_SESSION,
        value: family_id.to_string(),
        not_before: None,
        expires_at: covering(now, ttl),
    };
    store
        .revoke_families(Families::One(family_id), &revocation, now)
        .await
}

/// "Log out everywhere": every refresh family of the user, and every access
/// token issued to them up to now.
pub async fn revoke_user_sessions(
    store: &dyn Store,
    user_id: &str,
    ttl: Duration,
    now: i64,
) -> StoreResult<u64> {
    let revocation = NewRevocation {
        kind: KIND_USER,
        value: user_id.to_string(),
        not_before: Some(now),
        expires_at: covering(now, ttl),
    };
    store
        .revoke_families(Families::OfUser(user_id), &revocation, now)
        .await
}
