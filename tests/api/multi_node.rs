//! Several Sigil nodes on one database behave as one server.

use std::time::{Duration, Instant};

use reqwest::StatusCode;

use crate::helpers::TestApp;
use crate::on_both_backends;

on_both_backends!(
    a_revocation_through_one_node_is_honoured_by_another_within_a_second,
    a_refresh_retried_on_another_node_gets_the_same_successor,
);

async fn a_revocation_through_one_node_is_honoured_by_another_within_a_second(a: TestApp) {
    let b = a.spawn_node().await;
    a.user("alice").await;
    let client = a.confidential_client("web").await;
    let session = a.login(&client, "alice").await;
    let token = session["access_token"].as_str().unwrap();
    assert_eq!(b.me(token).await.status(), StatusCode::OK);
    let introspected = b.introspect(&client, token).await;
    assert_eq!(introspected["active"], true);

    let revoked_at = Instant::now();
    assert_eq!(a.revoke(&client, token).await.status(), StatusCode::OK);
    loop {
        if b.me(token).await.status() == StatusCode::UNAUTHORIZED {
            break;
        }
        assert!(
            revoked_at.elapsed() < Duration::from_millis(1500),
            "node B still accepts a token revoked on node A"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert_eq!(
        b.introspect(&client, token).await,
        serde_json::json!({"active": false})
    );
}

async fn a_refresh_retried_on_another_node_gets_the_same_successor(a: TestApp) {
    let b = a.spawn_node().await;
    a.user("alice").await;
    let client = a.confidential_client("web").await;
    let session = a.login(&client, "alice").await;
    let token = session["refresh_token"].as_str().unwrap();
    let on_a: serde_json::Value = a.refresh(&client, token, None).await.json().await.unwrap();
    let on_b: serde_json::Value = b.refresh(&client, token, None).await.json().await.unwrap();
    assert_eq!(on_a["refresh_token"], on_b["refresh_token"]);
    assert!(on_a["refresh_token"].is_string());
}
