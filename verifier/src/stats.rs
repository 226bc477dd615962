//! A snapshot of a verifier's health, for metrics and health checks.

use crate::fail_mode::FailMode;

/// Counters and ages from [`Verifier::stats`](crate::Verifier::stats).
/// Counters only grow; they are cheap to read and meant to be exported as
/// metrics. Serializes to JSON for a health endpoint.
///
/// ```no_run
/// # fn run(verifier: &sigil_verify::Verifier) {
/// let stats = verifier.stats();
/// println!("{}", serde_json::to_string(&stats).unwrap());
/// # }
/// ```
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[non_exhaustive]
pub struct Stats {
    /// The configured fail mode.
    pub fail_mode: FailMode,
    /// Whether the staleness bound has passed, so the fail mode applies now.
    pub stale: bool,
    /// What is stale: `"revocation_feed"` or `"jwks"`.
    pub stale_source: Option<&'static str>,
    /// Keys in the cached set.
    pub keys: usize,
    /// Seconds since Sigil last confirmed the key set (`None` for a static set).
    pub jwks_age_seconds: Option<f64>,
    /// JWKS requests made (background refreshes and unknown-`kid` fetches).
    pub jwks_fetches: u64,
    /// Of those, answered `304 Not Modified`.
    pub jwks_not_modified: u64,
    /// Of those, failed.
    pub jwks_errors: u64,
    /// JWKS fetches made because a token named a `kid` not cached.
    pub unknown_kid_fetches: u64,
    /// Tokens refused because their `kid` stayed unknown.
    pub unknown_kid_rejections: u64,
    /// Whether the revocation feed is configured.
    pub revocation_feed: bool,
    /// Seconds since the last successful poll of the feed.
    pub feed_age_seconds: Option<f64>,
    /// Feed polls made.
    pub feed_polls: u64,
    /// Of those, failed.
    pub feed_errors: u64,
    /// Revocation entries held (each until its tokens expire).
    pub revocations: usize,
    /// Tokens accepted although the staleness bound had passed (fail open).
    pub fail_open_accepts: u64,
    /// Tokens refused because the staleness bound had passed (fail closed).
    pub fail_closed_rejections: u64,
}
