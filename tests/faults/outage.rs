//! Postgres going away under load, and a pool starved by locked tables.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{DecodingKey, Validation};
use reqwest::StatusCode;
use serde_json::Value;
use sqlx::Connection;

use crate::first_seconds;
use crate::harness::{
    Api, ISSUER, Node, assert_unavailable, eventually, field, json_of, metric, provision, scale,
};
use crate::load::{self, Ledger, Shared, percentile};
use crate::pg::PgCluster;

/// The pool's acquire timeout: the longest any request may wait for the
/// database. "Fast" means well inside it; the figures go to the report.
const BOUND: Duration = Duration::from_secs(5);
/// How long after the stop begins its first seconds are sampled.
const FIRST_SECONDS: Duration = Duration::from_secs(2);

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_postgres_outage_gives_fast_503s_spares_what_needs_no_database_and_heals_without_restart()
{
    let Some(pg) = PgCluster::start() else { return };
    let dir = tempfile::tempdir().unwrap();
    provision(dir.path(), &pg.url());
    let node = Node::start(dir.path(), &pg.url(), &[]).await;
    let pid = node.pid();

    // State acknowledged before the outage.
    assert_eq!(
        node.register("before", "password-before")
            .await
            .unwrap()
            .status(),
        201
    );
    assert_eq!(
        node.register("sampler", "password-sampler")
            .await
            .unwrap()
            .status(),
        201
    );
    let session = json_of(node.login("before", "password-before").await.unwrap()).await;
    let access = field(&session, "access_token");
    let revoked = field(
        &json_of(node.login("before", "password-before").await.unwrap()).await,
        "access_token",
    );
    assert_eq!(node.revoke(&revoked).await.unwrap().status(), 200);
    // Nothing has fetched the metadata from this node yet: during the
    // outage it must still be served, from memory.

    let ledger: Shared = Arc::new(std::sync::Mutex::new(Ledger::default()));
    let stop = Arc::new(AtomicBool::new(false));
    let load = tokio::spawn(load::run(
        node.api(),
        Arc::clone(&ledger),
        4,
        "o".into(),
        Arc::clone(&stop),
    ));
    tokio::time::sleep(Duration::from_secs(1)).await;

    let mut fast = Vec::new();
    let mut first_seconds_report = Vec::new();
    let outages = scale().outages;
    for outage in 0..outages {
        // A clean shutdown first, then a crash of the server.
        let mode = if outage % 2 == 0 { "fast" } else { "immediate" };
        // The first seconds, from the moment the stop begins: requests are
        // in flight when the server goes.
        let sampler = tokio::spawn(first_seconds::sample(
            node.api(),
            // Its own user: `/users/me` of "before" must still miss the
            // profile cache when `needing_database` asks below.
            "sampler",
            "password-sampler",
            format!("fs{outage}"),
            FIRST_SECONDS,
        ));
        tokio::time::sleep(Duration::from_millis(100)).await;
        tokio::task::block_in_place(|| pg.down(mode));
        let down_since = Instant::now();
        let first = sampler.await.unwrap();
        assert!(first.wrong.is_empty(), "{mode}: {:?}", first.wrong);
        assert!(
            first.spared_failures.is_empty(),
            "{mode}: the JWKS and metadata answer 200 throughout: {:?}",
            first.spared_failures
        );
        assert!(!first.unavailable.is_empty(), "{mode}: 503s were measured");
        let (p99, max) = first.p99_and_max();
        // About database_outage_wait (100 ms) and a refused connection; a
        // second of slack for a loaded machine, far below the pool's 5 s.
        assert!(
            max < Duration::from_millis(1100),
            "{mode}: the first 503s of an outage come within database_outage_wait: {max:?}"
        );
        first_seconds_report.push(format!(
            "{mode}: {} 503s (p99 {p99:?}, max {max:?}), {} answered otherwise",
            first.unavailable.len(),
            first.answered
        ));
        assert!(
            eventually(Duration::from_secs(10), async || not_ready_for_database(
                &node
            )
            .await)
            .await,
            "/readyz reports the database down"
        );
        for (what, response) in needing_database(&node.api(), &session, &mut fast).await {
            assert_unavailable(response, what).await;
        }
        spared(&node, &access).await;
        // Keep it down for a few seconds in all.
        let left = Duration::from_secs(4).saturating_sub(down_since.elapsed());
        tokio::time::sleep(left).await;

        pg.up();
        assert!(
            eventually(Duration::from_secs(20), async || {
                matches!(node.login("before", "password-before").await, Ok(r) if r.status() == StatusCode::OK)
            })
            .await,
            "logins work again after the outage ({mode}), without a restart"
        );
        assert!(
            node.wait_ready(Duration::from_secs(10)).await,
            "ready again"
        );
        assert_eq!(node.pid(), pid, "the same process");
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    stop.store(true, Ordering::Relaxed);
    load.await.unwrap();

    // Nothing acknowledged before or during the outages was lost.
    let l = std::mem::take(&mut *ledger.lock().unwrap());
    assert!(
        l.server_errors.is_empty(),
        "no 5xx but 503: {:?}",
        l.server_errors
    );
    for (username, password) in &l.users {
        let response = node.login(username, password).await.unwrap();
        assert_eq!(
            response.status(),
            StatusCode::OK,
            "{username} registered, so can log in"
        );
    }
    for token in l.revoked_access.iter().chain([&revoked]) {
        assert_eq!(node.me(token).await.unwrap().status(), 401, "still revoked");
    }
    assert_eq!(node.me(&access).await.unwrap().status(), 200);
    // Audit events queued when the database went away were kept and
    // written once it was back.
    assert_eq!(
        metric(&node, "sigil_audit_dropped_total").await,
        0.0,
        "no audit event dropped"
    );
    let slowest = fast.iter().max().copied().unwrap_or_default();
    let mut latencies = l.latencies.clone();
    println!(
        "FAULTS outage Postgres: {outages} outage(s); 503s while down answered in at most {slowest:?}; \
         load: {} answered ({} 503, {} cut), {} registrations checked, p99 {:?}; \
         the first {FIRST_SECONDS:?} from each stop: {}",
        l.answered,
        l.unavailable,
        l.cut,
        l.users.len(),
        percentile(&mut latencies, 99.0),
        first_seconds_report.join("; ")
    );
}

async fn not_ready_for_database(node: &Node) -> bool {
    let Ok(response) = node.get("/readyz").await else {
        return false;
    };
    if response.status() != StatusCode::SERVICE_UNAVAILABLE {
        return false;
    }
    let body: Value = response.json().await.unwrap_or_default();
    body["checks"]["database"] == false
}

/// One request of each kind that needs the database, timed.
async fn needing_database(
    api: &Api,
    session: &Value,
    times: &mut Vec<Duration>,
) -> Vec<(&'static str, reqwest::Response)> {
    let mut out = Vec::new();
    let started = Instant::now();
    out.push((
        "password grant",
        api.login("before", "password-before").await.unwrap(),
    ));
    times.push(started.elapsed());
    let started = Instant::now();
    let refresh = field(session, "refresh_token");
    out.push(("refresh grant", api.refresh(&refresh).await.unwrap()));
    times.push(started.elapsed());
    let started = Instant::now();
    out.push((
        "registration",
        api.register("during", "password-during").await.unwrap(),
    ));
    times.push(started.elapsed());
    let access = field(session, "access_token");
    let started = Instant::now();
    out.push(("/users/me", api.me(&access).await.unwrap()));
    times.push(started.elapsed());
    for t in times.iter() {
        assert!(
            *t < BOUND,
            "a 503 within the acquire timeout, not a hang: {t:?}"
        );
    }
    out
}

/// What needs no database keeps working: the JWKS, the metadata, liveness,
/// and verifying an access token's signature as a resource service does.
async fn spared(node: &Node, access: &str) {
    for path in [
        "/.well-known/jwks.json",
        "/.well-known/oauth-authorization-server",
        "/healthz",
    ] {
        let response = node.get(path).await.unwrap();
        assert_eq!(
            response.status(),
            StatusCode::OK,
            "{path} while the database is down"
        );
    }
    let jwks: JwkSet = node
        .get("/.well-known/jwks.json")
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let kid = jsonwebtoken::decode_header(access).unwrap().kid.unwrap();
    let jwk = jwks.find(&kid).expect("the token's key is published");
    let alg = jsonwebtoken::decode_header(access).unwrap().alg;
    let mut validation = Validation::new(alg);
    validation.set_issuer(&[ISSUER]);
    validation.validate_aud = false;
    jsonwebtoken::decode::<Value>(access, &DecodingKey::from_jwk(jwk).unwrap(), &validation)
        .expect("a token issued before the outage verifies against the JWKS");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_pool_starved_by_a_locked_table_answers_bounded_503s_and_recovers() {
    let Some(pg) = PgCluster::start() else { return };
    let dir = tempfile::tempdir().unwrap();
    provision(dir.path(), &pg.url());
    let node = Node::start(
        dir.path(),
        &pg.url(),
        &[
            ("SIGIL_DATABASE_MAX_CONNECTIONS", "2"),
            ("SIGIL_DATABASE_STATEMENT_TIMEOUT", "2s"),
        ],
    )
    .await;
    assert_eq!(
        node.register("alice", "password-alice")
            .await
            .unwrap()
            .status(),
        201
    );

    // Another client holds the users table: every query touching it waits.
    let mut locker = sqlx::PgConnection::connect(&pg.url()).await.unwrap();
    let mut tx = locker.begin().await.unwrap();
    sqlx::query("LOCK TABLE users IN ACCESS EXCLUSIVE MODE")
        .execute(&mut *tx)
        .await
        .unwrap();

    let started = Instant::now();
    let requests = (0..12).map(|i| {
        let api = node.api();
        async move {
            let t = Instant::now();
            let response = if i % 2 == 0 {
                api.login("alice", "password-alice").await
            } else {
                api.register(&format!("starved{i}"), "password-starved")
                    .await
            };
            (response.unwrap(), t.elapsed())
        }
    });
    let (results, jwks) = tokio::join!(futures::future::join_all(requests), async {
        tokio::time::sleep(Duration::from_millis(500)).await;
        node.get("/.well-known/jwks.json").await.unwrap().status()
    });
    assert_eq!(
        jwks,
        StatusCode::OK,
        "the JWKS does not wait for the database"
    );
    let mut slowest = Duration::ZERO;
    for (response, elapsed) in results {
        slowest = slowest.max(elapsed);
        assert_unavailable(response, "a request starved of the database").await;
    }
    // Each waited at most the acquire timeout plus the statement timeout,
    // never until the 30 s request timeout.
    assert!(
        slowest < Duration::from_secs(20),
        "bounded waits: {slowest:?}"
    );
    let all = started.elapsed();

    tx.rollback().await.unwrap();
    assert!(
        eventually(Duration::from_secs(10), async || {
            matches!(node.login("alice", "password-alice").await, Ok(r) if r.status() == StatusCode::OK)
        })
        .await,
        "logins work once the lock is gone"
    );
    println!(
        "FAULTS pool starvation Postgres: 12 requests against a locked table with 2 connections and a 2 s \
         statement timeout: all 503 with Retry-After, slowest {slowest:?}, all done in {all:?}"
    );
}
