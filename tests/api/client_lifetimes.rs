//! Per-client token lifetimes: a client may have shorter-lived access
//! tokens and logins than the server's, on every grant, never longer.

use std::time::Duration;

use reqwest::{Response, StatusCode};
use serde_json::Value;
use sigil::clients::{GrantType, Lifetimes, NewClient};

use crate::helpers::{TestApp, TestClient};
use crate::on_both_backends;

on_both_backends!(
    a_client_with_shorter_lifetimes_gets_them_on_every_grant,
    a_clients_logins_end_after_its_own_refresh_lifetime,
    a_lifetime_longer_than_the_servers_is_refused_and_nothing_stored,
);

const SHORT_ACCESS: u64 = 300;
const SHORT_LOGIN: u64 = 3600;

async fn short_client(app: &TestApp, id: &str) -> TestClient {
    app.client_from(NewClient {
        id: id.into(),
        grant_types: vec![
            GrantType::Password,
            GrantType::RefreshToken,
            GrantType::ClientCredentials,
        ],
        lifetimes: Lifetimes {
            access_token: Some(Duration::from_secs(SHORT_ACCESS)),
            refresh_token: Some(Duration::from_secs(SHORT_LOGIN)),
        },
        ..NewClient::default()
    })
    .await
}

async fn ok(response: Response) -> Value {
    assert_eq!(response.status(), StatusCode::OK);
    response.json().await.unwrap()
}

/// `expires_in` of a token response and `exp - iat` of its access token.
fn lifetimes_of(body: &Value) -> (u64, i64) {
    let token = body["access_token"].as_str().unwrap();
    let claims = crate::helpers::claims_of(token);
    (
        body["expires_in"].as_u64().unwrap(),
        claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(),
    )
}

async fn a_client_with_shorter_lifetimes_gets_them_on_every_grant(app: TestApp) {
    app.user("alice").await;
    let short = short_client(&app, "short").await;
    let plain = app
        .client(
            "plain",
            false,
            &[GrantType::Password, GrantType::ClientCredentials],
            "",
            None,
        )
        .await;
    let own = (SHORT_ACCESS, SHORT_ACCESS as i64);
    let server = app.sigil.config.access_token_ttl.as_secs();
    assert_ne!(server, SHORT_ACCESS, "the test needs a shorter lifetime");

    let login = app.login(&short, "alice").await;
    assert_eq!(lifetimes_of(&login), own, "password grant");
    let credentials = ok(app
        .token(&short, &[("grant_type", "client_credentials")])
        .await)
    .await;
    assert_eq!(lifetimes_of(&credentials), own, "client_credentials grant");
    let refreshed = ok(app
        .refresh(&short, login["refresh_token"].as_str().unwrap(), None)
        .await)
    .await;
    assert_eq!(lifetimes_of(&refreshed), own, "refresh_token grant");

    // A client without its own lifetime keeps the server's.
    let login = app.login(&plain, "alice").await;
    assert_eq!(lifetimes_of(&login), (server, server as i64));
    let credentials = ok(app
        .token(&plain, &[("grant_type", "client_credentials")])
        .await)
    .await;
    assert_eq!(lifetimes_of(&credentials), (server, server as i64));
}

async fn a_clients_logins_end_after_its_own_refresh_lifetime(app: TestApp) {
    app.user("alice").await;
    let short = short_client(&app, "short").await;
    let plain = app.confidential_client("plain").await;
    let short_login = app.login(&short, "alice").await;
    let plain_login = app.login(&plain, "alice").await;

    // Within its lifetime a refresh works (and rotates the token) ...
    app.clock.advance(50 * 60);
    let rotated = ok(app
        .refresh(&short, short_login["refresh_token"].as_str().unwrap(), None)
        .await)
    .await;
    // ... and an hour after the login, even a fresh successor is expired.
    app.clock.advance(11 * 60);
    let expired = app
        .refresh(&short, rotated["refresh_token"].as_str().unwrap(), None)
        .await;
    assert_eq!(expired.status(), StatusCode::BAD_REQUEST);
    let body: Value = expired.json().await.unwrap();
    assert_eq!(body["error"], "invalid_grant", "{body}");

    // The server's lifetime still applies to a client without its own.
    ok(app
        .refresh(&plain, plain_login["refresh_token"].as_str().unwrap(), None)
        .await)
    .await;
}

async fn a_lifetime_longer_than_the_servers_is_refused_and_nothing_stored(app: TestApp) {
    let config = &app.sigil.config;
    let too_long = [
        Lifetimes {
            access_token: Some(config.access_token_ttl + Duration::from_secs(1)),
            refresh_token: None,
        },
        Lifetimes {
            access_token: None,
            refresh_token: Some(config.refresh_absolute_ttl + Duration::from_secs(1)),
        },
        Lifetimes {
            access_token: Some(Duration::from_secs(1)),
            refresh_token: None,
        },
    ];
    for lifetimes in too_long {
        let refused = sigil::clients::create_client(
            app.sigil.store.as_ref(),
            &config.max_client_lifetimes(),
            NewClient {
                id: "greedy".into(),
                lifetimes,
                ..NewClient::default()
            },
            0,
        )
        .await;
        let message = refused.expect_err("refused").to_string();
        assert!(message.contains("_ttl"), "{message}");
    }
    assert!(
        sigil::clients::find_client(app.sigil.store.as_ref(), "greedy")
            .await
            .unwrap()
            .is_none()
    );
}
