//! Two nodes on one Postgres: one killed in the middle of key operations,
//! and one cut off from LISTEN/NOTIFY.

use std::collections::BTreeSet;
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};
use sqlx::Connection;

use crate::harness::{
    ADMIN, ADMIN_SECRET, Api, Node, eventually, field, json_of, provision, scale,
};
use crate::pg::PgCluster;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_node_killed_mid_rotation_leaves_one_consistent_schedule_that_the_other_completes() {
    let Some(pg) = PgCluster::start() else { return };
    let dir = tempfile::tempdir().unwrap();
    provision(dir.path(), &pg.url());
    // Big RSA keys: generation takes long enough to be killed inside it.
    let env = [("SIGIL_RSA_BITS", "4096")];
    let mut a = Node::start(dir.path(), &pg.url(), &env).await;
    let b = Node::start(dir.path(), &pg.url(), &env).await;

    let rounds = scale().rotation_kills;
    let mut completed_by_b = 0;
    for round in 0..rounds {
        // Alternate a scheduled rotation and an emergency rotation (which
        // removes the signing key before it stores the replacement).
        let emergency = round % 2 == 1;
        let admin = b.admin_token().await;
        let body = if emergency {
            json!({ "emergency_kid": signing_kid(&b.api(), "RS256").await })
        } else {
            json!({ "alg": "RS256" })
        };
        let request = {
            let (api, admin, body) = (a.api(), admin.clone(), body.clone());
            tokio::spawn(async move { rotate(&api, &admin, &body).await })
        };
        tokio::time::sleep(Duration::from_millis(20 + round as u64 * 97 % 400)).await;
        a.kill9();
        let answered = request.await.unwrap().is_some();
        // Whether the kill left an algorithm without a signing key (the
        // partial emergency rotation), as B's readiness shows it.
        let readyz: Value = b.get("/readyz").await.unwrap().json().await.unwrap();
        let keys_missing = readyz["checks"]["keys"] == false;

        // B, alone, ends with exactly one signing key per algorithm and
        // at most one pending: it either finds the operation done or
        // completes it (scheduler repair, or the operator's retry).
        if !emergency && !has_pending(&b.api(), "RS256").await {
            let retry = rotate(&b.api(), &b.admin_token().await, &body)
                .await
                .expect("answered");
            assert_eq!(
                retry.0,
                StatusCode::OK,
                "B retries the rotation: {}",
                retry.1
            );
            completed_by_b += 1;
        }
        assert!(
            eventually(Duration::from_secs(40), async || consistent(&b.api()).await).await,
            "round {round} ({}): the schedule stays consistent: {}",
            if emergency { "emergency" } else { "scheduled" },
            keys(&b.api()).await.unwrap_or_default()
        );
        let issued_by_b = service_token(&b.api()).await;

        a.restart().await;
        assert!(
            a.wait_ready(Duration::from_secs(30)).await,
            "A restarts on the schedule B left"
        );
        let same = eventually(Duration::from_secs(10), async || {
            kids(&a.api()).await == kids(&b.api()).await
        })
        .await;
        assert!(same, "round {round}: both nodes publish the same keys");
        // Tokens of either node are accepted by the other.
        let issued_by_a = service_token(&a.api()).await;
        assert!(
            introspect(&a.api(), &issued_by_b).await,
            "A accepts B's token"
        );
        assert!(
            introspect(&b.api(), &issued_by_a).await,
            "B accepts A's token"
        );
        println!(
            "FAULTS rotation kill round {round}: emergency={emergency} answered_before_kill={answered} \
             signing_key_missing_after_kill={keys_missing}"
        );

        // Leave no pending key behind, so the next round can rotate again.
        if let Some(kid) = pending_kid(&b.api(), "RS256").await {
            let admin = b.admin_token().await;
            let removed = rotate(&b.api(), &admin, &json!({ "emergency_kid": kid })).await;
            assert_eq!(removed.map(|r| r.0), Some(StatusCode::OK));
        }
    }
    println!(
        "FAULTS rotation kills Postgres: {rounds} kills of a node mid key operation; {completed_by_b} rotations completed by the surviving node"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_lost_listen_connection_comes_back_and_the_reread_covers_what_it_missed() {
    let Some(pg) = PgCluster::start() else { return };
    let dir = tempfile::tempdir().unwrap();
    provision(dir.path(), &pg.url());
    // The periodic re-read at its slowest: anything learnt faster came
    // through NOTIFY.
    let env = [("SIGIL_REVOCATION_POLL_INTERVAL", "60s")];
    let a = Node::start(dir.path(), &pg.url(), &env).await;
    let b = Node::start(dir.path(), &pg.url(), &env).await;
    assert_eq!(
        a.register("carol", "password-carol")
            .await
            .unwrap()
            .status(),
        201
    );
    let mut tokens = Vec::new();
    for _ in 0..2 {
        let body = json_of(a.login("carol", "password-carol").await.unwrap()).await;
        tokens.push(field(&body, "access_token"));
    }
    assert_eq!(a.me(&tokens[0]).await.unwrap().status(), 200);

    // Cut every LISTEN connection, and revoke while they are down.
    let mut db = sqlx::PgConnection::connect(&pg.url()).await.unwrap();
    let listening = listeners(&mut db).await;
    assert_eq!(listening, 2, "each node listens");
    sqlx::query(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE query ILIKE 'LISTEN%'",
    )
    .execute(&mut db)
    .await
    .unwrap();
    assert_eq!(b.revoke(&tokens[0]).await.unwrap().status(), 200);
    // A hears of it anyway: on reconnecting it re-reads what it missed.
    assert!(
        eventually(Duration::from_secs(15), async || {
            a.me(&tokens[0]).await.unwrap().status() == StatusCode::UNAUTHORIZED
        })
        .await,
        "a revocation made while A's LISTEN connection was down reaches A well before the 60 s poll"
    );
    assert!(
        eventually(Duration::from_secs(15), async || listeners(&mut db).await
            == 2)
        .await,
        "both nodes listen again"
    );
    // And the re-established connection carries the next one.
    assert_eq!(b.revoke(&tokens[1]).await.unwrap().status(), 200);
    assert!(
        eventually(Duration::from_secs(10), async || {
            a.me(&tokens[1]).await.unwrap().status() == StatusCode::UNAUTHORIZED
        })
        .await,
        "NOTIFY works again"
    );
    println!(
        "FAULTS LISTEN loss Postgres: both listeners terminated; a revocation made meanwhile and one after both reached the other node well inside the 60 s poll"
    );
}

async fn listeners(db: &mut sqlx::PgConnection) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM pg_stat_activity WHERE query ILIKE 'LISTEN%'")
        .fetch_one(db)
        .await
        .unwrap()
}

/// POST /admin/keys/rotate; `None` if the node died before answering.
async fn rotate(api: &Api, admin: &str, body: &Value) -> Option<(StatusCode, Value)> {
    let response = api
        .http
        .post(api.url("/admin/keys/rotate"))
        .bearer_auth(admin)
        .json(body)
        .send()
        .await
        .ok()?;
    let status = response.status();
    Some((status, response.json().await.ok()?))
}

/// GET /admin/keys with a fresh admin token; `None` while the node cannot
/// issue one (an algorithm briefly without a signing key) or answer.
async fn keys(api: &Api) -> Option<Value> {
    let admin = api.try_admin_token().await?;
    let response = api
        .http
        .get(api.url("/admin/keys"))
        .bearer_auth(admin)
        .send()
        .await
        .ok()?;
    if response.status() != StatusCode::OK {
        return None;
    }
    response.json().await.ok()
}

async fn in_state(api: &Api, alg: &str, state: &str) -> Option<Vec<String>> {
    let keys = keys(api).await?;
    Some(
        keys["keys"]
            .as_array()?
            .iter()
            .filter(|k| k["alg"] == alg && k["state"] == state)
            .filter_map(|k| Some(k["kid"].as_str()?.to_string()))
            .collect(),
    )
}

async fn signing_kid(api: &Api, alg: &str) -> String {
    in_state(api, alg, "active")
        .await
        .and_then(|mut kids| kids.pop())
        .expect("a signing key")
}

async fn pending_kid(api: &Api, alg: &str) -> Option<String> {
    in_state(api, alg, "pending")
        .await
        .expect("keys listed")
        .pop()
}

async fn has_pending(api: &Api, alg: &str) -> bool {
    pending_kid(api, alg).await.is_some()
}

/// Exactly one active key and at most one pending per algorithm, every
/// published key decodable, and the node issuing tokens.
async fn consistent(api: &Api) -> bool {
    for alg in ["RS256", "EdDSA"] {
        let (Some(active), Some(pending)) = (
            in_state(api, alg, "active").await,
            in_state(api, alg, "pending").await,
        ) else {
            return false;
        };
        if active.len() != 1 || pending.len() > 1 {
            return false;
        }
    }
    let ready = api
        .get("/readyz")
        .await
        .is_ok_and(|r| r.status() == StatusCode::OK);
    ready && !kids(api).await.is_empty()
}

async fn kids(api: &Api) -> BTreeSet<String> {
    let jwks: Value = api
        .get("/.well-known/jwks.json")
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap().to_string())
        .collect()
}

/// An RS256 token for the admin client (client_credentials).
async fn service_token(api: &Api) -> String {
    let response = api
        .http
        .post(api.url("/oauth/token"))
        .basic_auth(ADMIN, Some(ADMIN_SECRET))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK, "the node issues tokens");
    field(&json_of(response).await, "access_token")
}

async fn introspect(api: &Api, token: &str) -> bool {
    let response = api
        .http
        .post(api.url("/oauth/introspect"))
        .basic_auth(ADMIN, Some(ADMIN_SECRET))
        .form(&[("token", token)])
        .send()
        .await
        .unwrap();
    json_of(response).await["active"] == true
}
