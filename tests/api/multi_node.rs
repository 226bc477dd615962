//! Several Sigil nodes on one database behave as one server.

use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::json;
use sigil::clients::GrantType;

use crate::admin::{admin_token, call};
use crate::helpers::{TestApp, TestClient, json};
use crate::on_both_backends;

on_both_backends!(
    a_revocation_through_one_node_is_honoured_by_another_within_a_second,
    a_refresh_retried_on_another_node_gets_the_same_successor,
    a_client_rotated_and_disabled_on_one_node_is_honoured_by_another,
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

/// Client credentials as node `app` answers them: the status and, when
/// refused, the error code.
async fn client_credentials(app: &TestApp, client: &TestClient) -> (StatusCode, String) {
    let response = app
        .token(client, &[("grant_type", "client_credentials")])
        .await;
    let status = response.status();
    let body = json(response).await;
    (status, body["error"].as_str().unwrap_or("").to_string())
}

async fn a_client_rotated_and_disabled_on_one_node_is_honoured_by_another(a: TestApp) {
    let b = a.spawn_node().await;
    let admin = admin_token(&b).await;
    let svc = a
        .client("svc", false, &[GrantType::ClientCredentials], "read", None)
        .await;
    let old = TestClient {
        id: "svc".into(),
        secret: svc.secret.clone(),
    };
    // Node A now holds the client in memory.
    assert_eq!(client_credentials(&a, &svc).await.0, StatusCode::OK);

    let (status, rotated) = call(
        &b,
        Method::POST,
        "/admin/clients/svc/rotate-secret",
        &admin,
        Some(json!({"overlap_seconds": 60})),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let new = TestClient {
        id: "svc".into(),
        secret: rotated["client_secret"].as_str().map(str::to_string),
    };
    a.until_client_change_holds("the new secret", || async {
        client_credentials(&a, &new).await.0 == StatusCode::OK
    })
    .await;
    assert_eq!(
        client_credentials(&a, &old).await.0,
        StatusCode::OK,
        "the old secret works while the overlap lasts"
    );
    a.clock.advance(61);
    assert_eq!(
        client_credentials(&a, &old).await,
        (StatusCode::UNAUTHORIZED, "invalid_client".to_string()),
        "the old secret is refused once the overlap is over"
    );

    let token = a.token(&new, &[("grant_type", "client_credentials")]).await;
    let token = json(token).await["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(a.introspect(&new, &token).await["active"], true);
    let (status, _) = call(&b, Method::POST, "/admin/clients/svc/disable", &admin, None).await;
    assert_eq!(status, StatusCode::OK);
    a.until_client_change_holds("disabling", || async {
        client_credentials(&a, &new).await
            == (StatusCode::UNAUTHORIZED, "invalid_client".to_string())
    })
    .await;
    let introspection = a
        .client_post("/oauth/introspect", &new, &[("token", &token)])
        .await;
    assert_eq!(introspection.status(), StatusCode::UNAUTHORIZED);
    let revocation = a.revoke(&new, &token).await;
    assert_eq!(revocation.status(), StatusCode::UNAUTHORIZED);
}
