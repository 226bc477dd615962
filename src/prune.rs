//! Pruning: deletes the rows that can no longer matter, so that a long run
//! keeps the database, the deny-list and memory flat. One pass deletes
//!
//! - deny-list entries past their `expires_at` (plus the clock-skew leeway),
//! - refresh-token families (and their tokens) that can no longer be used
//!   nor need replay detection: revoked, or with every token expired, longer
//!   ago than an access token lives (plus the reuse grace and the leeway),
//! - login-throttle counters whose window and lockout are over,
//! - authorization codes expired longer ago than an access token lives,
//!   and browser sessions ended or expired,
//! - audit events older than `audit_retention` (unless it is `0s`).
//!
//! Each kind is deleted in batches of at most [`BATCH`] rows per statement,
//! so a large backlog never holds a long lock. Plain DELETEs of rows that
//! are dead by the clock make concurrent passes on several nodes harmless:
//! a row is deleted once, whoever gets there first.
//!
//! This module never deletes what a client or verifier could still use: a
//! live session's spent tokens stay (a replay must still revoke the family),
//! and so does every deny-list entry still in force.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crate::clock::CLOCK_SKEW_LEEWAY;
use crate::store::{Store, StoreResult};

/// Most rows one DELETE statement removes.
pub const BATCH: i64 = 5_000;

/// This node's pruning bookkeeping.
#[derive(Debug, Default)]
pub struct Pruning {
    /// Passes finished (successful or not) since start.
    passes: AtomicU64,
}

impl Pruning {
    /// Passes this node has finished, successful or not.
    pub fn passes(&self) -> u64 {
        self.passes.load(Ordering::Acquire)
    }

    /// Counts one finished pass.
    pub fn count_pass(&self) {
        self.passes.fetch_add(1, Ordering::AcqRel);
    }
}

/// What one pass deleted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct PruneReport {
    pub revocations: u64,
    pub refresh_tokens: u64,
    pub refresh_families: u64,
    pub throttle: u64,
    pub audit: u64,
    pub authorization_codes: u64,
    pub browser_sessions: u64,
    pub device_codes: u64,
    pub webauthn_ceremonies: u64,
    pub seen_jtis: u64,
    /// Expired entries dropped from this node's in-memory deny-list.
    pub deny_list_memory: u64,
}

impl PruneReport {
    /// Database rows deleted, every kind together.
    pub fn rows(&self) -> u64 {
        self.revocations
            + self.refresh_tokens
            + self.refresh_families
            + self.throttle
            + self.audit
            + self.authorization_codes
            + self.browser_sessions
            + self.device_codes
            + self.webauthn_ceremonies
            + self.seen_jtis
    }
}

/// How long each kind of row matters, from the configuration.
#[derive(Debug, Clone, Copy)]
pub struct Ages {
    /// The longest an access token lives.
    pub access_token_ttl: Duration,
    /// How long a spent refresh token's retry is answered again.
    pub refresh_reuse_grace: Duration,
    /// The login-throttle counting window.
    pub throttle_window: Duration,
    /// How long audit events are kept; zero keeps them forever.
    pub audit_retention: Duration,
}

/// The instants before which each kind is dead.
#[derive(Debug, Clone, Copy)]
pub struct Cutoffs {
    revocations: i64,
    refresh: i64,
    throttle_window: i64,
    now: i64,
    /// `None`: audit events are kept forever.
    audit: Option<i64>,
}

impl Cutoffs {
    pub fn at(ages: &Ages, now: i64) -> Cutoffs {
        let secs = |d: Duration| i64::try_from(d.as_secs()).unwrap_or(i64::MAX);
        Cutoffs {
            revocations: now - CLOCK_SKEW_LEEWAY,
            // The last access token of a family was issued no later than its
            // last refresh (or its revocation); once that token has expired
            // too, nothing the family could revoke or refresh is left.
            refresh: now
                - secs(ages.access_token_ttl)
                - secs(ages.refresh_reuse_grace)
                - CLOCK_SKEW_LEEWAY,
            throttle_window: now - secs(ages.throttle_window),
            now,
            audit: (!ages.audit_retention.is_zero())
                .then(|| now.saturating_sub(secs(ages.audit_retention))),
        }
    }
}

/// Deletes every dead row, batch by batch, and counts them in the metrics.
/// The first failing statement ends the pass with its error (what was
/// deleted before it stays deleted and counted).
pub async fn prune_store(store: &dyn Store, cut: Cutoffs) -> StoreResult<PruneReport> {
    let revocations = batches("revocation", || {
        store.prune_revocations(cut.revocations, BATCH)
    })
    .await?;
    // Tokens first: a family is deleted only once it has none left.
    let refresh_tokens = batches("refresh_token", || {
        store.prune_refresh_tokens(cut.refresh, BATCH)
    })
    .await?;
    let refresh_families = batches("refresh_family", || {
        store.prune_refresh_families(cut.refresh, BATCH)
    })
    .await?;
    let throttle = batches("throttle", || {
        store.throttle_prune(cut.throttle_window, cut.now, BATCH)
    })
    .await?;
    // A spent code stays as long as what it issued may live, so that a
    // replay can still revoke it (RFC 6749 §4.1.2).
    let authorization_codes = batches("authorization_code", || {
        store.prune_authorization_codes(cut.refresh, BATCH)
    })
    .await?;
    let browser_sessions = batches("browser_session", || {
        store.prune_browser_sessions(cut.revocations, BATCH)
    })
    .await?;
    // An expired device code answers expired_token until it is pruned; a
    // device polls at most its ten minutes, so a cut-off an access token
    // lifetime later leaves it that answer meanwhile.
    let device_codes = batches("device_code", || {
        store.prune_device_codes(cut.refresh, BATCH)
    })
    .await?;
    let webauthn_ceremonies = batches("webauthn_ceremony", || {
        store.prune_ceremonies(cut.revocations, BATCH)
    })
    .await?;
    let seen_jtis = batches("seen_jti", || store.prune_seen_jtis(cut.revocations, BATCH)).await?;
    let audit = match cut.audit {
        Some(before) => batches("audit", || store.prune_audit(before, BATCH)).await?,
        None => 0,
    };
    Ok(PruneReport {
        revocations,
        refresh_tokens,
        refresh_families,
        throttle,
        audit,
        authorization_codes,
        browser_sessions,
        device_codes,
        webauthn_ceremonies,
        seen_jtis,
        deny_list_memory: 0,
    })
}

/// Repeats `delete` until a batch comes back short, counting as it goes.
async fn batches<F, Fut>(kind: &'static str, mut delete: F) -> StoreResult<u64>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = StoreResult<u64>>,
{
    let mut total = 0;
    loop {
        let deleted = delete().await?;
        metrics::counter!(crate::metrics::PRUNED_ROWS, "kind" => kind).increment(deleted);
        total += deleted;
        if deleted < BATCH as u64 {
            return Ok(total);
        }
        // Let requests waiting on the database in between.
        tokio::task::yield_now().await;
    }
}
