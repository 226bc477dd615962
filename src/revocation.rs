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
use std::time::{Duration, Instant};

use moka::Expiry;
use moka::notification::RemovalCause;
use moka::sync::Cache;

use crate::clock::CLOCK_SKEW_LEEWAY;
use crate::store::{
    Families, NewRevocation, RevocationKind, RevocationRecord, Store, StoreResult, UserFamilies,
};
use crate::tokens::AccessClaims;

const SYNC_PAGE: i64 = 1000;

#[derive(Clone, Copy)]
struct Entry {
    /// For user entries: tokens issued at or before this are revoked.
    not_before: i64,
    /// When the entry stops mattering (Unix seconds).
    expires_at: i64,
    /// `expires_at` as a duration from when this value was stored; moka
    /// measures expiry on its own clock.
    ttl: Duration,
}

struct ByEntry;

impl Expiry<String, Entry> for ByEntry {
    fn expire_after_create(&self, _: &String, entry: &Entry, _: Instant) -> Option<Duration> {
        Some(entry.ttl)
    }

    /// A replaced entry takes the merged value's lifetime, never the old one.
    fn expire_after_update(
        &self,
        _: &String,
        entry: &Entry,
        _: Instant,
        _: Option<Duration>,
    ) -> Option<Duration> {
        Some(entry.ttl)
    }
}

pub struct DenyList {
    cache: Cache<String, Entry>,
    capacity: u64,
    /// The highest `seq` applied; the next sync reads past it.
    cursor: AtomicI64,
    /// One sync at a time, so entries are applied in order.
    syncing: tokio::sync::Mutex<()>,
    /// Set once the cache has evicted (or refused) an entry for lack of
    /// room, or come close to it: lookups then go to the database, so an
    /// evicted entry can never let a revoked token in.
    overflowed: Arc<AtomicBool>,
}

impl DenyList {
    pub fn new(capacity: u64) -> DenyList {
        let overflowed = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&overflowed);
        let cache = Cache::builder()
            .max_capacity(capacity)
            .expire_after(ByEntry)
            .eviction_listener(move |_, _, cause| {
                if cause == RemovalCause::Size && !flag.swap(true, Ordering::AcqRel) {
                    tracing::error!(
                        "the deny-list outgrew revocation_cache_capacity; checking revocations in the database from now on"
                    );
                }
            })
            .build();
        DenyList {
            cache,
            capacity,
            cursor: AtomicI64::new(0),
            syncing: tokio::sync::Mutex::new(()),
            overflowed,
        }
    }

    /// Applies every entry added since the last sync.
    pub async fn sync(&self, store: &dyn Store, now: i64) -> StoreResult<usize> {
        let _one_at_a_time = self.syncing.lock().await;
        let mut applied = 0;
        loop {
            let after = self.cursor.load(Ordering::Acquire);
            let page = store.revocations_since(after, now, SYNC_PAGE).await?;
            for record in &page {
                self.apply(record, now);
            }
            applied += page.len();
            if let Some(last) = page.last() {
                self.cursor.store(last.seq, Ordering::Release);
            }
            if (page.len() as i64) < SYNC_PAGE {
                break;
            }
        }
        if applied > 0 {
            self.cache.run_pending_tasks();
            // Switch to the database before the cache has to evict anything.
            if self.cache.entry_count() >= self.capacity / 10 * 9
                && !self.overflowed.swap(true, Ordering::AcqRel)
            {
                tracing::error!(
                    capacity = self.capacity,
                    "the deny-list is near revocation_cache_capacity; checking revocations in the database from now on"
                );
            }
        }
        Ok(applied)
    }

    fn apply(&self, record: &RevocationRecord, now: i64) {
        let incoming = (record.not_before.unwrap_or(0), record.expires_at);
        self.cache
            .entry(cache_key(record.kind, &record.value))
            .and_upsert_with(|existing| {
                let (not_before, expires_at) = match existing {
                    Some(old) => {
                        let old = old.into_value();
                        (
                            old.not_before.max(incoming.0),
                            old.expires_at.max(incoming.1),
                        )
                    }
                    None => incoming,
                };
                Entry {
                    not_before,
                    expires_at,
                    ttl: Duration::from_secs(expires_at.saturating_sub(now).max(1) as u64),
                }
            });
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
        if self
            .cache
            .contains_key(&cache_key(RevocationKind::Token, &claims.jti))
        {
            return true;
        }
        if let Some(sid) = &claims.sid
            && self
                .cache
                .contains_key(&cache_key(RevocationKind::Session, sid))
        {
            return true;
        }
        self.cache
            .get(&cache_key(RevocationKind::User, &claims.sub))
            .is_some_and(|e| claims.iat <= e.not_before)
    }

    /// Drops entries whose `expires_at` is before `now`. The cache expires
    /// them by itself on the real clock (each entry's time to live); this
    /// also holds when the clock Sigil is given has moved on faster (tests,
    /// a clock jump), so memory never holds an entry past its expiry after
    /// a pruning pass. Returns how many were dropped.
    pub fn forget_expired(&self, now: i64) -> u64 {
        let mut dropped = 0;
        for (key, entry) in self.cache.iter() {
            if entry.expires_at < now {
                self.cache.invalidate(key.as_ref());
                dropped += 1;
            }
        }
        self.cache.run_pending_tasks();
        dropped
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

fn cache_key(kind: RevocationKind, value: &str) -> String {
    let tag = match kind {
        RevocationKind::Token => 'j',
        RevocationKind::Session => 's',
        RevocationKind::Key => 'k',
        RevocationKind::User => 'u',
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
        kind: RevocationKind::Token,
        value: claims.jti.clone(),
        not_before: None,
        expires_at: claims.exp + CLOCK_SKEW_LEEWAY,
    };
    store.insert_revocation(&revocation, now).await?;
    metrics::counter!(crate::metrics::REVOCATIONS, "kind" => RevocationKind::Token.as_str())
        .increment(1);
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
        kind: RevocationKind::Session,
        value: family_id.to_string(),
        not_before: None,
        expires_at: covering(now, ttl),
    };
    let revoked = store
        .revoke_families(Families::One(family_id), &revocation, now)
        .await?;
    metrics::counter!(crate::metrics::REVOCATIONS, "kind" => RevocationKind::Session.as_str())
        .increment(1);
    Ok(revoked)
}

/// How long the tokens a revocation must cover can live.
#[derive(Debug, Clone, Copy)]
pub struct RevocationWindow {
    /// The server's access-token lifetime: no access token outlives it.
    pub access_token_ttl: Duration,
    /// `refresh_reuse_grace`: a retried refresh may issue an access token
    /// this long after the refresh token it presents was spent.
    pub reuse_grace: Duration,
}

/// "Log out everywhere": every refresh family of the user, and every access
/// token issued to them until the revocation commits; none issued after.
pub async fn revoke_user_sessions(
    store: &dyn Store,
    user_id: &str,
    window: RevocationWindow,
    now: i64,
) -> StoreResult<u64> {
    revoke_user(store, user_id, false, None, window, now).await
}

/// Stores the user's new password hash and, in the same transaction,
/// revokes as [`revoke_user_sessions`] does.
pub async fn change_password(
    store: &dyn Store,
    user_id: &str,
    password_hash: &str,
    window: RevocationWindow,
    now: i64,
) -> StoreResult<u64> {
    revoke_user(store, user_id, false, Some(password_hash), window, now).await
}

/// Disables the user and, in the same transaction, revokes as
/// [`revoke_user_sessions`] does.
pub async fn disable_user(
    store: &dyn Store,
    user_id: &str,
    window: RevocationWindow,
    now: i64,
) -> StoreResult<u64> {
    revoke_user(store, user_id, true, None, window, now).await
}

/// Revokes what the user holds when the transaction commits, exactly:
///
/// - refresh families: the store marks every live one revoked, ordered
///   against concurrent logins and refreshes (see `Store::revoke_families`),
///   so a session begun after the commit stays live, even in the same
///   second (or millisecond);
/// - access tokens: seconds are all a token's `iat` tells, so the `user`
///   entry denies those issued in any *earlier* second (`not_before` is
///   `now - 1`), and each revoked family that issued a token in the last
///   moments (this second, or a retry within the reuse grace) gets a
///   `session` entry, which denies its tokens by `sid`. A token issued after
///   the commit has a live session's `sid` and `iat >= now`: no entry
///   matches it. Every token a user is issued carries a `sid` (a login
///   whose client may not refresh still opens a session), so none escapes
///   both.
async fn revoke_user(
    store: &dyn Store,
    user_id: &str,
    disable: bool,
    new_password_hash: Option<&str>,
    window: RevocationWindow,
    now: i64,
) -> StoreResult<u64> {
    let of = UserFamilies {
        user_id,
        active_since: now - window.reuse_grace.as_secs() as i64 - CLOCK_SKEW_LEEWAY,
        new_password_hash,
    };
    let families = if disable {
        Families::OfDisabledUser(of)
    } else {
        Families::OfUser(of)
    };
    let revocation = NewRevocation {
        kind: RevocationKind::User,
        value: user_id.to_string(),
        not_before: Some(now - 1),
        expires_at: covering(now, window.access_token_ttl),
    };
    let revoked = store.revoke_families(families, &revocation, now).await?;
    metrics::counter!(crate::metrics::REVOCATIONS, "kind" => RevocationKind::User.as_str())
        .increment(1);
    Ok(revoked)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(sub: &str, iat: i64) -> AccessClaims {
        AccessClaims {
            iss: "i".into(),
            sub: sub.into(),
            aud: "a".into(),
            exp: iat + 900,
            iat,
            nbf: iat,
            jti: format!("j{iat}"),
            client_id: "c".into(),
            scope: None,
            sid: None,
            acr: None,
            amr: None,
            cnf: None,
            act: None,
        }
    }

    fn user_entry(seq: i64, sub: &str, not_before: i64) -> RevocationRecord {
        RevocationRecord {
            seq,
            kind: RevocationKind::User,
            value: sub.into(),
            not_before: Some(not_before),
            expires_at: not_before + 960,
            created_at: not_before,
        }
    }

    #[test]
    fn a_later_user_revocation_extends_the_entry_and_an_earlier_one_never_shrinks_it() {
        let list = DenyList::new(10_000);
        list.apply(&user_entry(1, "alice", 1_000), 1_000);
        list.apply(&user_entry(2, "alice", 1_900), 1_900);
        assert!(
            list.is_revoked_cached(&claims("alice", 1_850)),
            "issued before the second revocation"
        );
        list.apply(&user_entry(3, "alice", 1_200), 1_900);
        assert!(
            list.is_revoked_cached(&claims("alice", 1_850)),
            "a stale entry does not lower not_before"
        );
        assert!(!list.is_revoked_cached(&claims("alice", 1_901)));
        assert!(!list.is_revoked_cached(&claims("bob", 1_000)));
    }
}
