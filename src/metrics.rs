//! Prometheus metrics: names in one place and the process-wide recorder. A
//! leaf: everything may count through it, it depends on nothing of Sigil's.
//!
//! Counters are incremented where things happen (through the `metrics`
//! facade, which costs an atomic add); gauges that describe state (keys,
//! queues, pools, the database, the deny-list) are set from live state just
//! before each scrape, by the `/metrics` handler (`http::health`).

use std::sync::OnceLock;
use std::time::Duration;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

pub const HTTP_REQUESTS: &str = "sigil_http_requests_total";
pub const HTTP_DURATION: &str = "sigil_http_request_duration_seconds";
pub const TOKENS_ISSUED: &str = "sigil_tokens_issued_total";
pub const LOGIN_FAILURES: &str = "sigil_login_failures_total";
pub const LOGIN_THROTTLED: &str = "sigil_login_throttled_total";
pub const REFRESH_REUSE: &str = "sigil_refresh_reuse_detected_total";
pub const REVOCATIONS: &str = "sigil_revocations_total";
pub const KEYS: &str = "sigil_keys";
pub const KEY_NEXT_TRANSITION: &str = "sigil_key_next_transition_seconds";
pub const ARGON2_QUEUE: &str = "sigil_argon2_queue_depth";
pub const DB_POOL: &str = "sigil_db_pool_connections";
pub const DENYLIST: &str = "sigil_denylist_entries";
pub const AUDIT_DROPPED: &str = "sigil_audit_dropped_total";
pub const PRUNED_ROWS: &str = "sigil_pruned_rows_total";
pub const PRUNE_RUNS: &str = "sigil_prune_runs_total";
pub const PRUNE_FAILURES: &str = "sigil_prune_failures_total";
pub const PRUNE_DURATION: &str = "sigil_prune_duration_seconds";
pub const DATABASE_UP: &str = "sigil_database_up";
pub const REPLAY_EVICTIONS: &str = "sigil_replay_evictions_total";

static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// How often histogram samples are folded into their buckets. The recorder
/// keeps every sample recorded since the last fold, so without this a
/// server nobody scrapes would grow by every request it serves.
const UPKEEP_EVERY: Duration = Duration::from_secs(5);

/// The process-wide recorder, installed on first use. `None` if another
/// recorder was installed first (metrics are then not served).
pub fn handle() -> Option<&'static PrometheusHandle> {
    HANDLE
        .get_or_init(|| {
            let buckets = [
                0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
            ];
            let builder = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Full(HTTP_DURATION.to_string()), &buckets)
                .ok()?;
            let recorder = builder.build_recorder();
            let handle = recorder.handle();
            metrics::set_global_recorder(recorder).ok()?;
            describe();
            let upkeep = handle.clone();
            // What `PrometheusBuilder::install` would run, on a plain
            // thread: the recorder is installed before any runtime exists.
            let _ = std::thread::Builder::new()
                .name("sigil-metrics".into())
                .spawn(move || {
                    loop {
                        std::thread::sleep(UPKEEP_EVERY);
                        upkeep.run_upkeep();
                    }
                });
            Some(handle)
        })
        .as_ref()
}

fn describe() {
    use metrics::{describe_counter, describe_gauge, describe_histogram};
    describe_counter!(HTTP_REQUESTS, "HTTP requests by route, method and status");
    describe_histogram!(
        HTTP_DURATION,
        metrics::Unit::Seconds,
        "HTTP request latency by route, method and status"
    );
    describe_counter!(
        TOKENS_ISSUED,
        "Access tokens issued by grant type and signing algorithm"
    );
    describe_counter!(LOGIN_FAILURES, "Failed token requests by reason");
    describe_counter!(
        LOGIN_THROTTLED,
        "Login attempts refused because a lockout was in force, by scope (pair or account)"
    );
    describe_counter!(
        REFRESH_REUSE,
        "Spent refresh tokens presented again (their families were revoked)"
    );
    describe_counter!(
        REVOCATIONS,
        "Revocations by kind (token, session, user, key)"
    );
    describe_gauge!(KEYS, "Signing keys by state");
    describe_gauge!(
        KEY_NEXT_TRANSITION,
        metrics::Unit::Seconds,
        "Seconds until the next scheduled key transition"
    );
    describe_gauge!(ARGON2_QUEUE, "Password hashes waiting for a hashing slot");
    describe_gauge!(DB_POOL, "Database pool connections by state");
    describe_gauge!(DENYLIST, "Deny-list entries held in memory");
    describe_gauge!(
        DATABASE_UP,
        "1 while the database health probe succeeds, 0 while requests needing it get 503 (Postgres)"
    );
    describe_counter!(
        AUDIT_DROPPED,
        "Audit events dropped because the audit queue was full"
    );
    describe_counter!(
        PRUNED_ROWS,
        "Rows deleted by pruning, by kind (revocation, refresh_token, refresh_family, throttle, audit)"
    );
    describe_counter!(PRUNE_RUNS, "Pruning passes started");
    describe_counter!(
        PRUNE_FAILURES,
        "Pruning passes that failed (the database was unavailable); retried at the next interval"
    );
    describe_histogram!(
        PRUNE_DURATION,
        metrics::Unit::Seconds,
        "Duration of pruning passes"
    );
}
