//! The admin API for users and clients: refused without a token (401) or
//! without the `sigil:admin` scope (403); each action works end to end and
//! is audited with the calling client as actor.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use sigil::clients::GrantType;

use crate::helpers::{PASSWORD, TestApp, TestClient};
use crate::on_both_backends;

on_both_backends!(
    every_admin_endpoint_needs_a_token_with_the_admin_scope,
    users_are_listed_in_pages_disabled_enabled_and_logged_out,
    clients_are_created_listed_rotated_and_disabled,
    client_lifetimes_are_set_and_listed_and_longer_than_the_servers_refused,
    a_path_parameter_that_cannot_be_read_gets_a_json_400,
);

async fn token_of(app: &TestApp, client: &TestClient) -> String {
    let response = app
        .token(client, &[("grant_type", "client_credentials")])
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    crate::helpers::json(response).await["access_token"]
        .as_str()
        .unwrap()
        .to_string()
}

pub(crate) async fn admin_token(app: &TestApp) -> String {
    let ops = app
        .client(
            "ops",
            false,
            &[GrantType::ClientCredentials],
            "sigil:admin",
            None,
        )
        .await;
    token_of(app, &ops).await
}

pub(crate) async fn call(
    app: &TestApp,
    method: Method,
    path: &str,
    token: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let mut request = app.http.request(method, app.url(path)).bearer_auth(token);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.unwrap();
    let status = response.status();
    let body = response.json().await.unwrap_or(Value::Null);
    (status, body)
}

const ENDPOINTS: [(&str, &str); 6] = [
    ("GET", "/admin/users"),
    ("POST", "/admin/users/alice/disable"),
    ("POST", "/admin/users/alice/revoke-sessions"),
    ("GET", "/admin/clients"),
    ("POST", "/admin/clients"),
    ("POST", "/admin/clients/web/rotate-secret"),
];

async fn every_admin_endpoint_needs_a_token_with_the_admin_scope(app: TestApp) {
    app.user("alice").await;
    let plain = app
        .client(
            "plain",
            false,
            &[GrantType::ClientCredentials],
            "read",
            None,
        )
        .await;
    let plain = token_of(&app, &plain).await;
    for (method, path) in ENDPOINTS {
        let method = Method::from_bytes(method.as_bytes()).unwrap();
        let anonymous = app
            .http
            .request(method.clone(), app.url(path))
            .json(&json!({"client_id": "x"}))
            .send()
            .await
            .unwrap();
        assert_eq!(
            anonymous.status(),
            StatusCode::UNAUTHORIZED,
            "{method} {path}"
        );
        let (status, body) = call(
            &app,
            method.clone(),
            path,
            &plain,
            Some(json!({"client_id": "x"})),
        )
        .await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{method} {path}");
        assert_eq!(body["error"], "insufficient_scope");
    }
    // Nothing happened.
    let alice = app
        .sigil
        .store
        .user_by_username("alice")
        .await
        .unwrap()
        .unwrap();
    assert!(!alice.disabled);
}

async fn users_are_listed_in_pages_disabled_enabled_and_logged_out(app: TestApp) {
    for name in ["alice", "bob", "carol"] {
        app.user(name).await;
    }
    let admin = admin_token(&app).await;
    let (status, first) = call(&app, Method::GET, "/admin/users?limit=2", &admin, None).await;
    assert_eq!(status, StatusCode::OK);
    let names = |page: &Value| -> Vec<String> {
        page["users"]
            .as_array()
            .unwrap()
            .iter()
            .map(|u| u["username"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(names(&first), ["alice", "bob"]);
    assert!(first["users"][0].get("password_hash").is_none());
    let next = first["next"].as_str().unwrap();
    let (_, second) = call(
        &app,
        Method::GET,
        &format!("/admin/users?limit=2&after={next}"),
        &admin,
        None,
    )
    .await;
    assert_eq!(names(&second), ["carol"]);
    assert!(second["next"].is_null());
    let (status, bad) = call(&app, Method::GET, "/admin/users?limit=many", &admin, None).await;
    assert_eq!(
        (status, bad["error"].clone()),
        (StatusCode::BAD_REQUEST, json!("invalid_request"))
    );

    let web = app.confidential_client("web").await;
    let session = app.login(&web, "alice").await;
    let access = session["access_token"].as_str().unwrap();

    let (status, done) = call(
        &app,
        Method::POST,
        "/admin/users/alice/disable",
        &admin,
        None,
    )
    .await;
    assert_eq!(
        (status, done["disabled"].clone()),
        (StatusCode::OK, json!(true))
    );
    assert_eq!(
        app.me(access).await.status(),
        StatusCode::UNAUTHORIZED,
        "her token is revoked"
    );
    let refused = app.password_grant(&web, "alice", PASSWORD).await;
    assert_eq!(refused.status(), StatusCode::BAD_REQUEST);
    let (_, listed) = call(&app, Method::GET, "/admin/users", &admin, None).await;
    assert_eq!(listed["users"][0]["disabled"], true);

    call(
        &app,
        Method::POST,
        "/admin/users/alice/enable",
        &admin,
        None,
    )
    .await;
    let again = app.login(&web, "alice").await;
    let refresh = again["refresh_token"].as_str().unwrap();
    let (status, revoked) = call(
        &app,
        Method::POST,
        "/admin/users/alice/revoke-sessions",
        &admin,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(revoked["revoked_sessions"], 1);
    let refreshed = app.refresh(&web, refresh, None).await;
    assert_eq!(refreshed.status(), StatusCode::BAD_REQUEST);

    let (status, body) = call(
        &app,
        Method::POST,
        "/admin/users/nobody/disable",
        &admin,
        None,
    )
    .await;
    assert_eq!(
        (status, body["error"].clone()),
        (StatusCode::NOT_FOUND, json!("not_found"))
    );
    let (status, _) = call(
        &app,
        Method::POST,
        "/admin/users/alice/promote",
        &admin,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    assert_audited(
        &app,
        &["user.disabled", "user.enabled", "user.sessions_revoked"],
    )
    .await;
}

async fn clients_are_created_listed_rotated_and_disabled(app: TestApp) {
    let admin = admin_token(&app).await;
    let (status, created) = call(
        &app,
        Method::POST,
        "/admin/clients",
        &admin,
        Some(json!({"client_id": "svc", "grant_types": ["client_credentials"], "scopes": "read"})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    let first = created["client_secret"].as_str().unwrap().to_string();
    let svc = |secret: &str| TestClient {
        id: "svc".into(),
        secret: Some(secret.to_string()),
    };
    token_of(&app, &svc(&first)).await;

    let (status, dup) = call(
        &app,
        Method::POST,
        "/admin/clients",
        &admin,
        Some(json!({"client_id": "svc", "grant_types": ["client_credentials"]})),
    )
    .await;
    assert_eq!(
        (status, dup["error"].clone()),
        (StatusCode::CONFLICT, json!("already_exists"))
    );
    let (status, bad) = call(
        &app,
        Method::POST,
        "/admin/clients",
        &admin,
        Some(json!({"client_id": "spa", "public": true, "grant_types": ["client_credentials"]})),
    )
    .await;
    assert_eq!(
        (status, bad["error"].clone()),
        (StatusCode::BAD_REQUEST, json!("invalid_request"))
    );

    let (_, listed) = call(&app, Method::GET, "/admin/clients", &admin, None).await;
    assert!(
        !listed.to_string().contains("sigil_cs_"),
        "never a secret: {listed}"
    );
    assert!(
        listed["clients"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["client_id"] == "svc")
    );

    let (status, rotated) = call(
        &app,
        Method::POST,
        "/admin/clients/svc/rotate-secret",
        &admin,
        Some(json!({"overlap_seconds": 60})),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let second = rotated["client_secret"].as_str().unwrap().to_string();
    token_of(&app, &svc(&second)).await;
    token_of(&app, &svc(&first)).await;
    app.clock.advance(61);
    let expired = app
        .token(&svc(&first), &[("grant_type", "client_credentials")])
        .await;
    assert_eq!(expired.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        crate::helpers::json(expired).await["error"],
        "invalid_client"
    );

    call(
        &app,
        Method::POST,
        "/admin/clients/svc/disable",
        &admin,
        None,
    )
    .await;
    let disabled = app
        .token(&svc(&second), &[("grant_type", "client_credentials")])
        .await;
    assert_eq!(
        disabled.status(),
        StatusCode::UNAUTHORIZED,
        "refused at once"
    );
    assert_eq!(
        crate::helpers::json(disabled).await["error"],
        "invalid_client"
    );
    call(
        &app,
        Method::POST,
        "/admin/clients/svc/enable",
        &admin,
        None,
    )
    .await;
    token_of(&app, &svc(&second)).await;

    let (status, _) = call(
        &app,
        Method::POST,
        "/admin/clients/ghost/disable",
        &admin,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    assert_audited(
        &app,
        &[
            "client.created",
            "client.secret_rotated",
            "client.disabled",
            "client.enabled",
        ],
    )
    .await;
}

async fn client_lifetimes_are_set_and_listed_and_longer_than_the_servers_refused(app: TestApp) {
    let admin = admin_token(&app).await;
    let server_access = app.sigil.config.access_token_ttl.as_secs();
    let server_login = app.sigil.config.refresh_absolute_ttl.as_secs();
    for (field, seconds) in [
        ("access_token_ttl_seconds", server_access + 1),
        ("refresh_token_ttl_seconds", server_login + 1),
        ("access_token_ttl_seconds", 0),
    ] {
        let (status, body) = call(
            &app,
            Method::POST,
            "/admin/clients",
            &admin,
            Some(json!({"client_id": "greedy", "grant_types": ["password"], field: seconds})),
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{field}={seconds}");
        assert_eq!(body["error"], "invalid_request");
        let described = body["error_description"].as_str().unwrap();
        assert!(
            described.contains(field.trim_end_matches("_seconds")),
            "{described}"
        );
    }

    let (status, created) = call(
        &app,
        Method::POST,
        "/admin/clients",
        &admin,
        Some(json!({
            "client_id": "brief", "grant_types": ["password", "refresh_token"],
            "access_token_ttl_seconds": 120, "refresh_token_ttl_seconds": 7200
        })),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(created["access_token_ttl_seconds"], 120);

    let (_, listed) = call(&app, Method::GET, "/admin/clients", &admin, None).await;
    let clients = listed["clients"].as_array().unwrap();
    let ids: Vec<&str> = clients
        .iter()
        .map(|c| c["client_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["brief", "ops"], "nothing stored for refused ones");
    assert_eq!(
        (
            clients[0]["access_token_ttl_seconds"].clone(),
            clients[0]["refresh_token_ttl_seconds"].clone()
        ),
        (json!(120), json!(7200))
    );
    assert_eq!(clients[1]["access_token_ttl_seconds"], Value::Null);

    // The stored lifetime is the one its tokens get.
    let brief = TestClient {
        id: "brief".into(),
        secret: Some(created["client_secret"].as_str().unwrap().to_string()),
    };
    app.user("alice").await;
    let login = app.login(&brief, "alice").await;
    assert_eq!(login["expires_in"], 120);
}

async fn a_path_parameter_that_cannot_be_read_gets_a_json_400(app: TestApp) {
    let admin = admin_token(&app).await;
    for path in [
        "/admin/clients/%FF/disable",
        "/admin/users/%FF%FE/enable",
        "/admin/keys/%C3%28/retire",
    ] {
        let response = app.post(path).bearer_auth(&admin).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{path}");
        assert_eq!(
            response.headers()["content-type"],
            "application/json",
            "{path}"
        );
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"], "invalid_request", "{path}: {body}");
    }
}

/// The audit trail (written in batches) shows each action by `client:ops`.
async fn assert_audited(app: &TestApp, actions: &[&str]) {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let events = app.sigil.store.recent_audit(1000).await.unwrap();
        let missing: Vec<&&str> = actions
            .iter()
            .filter(|a| {
                !events
                    .iter()
                    .any(|e| e.action == **a && e.actor == "client:ops")
            })
            .collect();
        if missing.is_empty() {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "not audited: {missing:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
