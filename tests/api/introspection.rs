//! RFC 7662 introspection.

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{TestApp, TestClient, json};
use crate::on_both_backends;

on_both_backends!(
    an_active_access_token_introspects_with_its_claims,
    a_refresh_token_introspects_only_for_its_own_client,
    anything_not_active_introspects_as_active_false_and_nothing_else,
    introspection_requires_an_authenticated_confidential_client,
);

async fn an_active_access_token_introspects_with_its_claims(app: TestApp) {
    app.user("alice").await;
    let client = app.confidential_client("web").await;
    let resource = app.confidential_client("notes-api").await;
    let session = app.login(&client, "alice").await;
    let body = app
        .introspect(&resource, session["access_token"].as_str().unwrap())
        .await;
    assert_eq!(body["active"], true);
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["client_id"], "web");
    assert_eq!(body["scope"], "read write");
    assert_eq!(body["iss"], app.base.as_str());
    for claim in ["sub", "exp", "iat", "nbf", "jti", "aud", "sid"] {
        assert!(!body[claim].is_null(), "{claim} in {body}");
    }
}

async fn a_refresh_token_introspects_only_for_its_own_client(app: TestApp) {
    app.user("alice").await;
    let client = app.confidential_client("web").await;
    let other = app.confidential_client("other").await;
    let session = app.login(&client, "alice").await;
    let token = session["refresh_token"].as_str().unwrap();
    let body = app.introspect(&client, token).await;
    assert_eq!(body["active"], true);
    assert_eq!(body["token_type"], "refresh_token");
    assert_eq!(body["client_id"], "web");
    assert_eq!(
        app.introspect(&other, token).await,
        json!({"active": false})
    );
    // Once spent it is no longer active.
    let response = app.refresh(&client, token, None).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        app.introspect(&client, token).await,
        json!({"active": false})
    );
}

async fn anything_not_active_introspects_as_active_false_and_nothing_else(app: TestApp) {
    app.user("alice").await;
    let client = app.confidential_client("web").await;
    let expiring = app.login(&client, "alice").await;
    let revoked = app.login(&client, "alice").await;
    app.revoke(&client, revoked["access_token"].as_str().unwrap())
        .await;
    let genuine = expiring["access_token"].as_str().unwrap().to_string();
    let mut tampered = genuine.clone();
    tampered.pop();
    tampered.push(if genuine.ends_with('A') { 'B' } else { 'A' });
    let cases = [
        revoked["access_token"].as_str().unwrap().to_string(),
        tampered,
        "not-a-token".into(),
        "sigil_rt_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA".into(),
        "eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.".into(),
    ];
    for token in &cases {
        assert_eq!(
            app.introspect(&client, token).await,
            json!({"active": false}),
            "{token}"
        );
    }
    app.clock.advance(900);
    assert_eq!(
        app.introspect(&client, &genuine).await,
        json!({"active": false}),
        "expired"
    );
}

async fn introspection_requires_an_authenticated_confidential_client(app: TestApp) {
    let public = app
        .client(
            "spa",
            true,
            &[sigil::clients::GrantType::Password],
            "",
            None,
        )
        .await;
    let response = app
        .client_post("/oauth/introspect", &public, &[("token", "x")])
        .await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let wrong = TestClient {
        id: "ghost".into(),
        secret: Some("nope".into()),
    };
    let response = app
        .client_post("/oauth/introspect", &wrong, &[("token", "x")])
        .await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(json(response).await["error"], "invalid_client");
}
