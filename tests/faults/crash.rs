//! Crash safety: kill -9 at arbitrary moments under mixed load, restart on
//! the same database, and check that nothing acknowledged was lost and
//! nothing spent came back.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use reqwest::StatusCode;
use sqlx::Connection;

use crate::harness::{Node, json_of, provision, scale};
use crate::load::{self, Ledger, Shared, percentile};
use crate::pg::PgCluster;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sqlite_kill9_under_load_loses_nothing_acknowledged_and_resurrects_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/sigil.db", dir.path().display());
    provision(dir.path(), &url);
    let users = kill_rounds_then_verify(dir.path(), &url).await;

    let mut db = sqlx::SqliteConnection::connect(&url).await.unwrap();
    let integrity: String = sqlx::query_scalar("PRAGMA integrity_check")
        .fetch_one(&mut db)
        .await
        .unwrap();
    assert_eq!(integrity, "ok", "the SQLite file is intact");
    let stored: i64 = sqlx::query_scalar("SELECT count(*) FROM users")
        .fetch_one(&mut db)
        .await
        .unwrap();
    assert!(
        stored >= users as i64,
        "{stored} rows for {users} acknowledged registrations"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_kill9_under_load_loses_nothing_acknowledged_and_resurrects_nothing() {
    let Some(pg) = PgCluster::start() else { return };
    let dir = tempfile::tempdir().unwrap();
    provision(dir.path(), &pg.url());
    let users = kill_rounds_then_verify(dir.path(), &pg.url()).await;

    let mut db = sqlx::PgConnection::connect(&pg.url()).await.unwrap();
    let stored: i64 = sqlx::query_scalar("SELECT count(*) FROM users")
        .fetch_one(&mut db)
        .await
        .unwrap();
    assert!(
        stored >= users as i64,
        "{stored} rows for {users} acknowledged registrations"
    );
}

/// Kills the node `kill_rounds` times under load, restarting it on the same
/// database each time, then checks the ledger against the API. Returns the
/// number of acknowledged registrations.
async fn kill_rounds_then_verify(dir: &Path, url: &str) -> usize {
    let rounds = scale().kill_rounds;
    let ledger: Shared = Arc::new(std::sync::Mutex::new(Ledger::default()));
    let mut node = Node::start(dir, url, &[]).await;
    for round in 0..rounds {
        let stop = Arc::new(AtomicBool::new(false));
        let load = tokio::spawn(load::run(
            node.api(),
            Arc::clone(&ledger),
            8,
            format!("r{round}"),
            Arc::clone(&stop),
        ));
        // Somewhere between 0.3 s and 1.5 s into the load, never the same.
        let delay = 300 + (round as u64 * 7_919 % 1_200);
        tokio::time::sleep(Duration::from_millis(delay)).await;
        node.kill9();
        stop.store(true, Ordering::Relaxed);
        load.await.unwrap();
        // A half-written row must not break start-up: restart panics with
        // the log if the node does not come up.
        node.restart().await;
        assert!(
            node.wait_ready(Duration::from_secs(30)).await,
            "not ready after kill {round}:\n{}",
            node.log_text()
        );
    }
    let report = verify(&node, &ledger).await;
    println!("FAULTS crash {}: {rounds} kills; {report}", backend(url));
    ledger.lock().unwrap().users.len()
}

/// Checks every acknowledged outcome through the API. Order matters: a
/// chain's live token is exercised before its spent ones, whose reuse then
/// revokes the family.
async fn verify(node: &Node, ledger: &Shared) -> String {
    let l = std::mem::take(&mut *ledger.lock().unwrap());
    assert!(
        l.server_errors.is_empty(),
        "5xx answers: {:?}",
        l.server_errors
    );
    assert!(
        l.lost_rotations.is_empty(),
        "refresh tokens that should have worked were refused: {:?}",
        l.lost_rotations
    );
    assert!(
        !l.users.is_empty() && !l.chains.is_empty(),
        "the load did run"
    );

    for (username, password) in &l.users {
        let response = node.login(username, password).await.unwrap();
        assert_eq!(
            response.status(),
            StatusCode::OK,
            "acknowledged user {username} can log in"
        );
    }
    for access in &l.revoked_access {
        let response = node.me(access).await.unwrap();
        assert_eq!(
            response.status(),
            StatusCode::UNAUTHORIZED,
            "a revoked access token stays revoked"
        );
    }
    let (mut live, mut revoked, mut spent) = (0, 0, 0);
    for (i, chain) in l.chains.iter().enumerate() {
        if chain.revoked {
            revoked += 1;
            let response = node.refresh(chain.latest()).await.unwrap();
            assert_invalid_grant(
                response,
                &format!("chain {i}: revoked session's refresh token"),
            )
            .await;
            let response = node.me(&chain.access).await.unwrap();
            assert_eq!(
                response.status(),
                StatusCode::UNAUTHORIZED,
                "chain {i}: revoked session's access token"
            );
        } else if !chain.in_doubt {
            live += 1;
            let response = node.refresh(chain.latest()).await.unwrap();
            assert_eq!(
                response.status(),
                StatusCode::OK,
                "chain {i}: the last acknowledged refresh token still works: {}",
                json_of(response).await
            );
        }
        for (k, token) in chain.tokens[..chain.tokens.len() - 1].iter().enumerate() {
            spent += 1;
            let response = node.refresh(token).await.unwrap();
            assert_invalid_grant(
                response,
                &format!("chain {i}: spent token {k} presented again"),
            )
            .await;
        }
    }
    // The checks above must not have been vacuous.
    assert!(
        live > 0 && spent > 0 && !l.revoked_access.is_empty(),
        "{live} live sessions, {spent} spent tokens"
    );
    let mut latencies = l.latencies.clone();
    format!(
        "{} answered ({} cut by kills, {} 503), {} registrations, {} sessions ({live} live, {revoked} revoked, {} in doubt), \
         {spent} spent refresh tokens refused, {} revoked access tokens refused; p50 {:?} p99 {:?}",
        l.answered,
        l.cut,
        l.unavailable,
        l.users.len(),
        l.chains.len(),
        l.chains.iter().filter(|c| c.in_doubt && !c.revoked).count(),
        l.revoked_access.len(),
        percentile(&mut latencies, 50.0),
        percentile(&mut latencies, 99.0),
    )
}

async fn assert_invalid_grant(response: reqwest::Response, what: &str) {
    let status = response.status();
    let body = json_of(response).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_grant")),
        "{what}: {body}"
    );
}

pub fn backend(url: &str) -> &'static str {
    if url.starts_with("sqlite") {
        "SQLite"
    } else {
        "Postgres"
    }
}
