//! `POST /users`.

use reqwest::StatusCode;

use crate::helpers::{PASSWORD, TestApp, json};
use crate::on_both_backends;

on_both_backends!(
    registration_returns_the_user_without_any_password_material,
    a_taken_username_or_email_is_a_conflict_whatever_its_case,
    every_bad_or_missing_field_is_named_in_one_400,
    a_malformed_body_gets_a_json_error,
);

async fn registration_returns_the_user_without_any_password_material(app: TestApp) {
    let response = app.register("Alice", "Alice@Example.com", PASSWORD).await;
    assert_eq!(response.status(), StatusCode::CREATED);
    assert_eq!(response.headers()["cache-control"], "no-store");
    let text = response.text().await.unwrap();
    let body: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(body["username"], "alice");
    assert_eq!(body["email"], "alice@example.com");
    assert!(body["id"].as_str().is_some_and(|id| id.len() == 36));
    assert!(!text.contains("argon2") && !text.contains(PASSWORD) && !text.contains("password"));
}

async fn a_taken_username_or_email_is_a_conflict_whatever_its_case(app: TestApp) {
    app.user("alice").await;
    let same_name = app.register("ALICE", "other@example.com", PASSWORD).await;
    assert_eq!(same_name.status(), StatusCode::CONFLICT);
    let body = json(same_name).await;
    assert_eq!(body["error"], "already_exists");
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .contains("username")
    );

    let same_email = app.register("bob", "Alice@EXAMPLE.com", PASSWORD).await;
    assert_eq!(same_email.status(), StatusCode::CONFLICT);
    assert!(
        json(same_email).await["error_description"]
            .as_str()
            .unwrap()
            .contains("email")
    );
}

async fn every_bad_or_missing_field_is_named_in_one_400(app: TestApp) {
    let response = app.register("x", "not-an-email", "short").await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let body = json(response).await;
    assert_eq!(body["error"], "invalid_request");
    for field in ["username", "email", "password"] {
        assert!(body["fields"][field].is_string(), "{field} named in {body}");
    }

    let too_long = "p".repeat(129);
    let body = json(app.register("carol", "carol@example.com", &too_long).await).await;
    assert!(
        body["fields"]["password"]
            .as_str()
            .unwrap()
            .contains("at most")
    );
    assert!(body["fields"].get("username").is_none());

    let missing = app
        .post("/users")
        .json(&serde_json::json!({"username": "dave"}))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), StatusCode::BAD_REQUEST);
    let body = json(missing).await;
    assert_eq!(body["fields"]["email"], "is required");
    assert_eq!(body["fields"]["password"], "is required");
}

async fn a_malformed_body_gets_a_json_error(app: TestApp) {
    let cases = [
        ("application/json", "{not json", StatusCode::BAD_REQUEST),
        (
            "application/json",
            r#"{"username": 5, "email": "a@b.co", "password": "xxxxxxxx"}"#,
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        ("text/plain", "{}", StatusCode::UNSUPPORTED_MEDIA_TYPE),
    ];
    for (content_type, body, status) in cases {
        let response = app
            .post("/users")
            .header("content-type", content_type)
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), status, "{body}");
        assert_eq!(json(response).await["error"], "invalid_request");
    }
    let huge = format!(r#"{{"username":"{}"}}"#, "a".repeat(100_000));
    let response = app
        .post("/users")
        .header("content-type", "application/json")
        .body(huge)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(json(response).await["error"], "invalid_request");
}

#[tokio::test]
async fn registration_can_be_closed_so_only_the_cli_creates_users() {
    let app = TestApp::spawn_with(crate::helpers::Backend::Sqlite, |c| c.registration = false)
        .await
        .unwrap();
    let response = app.register("alice", "alice@example.com", PASSWORD).await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert_eq!(json(response).await["error"], "registration_closed");
}
