//! `POST /oauth/token`: the password and client-credentials grants, client
//! authentication, and every RFC 6749 §5.2 error.

use reqwest::StatusCode;
use serde_json::Value;
use sigil::clients::GrantType;
use sigil::keys::Alg;

use crate::helpers::{PASSWORD, TestApp, TestClient, json, verify_with_jwks};
use crate::on_both_backends;

on_both_backends!(
    a_password_grant_returns_a_bearer_token_that_verifies_with_the_jwks_alone,
    a_client_configured_for_eddsa_gets_eddsa_tokens,
    client_secret_post_and_url_encoded_basic_credentials_both_authenticate,
    wrong_password_unknown_user_and_disabled_user_get_one_identical_answer,
    failed_client_authentication_is_a_401_with_a_basic_challenge,
    missing_repeated_or_malformed_parameters_are_invalid_request,
    grant_types_are_checked_against_the_client,
    the_requested_scope_may_narrow_but_never_exceed_the_clients,
    client_credentials_issues_a_token_for_the_client_itself,
);

async fn error_of(response: reqwest::Response) -> (StatusCode, Value) {
    let status = response.status();
    assert_eq!(response.headers()["cache-control"], "no-store");
    assert_eq!(response.headers()["content-type"], "application/json");
    (status, json(response).await)
}

async fn a_password_grant_returns_a_bearer_token_that_verifies_with_the_jwks_alone(app: TestApp) {
    app.user("alice").await;
    let client = app.confidential_client("web").await;
    let response = app.password_grant(&client, "alice", PASSWORD).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["cache-control"], "no-store");
    assert_eq!(response.headers()["pragma"], "no-cache");
    let body = json(response).await;
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 900, "a JSON integer");
    assert_eq!(body["scope"], "read write");
    let token = body["access_token"].as_str().unwrap();

    let header = jsonwebtoken::decode_header(token).unwrap();
    assert_eq!(header.typ.as_deref(), Some("at+jwt"));
    assert_eq!(header.alg, jsonwebtoken::Algorithm::RS256);

    let claims =
        verify_with_jwks(&app.jwks().await, token, &app.base, &app.base).expect("verifies");
    for claim in [
        "iss",
        "sub",
        "aud",
        "exp",
        "iat",
        "nbf",
        "jti",
        "client_id",
        "scope",
    ] {
        assert!(!claims[claim].is_null(), "claim {claim} present");
    }
    assert_eq!(claims["client_id"], "web");
    assert_eq!(claims["scope"], "read write");
    assert_eq!(
        claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(),
        900
    );
    let me = json(app.me(token).await).await;
    assert_eq!(claims["sub"], me["id"]);
}

async fn a_client_configured_for_eddsa_gets_eddsa_tokens(app: TestApp) {
    app.user("alice").await;
    let client = app
        .client(
            "edge",
            true,
            &[GrantType::Password],
            "read",
            Some(Alg::EdDSA),
        )
        .await;
    let token = app.access_token(&client, "alice").await;
    let header = jsonwebtoken::decode_header(&token).unwrap();
    assert_eq!(header.alg, jsonwebtoken::Algorithm::EdDSA);
    verify_with_jwks(&app.jwks().await, &token, &app.base, &app.base)
        .expect("EdDSA token verifies");
}

async fn client_secret_post_and_url_encoded_basic_credentials_both_authenticate(app: TestApp) {
    app.user("alice").await;
    let client = app.confidential_client("web").await;
    let secret = client.secret.clone().unwrap();
    let post = app
        .post("/oauth/token")
        .form(&[
            ("grant_type", "password"),
            ("username", "alice"),
            ("password", PASSWORD),
            ("client_id", "web"),
            ("client_secret", &secret),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(post.status(), StatusCode::OK);

    // RFC 6749 §2.3.1: id and secret are form-urlencoded inside Basic.
    let new = sigil::clients::NewClient {
        id: "svc.one~x".into(),
        grant_types: vec![GrantType::Password],
        scopes: sigil::scope::Scopes::parse("read").unwrap(),
        secret: Some("a secret: with+special/chars & more!!".to_string().into()),
        ..Default::default()
    };
    sigil::clients::create_client(
        app.sigil.store.as_ref(),
        &app.sigil.config.max_client_lifetimes(),
        new,
        0,
    )
    .await
    .unwrap();
    let encoded_secret = "a+secret%3A+with%2Bspecial%2Fchars+%26+more%21%21";
    let basic = app
        .post("/oauth/token")
        .basic_auth("svc.one~x", Some(encoded_secret))
        .form(&[
            ("grant_type", "password"),
            ("username", "alice"),
            ("password", PASSWORD),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(basic.status(), StatusCode::OK);
}

async fn wrong_password_unknown_user_and_disabled_user_get_one_identical_answer(app: TestApp) {
    app.user("alice").await;
    app.user("bob").await;
    let bob = app
        .sigil
        .store
        .user_by_username("bob")
        .await
        .unwrap()
        .unwrap();
    app.sigil
        .store
        .set_user_disabled(&bob.id, true, 0)
        .await
        .unwrap();
    let client = app.confidential_client("web").await;

    let mut answers = Vec::new();
    for (username, password) in [
        ("alice", "wrong password"),
        ("nobody", PASSWORD),
        ("bob", PASSWORD),
        ("!!", PASSWORD),
    ] {
        let (status, body) = error_of(app.password_grant(&client, username, password).await).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(body["error"], "invalid_grant");
        answers.push(body);
    }
    assert!(
        answers.windows(2).all(|w| w[0] == w[1]),
        "identical bodies: {answers:?}"
    );
}

async fn failed_client_authentication_is_a_401_with_a_basic_challenge(app: TestApp) {
    app.user("alice").await;
    let client = app.confidential_client("web").await;
    let cases = [
        TestClient {
            id: "web".into(),
            secret: Some("wrong".into()),
        },
        TestClient {
            id: "ghost".into(),
            secret: Some("whatever".into()),
        },
        // A confidential client presenting no secret.
        TestClient {
            id: "web".into(),
            secret: None,
        },
    ];
    for case in cases {
        let response = app.password_grant(&case, "alice", PASSWORD).await;
        assert_eq!(
            response.headers()["www-authenticate"],
            r#"Basic realm="sigil""#
        );
        let (status, body) = error_of(response).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert_eq!(body["error"], "invalid_client");
    }
    let anonymous = app
        .post("/oauth/token")
        .form(&[
            ("grant_type", "password"),
            ("username", "alice"),
            ("password", PASSWORD),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(error_of(anonymous).await.1["error"], "invalid_client");

    // Two methods at once is a malformed request (RFC 6749 §2.3).
    let both = app
        .post("/oauth/token")
        .basic_auth("web", client.secret.as_deref())
        .form(&[
            ("grant_type", "password"),
            ("client_secret", "x"),
            ("username", "alice"),
            ("password", PASSWORD),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(error_of(both).await.1["error"], "invalid_request");
}

async fn missing_repeated_or_malformed_parameters_are_invalid_request(app: TestApp) {
    app.user("alice").await;
    let client = app.confidential_client("web").await;
    for params in [
        vec![("username", "alice"), ("password", PASSWORD)],
        vec![("grant_type", "password"), ("password", PASSWORD)],
        vec![("grant_type", "password"), ("username", "alice")],
        vec![
            ("grant_type", "password"),
            ("username", "alice"),
            ("password", PASSWORD),
            ("username", "alice"),
        ],
    ] {
        let (status, body) = error_of(app.token(&client, &params).await).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{params:?}");
        assert_eq!(body["error"], "invalid_request", "{params:?}");
        assert!(body["error_description"].is_string());
    }
    let not_a_form = app
        .post("/oauth/token")
        .basic_auth("web", client.secret.as_deref())
        .json(&serde_json::json!({"grant_type": "password"}))
        .send()
        .await
        .unwrap();
    assert_eq!(error_of(not_a_form).await.1["error"], "invalid_request");

    let oversized = app
        .post("/oauth/token")
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!(
            "grant_type=password&username={}",
            "a".repeat(64 * 1024)
        ))
        .send()
        .await
        .unwrap();
    let (status, body) = error_of(oversized).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(body["error"], "invalid_request");
}

async fn grant_types_are_checked_against_the_client(app: TestApp) {
    app.user("alice").await;
    let client = app.confidential_client("web").await;
    let (status, body) = error_of(app.token(&client, &[("grant_type", "implicit")]).await).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("unsupported_grant_type"))
    );
    let (status, body) = error_of(
        app.token(&client, &[("grant_type", "authorization_code")])
            .await,
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("unauthorized_client"))
    );
    let (_, body) = error_of(
        app.token(&client, &[("grant_type", "client_credentials")])
            .await,
    )
    .await;
    assert_eq!(body["error"], "unauthorized_client");
}

async fn the_requested_scope_may_narrow_but_never_exceed_the_clients(app: TestApp) {
    app.user("alice").await;
    let client = app.confidential_client("web").await;
    let grant = |scope: &'static str| {
        let client = &client;
        let app = &app;
        async move {
            app.token(
                client,
                &[
                    ("grant_type", "password"),
                    ("username", "alice"),
                    ("password", PASSWORD),
                    ("scope", scope),
                ],
            )
            .await
        }
    };
    let narrowed = json(grant("read").await).await;
    assert_eq!(narrowed["scope"], "read");
    for scope in ["read admin", "bad\"scope"] {
        let (status, body) = error_of(grant(scope).await).await;
        assert_eq!(
            (status, body["error"].as_str()),
            (StatusCode::BAD_REQUEST, Some("invalid_scope")),
            "{scope}"
        );
    }
}

async fn client_credentials_issues_a_token_for_the_client_itself(app: TestApp) {
    let service = app
        .client(
            "billing",
            false,
            &[GrantType::ClientCredentials],
            "invoices:read",
            Some(Alg::EdDSA),
        )
        .await;
    let response = app
        .token(&service, &[("grant_type", "client_credentials")])
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let body = json(response).await;
    assert!(body.get("refresh_token").is_none(), "RFC 6749 §4.4.3");
    let claims = verify_with_jwks(
        &app.jwks().await,
        body["access_token"].as_str().unwrap(),
        &app.base,
        &app.base,
    )
    .unwrap();
    assert_eq!(claims["sub"], "billing");
    assert_eq!(claims["scope"], "invoices:read");

    // No scope at all: the member is omitted, never "" (RFC 6749 §3.3).
    let bare = app
        .client("bare", false, &[GrantType::ClientCredentials], "", None)
        .await;
    let body = json(
        app.token(&bare, &[("grant_type", "client_credentials")])
            .await,
    )
    .await;
    assert!(body.get("scope").is_none(), "{body}");
    let claims = verify_with_jwks(
        &app.jwks().await,
        body["access_token"].as_str().unwrap(),
        &app.base,
        &app.base,
    )
    .unwrap();
    assert!(claims.get("scope").is_none());
    // A client_credentials token is not a user's: /users/me refuses it.
    assert_eq!(
        app.me(body["access_token"].as_str().unwrap())
            .await
            .status(),
        StatusCode::UNAUTHORIZED
    );
}
