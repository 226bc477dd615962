//! Pruning (issue #9): a pass deletes what can no longer matter and keeps
//! everything still in force, and its metrics count exactly what it deleted.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::{Backend, NowSecs, TestApp, json, row_counts, scalar};
use crate::on_both_backends;

const HOUR: i64 = 3600;
const DAY: i64 = 24 * HOUR;

/// The metric tests read process-wide counters: every pass these tests run
/// holds this, so that one test's pass never counts in another's reading.
static METRICS: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

async fn app(backend: Backend) -> Option<TestApp> {
    TestApp::spawn_with(backend, |config| {
        config.refresh_idle_ttl = Duration::from_secs(2 * DAY as u64);
        config.audit_retention = Duration::from_secs(DAY as u64);
    })
    .await
}

on_both_backends!(spawn = super::app; a_pass_deletes_only_what_can_no_longer_matter);

fn jti(access_token: &str) -> String {
    crate::helpers::claims_of(access_token)["jti"]
        .as_str()
        .expect("jti")
        .to_string()
}

fn token_field(body: &Value, field: &str) -> String {
    body[field].as_str().expect(field).to_string()
}

/// Waits until every audit event recorded so far is in the database (the
/// writer stores them in order, in the background).
async fn audit_flushed(app: &TestApp) {
    let marker = format!("test-{}", uuid::Uuid::new_v4());
    app.sigil.audit.record(
        app.clock.now_secs(),
        "test",
        "test.marker",
        Some(&marker),
        serde_json::json!({}),
    );
    for _ in 0..500 {
        let recent = app.sigil.store.recent_audit(5).await.unwrap();
        if recent.iter().any(|e| e.target.as_deref() == Some(&marker)) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("the audit writer never stored the marker");
}

/// The value of one counter series in the process-wide metrics.
fn counter(series: &str) -> u64 {
    let text = sigil::metrics::handle().expect("recorder").render();
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.trim().parse::<f64>().ok())
        .map_or(0, |v| v as u64)
}

const KINDS: [&str; 5] = [
    "revocation",
    "refresh_token",
    "refresh_family",
    "throttle",
    "audit",
];

fn pruned_counters() -> Vec<u64> {
    KINDS
        .iter()
        .map(|kind| counter(&format!("sigil_pruned_rows_total{{kind=\"{kind}\"}}")))
        .collect()
}

/// Waits for the node's own first pass (at start, in the background), so
/// that it cannot run later, at a time the test has moved on to.
async fn first_pass_done(app: &TestApp) {
    for _ in 0..1000 {
        if app.sigil.pruning.passes() > 0 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("the first pruning pass never ran");
}

async fn a_pass_deletes_only_what_can_no_longer_matter(app: TestApp) {
    first_pass_done(&app).await;
    app.user("alice").await;
    let web = app.confidential_client("web").await;
    let t0 = app.clock.now_secs();

    // Session 1 stays live: logged in, refreshed now and in 36 hours.
    let live = app.login(&web, "alice").await;
    let live_first = token_field(&live, "refresh_token");
    let refreshed = json(app.refresh(&web, &live_first, None).await).await;
    let live_spent = token_field(&refreshed, "refresh_token");
    // Session 2 is logged out (its family revoked) now.
    let logged_out = app.login(&web, "alice").await;
    let response = app
        .revoke(&web, &token_field(&logged_out, "refresh_token"))
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    // Session 3 is never used again: it idles out after two days.
    let idle = app.login(&web, "alice").await;
    // One access token revoked now: its entry expires with it.
    let revoked_early = token_field(&app.login(&web, "alice").await, "access_token");
    assert_eq!(
        app.revoke(&web, &revoked_early).await.status(),
        StatusCode::OK
    );
    // A failed login: throttle counters whose window will be over.
    let failed = app.password_grant(&web, "alice", "not the password").await;
    assert_eq!(failed.status(), StatusCode::BAD_REQUEST);

    app.clock.set(t0 + 36 * HOUR);
    let rotated = json(app.refresh(&web, &live_spent, None).await).await;
    let live_current = token_field(&rotated, "refresh_token");

    app.clock.set(t0 + 2 * DAY + HOUR);
    let t2 = app.clock.now_secs();
    // Still in force at t2: a revoked access token (its login clears
    // alice's address counter; her account counter is from t0) and fresh
    // counters of a failure against another name.
    let revoked_late = token_field(&app.login(&web, "alice").await, "access_token");
    assert_eq!(
        app.revoke(&web, &revoked_late).await.status(),
        StatusCode::OK
    );
    let failed = app.password_grant(&web, "bob", "not the password").await;
    assert_eq!(failed.status(), StatusCode::BAD_REQUEST);
    audit_flushed(&app).await;

    let url = &app.database_url;
    let before = row_counts(url).await;
    let audit_kept = scalar(
        url,
        &format!("SELECT count(*) FROM audit_events WHERE at >= {}", t2 - DAY),
    )
    .await;
    assert!(
        audit_kept < before["audit_events"],
        "some audit events are old enough to go"
    );
    assert!(
        app.sigil.deny_list.len() >= 3,
        "the deny-list holds all three"
    );

    let guard = METRICS.lock().await;
    let counters_before = pruned_counters();
    let report = sigil::service::background::prune_once(&app.sigil)
        .await
        .expect("a pass");
    let counters_after = pruned_counters();
    drop(guard);
    let after = row_counts(url).await;

    // What went: the three sessions that can no longer matter (logged out,
    // idle, and the one whose access token was revoked, idle too) with
    // their one token each, the two expired deny-list entries, the old
    // throttle counter and the old audit events; the report and the
    // metrics agree with the rows that left the tables. The live session
    // keeps its spent tokens.
    assert_eq!((report.refresh_families, report.refresh_tokens), (3, 3));
    assert_eq!(report.revocations, 2);
    let gone = |table: &str| (before[table] - after[table]) as u64;
    assert_eq!(report.refresh_families, gone("refresh_families"));
    assert_eq!(report.refresh_tokens, gone("refresh_tokens"));
    assert_eq!(report.revocations, gone("revocations"));
    assert_eq!(report.throttle, gone("login_throttle"));
    assert!(report.throttle >= 1, "the old counters went");
    assert!(after["login_throttle"] >= 1, "the fresh counters stayed");
    assert_eq!(report.audit, gone("audit_events"));
    assert_eq!(
        after["audit_events"], audit_kept,
        "exactly the old events went"
    );
    let expected = [
        report.revocations,
        report.refresh_tokens,
        report.refresh_families,
        report.throttle,
        report.audit,
    ];
    let counted: Vec<u64> = counters_after
        .iter()
        .zip(&counters_before)
        .map(|(a, b)| a - b)
        .collect();
    assert_eq!(counted, expected, "sigil_pruned_rows_total by {KINDS:?}");
    assert_eq!(
        (before["users"], before["clients"], before["signing_keys"]),
        (after["users"], after["clients"], after["signing_keys"]),
        "nothing else is touched"
    );

    // Memory holds only the entry still in force, as does the feed.
    let feed = app.feed(&web, "0").await;
    let entries = feed["entries"].as_array().unwrap();
    assert_eq!(entries.len(), 1, "{feed}");
    assert_eq!(entries[0]["jti"], jti(&revoked_late));
    assert_eq!(app.sigil.deny_list.len(), 1);
    assert_eq!(report.deny_list_memory, 2);

    // What stayed still works: the revoked token is still refused...
    assert_eq!(
        app.me(&revoked_late).await.status(),
        StatusCode::UNAUTHORIZED
    );
    // ...the live session still rotates...
    let next = app.refresh(&web, &live_current, None).await;
    assert_eq!(next.status(), StatusCode::OK);
    let next = token_field(&json(next).await, "refresh_token");
    // ...the idle one is refused as before...
    let idle_again = app
        .refresh(&web, &token_field(&idle, "refresh_token"), None)
        .await;
    assert_eq!(idle_again.status(), StatusCode::BAD_REQUEST);
    // ...and a spent token of the live session is still a replay, which
    // still revokes its family.
    let replay = app.refresh(&web, &live_spent, None).await;
    assert_eq!(replay.status(), StatusCode::BAD_REQUEST);
    assert_eq!(json(replay).await["error"], "invalid_grant");
    let after_replay = app.refresh(&web, &next, None).await;
    assert_eq!(after_replay.status(), StatusCode::BAD_REQUEST);
    assert_eq!(
        json(after_replay).await["error_description"],
        "the refresh token is revoked"
    );

    // A second pass right away finds nothing more.
    let again = sigil::service::background::prune_once(&app.sigil)
        .await
        .unwrap();
    assert_eq!(again.rows(), 0, "{again:?}");
}

/// A pass that meets an unavailable database fails, is counted as failed,
/// and the next one succeeds: nothing is lost by a failure.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pass_against_a_locked_database_fails_and_the_next_one_succeeds() {
    use sqlx::{Connection, Executor};
    let app = TestApp::spawn(Backend::Sqlite).await.unwrap();
    first_pass_done(&app).await;
    app.user("alice").await;
    let web = app.confidential_client("web").await;
    let token = token_field(&app.login(&web, "alice").await, "access_token");
    assert_eq!(app.revoke(&web, &token).await.status(), StatusCode::OK);
    app.clock.advance(DAY);

    // Another process holds SQLite's write lock for longer than Sigil waits.
    let mut locker = sqlx::SqliteConnection::connect(&app.database_url)
        .await
        .unwrap();
    locker.execute("BEGIN EXCLUSIVE").await.unwrap();
    let guard = METRICS.lock().await;
    let failures = counter("sigil_prune_failures_total");
    let failed = sigil::service::background::prune_once(&app.sigil).await;
    assert!(
        matches!(failed, Err(sigil::store::StoreError::Unavailable(_))),
        "{failed:?}"
    );
    assert_eq!(counter("sigil_prune_failures_total"), failures + 1);
    locker.execute("ROLLBACK").await.unwrap();

    let report = sigil::service::background::prune_once(&app.sigil)
        .await
        .expect("the next pass works");
    drop(guard);
    assert_eq!(report.revocations, 1);
    assert_eq!(app.feed(&web, "0").await["entries"], serde_json::json!([]));
}

/// `sigil prune` deletes at once what a pass would, and says how much.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigil_prune_on_the_command_line_deletes_and_reports_what_is_dead() {
    let app = TestApp::spawn(Backend::Sqlite).await.unwrap();
    first_pass_done(&app).await;
    app.user("alice").await;
    let web = app.confidential_client("web").await;
    let live = token_field(&app.login(&web, "alice").await, "access_token");
    assert_eq!(app.revoke(&web, &live).await.status(), StatusCode::OK);
    audit_flushed(&app).await;
    // Rows from long ago, as a node that never pruned would have left them.
    crate::helpers::execute_sql(
        &app.database_url,
        "INSERT INTO revocations (kind, value, expires_at, created_at) VALUES ('token', 'old-jti', 1000, 100); \
         INSERT INTO audit_events (at, actor, action, detail) VALUES (1000, 'cli', 'user.created', '{}')",
    )
    .await;
    let audit_before = scalar(&app.database_url, "SELECT count(*) FROM audit_events").await;

    let out = std::process::Command::new(env!("CARGO_BIN_EXE_sigil"))
        .args(["prune", "--json"])
        .current_dir(app.dir.path())
        .env_clear()
        .env("SIGIL_DATABASE_URL", &app.database_url)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["revocations"], 1, "{report}");
    assert_eq!(report["audit"], 1, "{report}");
    assert_eq!(
        scalar(&app.database_url, "SELECT count(*) FROM audit_events").await,
        audit_before - 1
    );
    // The revocation still in force stays, and still holds.
    let feed = app.feed(&web, "0").await;
    assert_eq!(feed["entries"][0]["jti"], jti(&live), "{feed}");
    assert_eq!(app.me(&live).await.status(), StatusCode::UNAUTHORIZED);
}
