//! Every state-changing action goes one way (`sigil::service`), whoever
//! asks: the operator's commands record the same audit events as the admin
//! API, with the actor `cli`, stored before the command exits; and the
//! self-service endpoints record theirs the same way.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::cli::{run, sigil};
use crate::helpers::TestApp;
use crate::on_both_backends;

on_both_backends!(
    every_user_and_client_command_is_audited_as_the_admin_api_audits_it,
    self_service_actions_are_audited_with_the_user_as_actor,
);

/// The stored events with this action, newest last, as
/// `(actor, target, detail)`.
async fn events(app: &TestApp, action: &str) -> Vec<(String, Option<String>, Value)> {
    app.sigil
        .store
        .recent_audit(1000)
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.action == action)
        .map(|e| (e.actor, e.target, serde_json::from_str(&e.detail).unwrap()))
        .collect()
}

async fn every_user_and_client_command_is_audited_as_the_admin_api_audits_it(app: TestApp) {
    let cli = |args: &[&str], stdin: Option<&str>| {
        let mut command = sigil(app.dir.path());
        command
            .args(args)
            .env("SIGIL_DATABASE_URL", &app.database_url);
        let out = run(command, stdin);
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let password = Some("a long enough password\n");
    cli(
        &[
            "users",
            "create",
            "bob",
            "--email",
            "bob@example.com",
            "--password-stdin",
        ],
        password,
    );
    cli(
        &["users", "set-password", "bob", "--password-stdin"],
        password,
    );
    cli(&["users", "disable", "bob"], None);
    cli(&["users", "enable", "bob"], None);
    cli(&["users", "revoke-sessions", "bob"], None);
    cli(
        &[
            "clients",
            "create",
            "svc",
            "--grant-types",
            "client_credentials",
        ],
        None,
    );
    cli(
        &["clients", "rotate-secret", "svc", "--overlap", "1h"],
        None,
    );
    cli(&["clients", "disable", "svc"], None);
    cli(&["clients", "enable", "svc"], None);

    // Each command has exited: its events are stored, not merely queued.
    let bob = app
        .sigil
        .store
        .user_by_username("bob")
        .await
        .unwrap()
        .unwrap();
    let by_cli =
        |target: &str, detail: Value| vec![("cli".to_string(), Some(target.to_string()), detail)];
    assert_eq!(
        events(&app, "user.created").await,
        by_cli(&bob.id, json!({"username": "bob"}))
    );
    assert_eq!(
        events(&app, "user.password_changed").await,
        by_cli(&bob.id, json!({"username": "bob"}))
    );
    assert_eq!(
        events(&app, "user.disabled").await,
        by_cli(&bob.id, json!({"username": "bob", "disabled": true}))
    );
    assert_eq!(
        events(&app, "user.enabled").await,
        by_cli(&bob.id, json!({"username": "bob", "disabled": false}))
    );
    assert_eq!(
        events(&app, "user.sessions_revoked").await,
        by_cli(&bob.id, json!({"username": "bob", "revoked_sessions": 0}))
    );
    let created = events(&app, "client.created").await;
    assert_eq!(created.len(), 1);
    assert_eq!(
        (created[0].0.as_str(), created[0].1.as_deref()),
        ("cli", Some("svc"))
    );
    assert_eq!(created[0].2["client_id"], "svc");
    assert_eq!(created[0].2["grant_types"], json!(["client_credentials"]));
    let rotated = events(&app, "client.secret_rotated").await;
    assert_eq!(rotated.len(), 1);
    assert_eq!(rotated[0].2["client_id"], "svc");
    assert!(rotated[0].2["previous_secret_valid_until"].is_i64());
    assert!(
        rotated[0].2.get("client_secret").is_none(),
        "the secret is never audited"
    );
    assert_eq!(
        events(&app, "client.disabled").await,
        by_cli("svc", json!({"client_id": "svc", "disabled": true}))
    );
    assert_eq!(
        events(&app, "client.enabled").await,
        by_cli("svc", json!({"client_id": "svc", "disabled": false}))
    );
}

async fn self_service_actions_are_audited_with_the_user_as_actor(app: TestApp) {
    let registered = app
        .register("carol", "carol@example.com", crate::helpers::PASSWORD)
        .await;
    assert_eq!(registered.status(), StatusCode::CREATED);
    let carol: Value = registered.json().await.unwrap();
    let id = carol["id"].as_str().unwrap().to_string();
    let client = app.confidential_client("web").await;
    let token = app.access_token(&client, "carol").await;
    let revoked = app
        .post("/users/me/revoke-sessions")
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(revoked.status(), StatusCode::OK);

    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let registered = events(&app, "user.registered").await;
        let revoked = events(&app, "user.sessions_revoked").await;
        if !registered.is_empty() && !revoked.is_empty() {
            assert_eq!(
                registered,
                vec![(
                    "anonymous".to_string(),
                    Some(id.clone()),
                    json!({"username": "carol"})
                )]
            );
            assert_eq!(
                revoked,
                vec![(
                    format!("user:{id}"),
                    Some(id.clone()),
                    json!({"username": "carol", "revoked_sessions": 1})
                )]
            );
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "not audited: {registered:?} {revoked:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}
