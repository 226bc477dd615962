//! The refresh_token grant: rotation, retry tolerance, reuse detection,
//! client binding, scope, and lifetimes (RFC 6749 §6, RFC 9700 §4.14).

use std::collections::HashSet;

use reqwest::StatusCode;
use serde_json::Value;
use sigil::clients::GrantType;

use crate::helpers::{PASSWORD, TestApp, json, session_records};
use crate::on_both_backends;

on_both_backends!(
    a_refresh_rotates_the_refresh_token_and_issues_a_new_access_token,
    a_retry_within_the_grace_window_gets_the_same_successor,
    reuse_of_a_spent_token_revokes_the_family_and_its_access_tokens,
    concurrent_refreshes_of_one_token_leave_exactly_one_live_chain,
    a_refresh_may_narrow_the_scope_but_never_widen_it,
    a_refresh_token_works_only_for_the_client_it_was_issued_to,
    idle_and_absolute_lifetimes_both_end_a_session,
    a_password_change_or_disablement_revokes_every_session,
    presenting_a_token_whose_successor_was_already_used_is_reuse_even_within_grace,
    a_login_that_raced_a_password_change_opens_no_session,
);

async fn presenting_a_token_whose_successor_was_already_used_is_reuse_even_within_grace(
    app: TestApp,
) {
    app.user("alice").await;
    let client = app.confidential_client("web").await;
    let login = app.login(&client, "alice").await;
    let first = str_of(&login, "refresh_token");
    let second = ok(app.refresh(&client, first, None).await).await;
    let third = ok(app
        .refresh(&client, str_of(&second, "refresh_token"), None)
        .await)
    .await;
    // Still inside the grace window of the first spend, but the client has
    // clearly moved on: this is a replay, and the family dies.
    assert_eq!(
        error(app.refresh(&client, first, None).await).await.1,
        "invalid_grant"
    );
    assert_eq!(
        error(
            app.refresh(&client, str_of(&third, "refresh_token"), None)
                .await
        )
        .await
        .1,
        "invalid_grant"
    );
}

async fn a_login_that_raced_a_password_change_opens_no_session(app: TestApp) {
    app.user("alice").await;
    let client = app.confidential_client("web").await;
    let store = app.sigil.store.as_ref();
    let checked = store.user_by_username("alice").await.unwrap().unwrap();
    let now = sigil::clock::Clock::now(&app.clock);
    app.set_password("alice", "a brand new password").await;
    // A login whose password check (against the old hash) began before the
    // change commits its session only afterwards: refused, nothing stored.
    let (token, family, first) = session_records("raced", &checked.id, &client.id, now);
    let raced = store
        .create_family(&family, Some(&first), Some(&checked.password_hash))
        .await;
    assert!(
        matches!(raced, Err(sigil::store::StoreError::NotFound)),
        "{raced:?}"
    );
    assert_eq!(
        error(app.refresh(&client, &token, None).await).await.1,
        "invalid_grant"
    );
    // Checked against the current hash, the same session opens.
    let current = store.user_by_username("alice").await.unwrap().unwrap();
    store
        .create_family(&family, Some(&first), Some(&current.password_hash))
        .await
        .unwrap();
    assert_eq!(
        app.refresh(&client, &token, None).await.status(),
        StatusCode::OK
    );
}

fn str_of<'a>(body: &'a Value, field: &str) -> &'a str {
    body[field]
        .as_str()
        .unwrap_or_else(|| panic!("{field} in {body}"))
}

async fn ok(response: reqwest::Response) -> Value {
    let status = response.status();
    let body = json(response).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body
}

async fn error(response: reqwest::Response) -> (StatusCode, String) {
    let status = response.status();
    let body = json(response).await;
    (status, str_of(&body, "error").to_string())
}

async fn a_refresh_rotates_the_refresh_token_and_issues_a_new_access_token(app: TestApp) {
    app.user("alice").await;
    let client = app.confidential_client("web").await;
    let login = app.login(&client, "alice").await;
    let first = str_of(&login, "refresh_token");
    assert!(first.starts_with("sigil_rt_"));

    app.clock.advance(60);
    let refreshed = ok(app.refresh(&client, first, None).await).await;
    let second = str_of(&refreshed, "refresh_token");
    assert_ne!(second, first);
    assert_ne!(
        str_of(&refreshed, "access_token"),
        str_of(&login, "access_token")
    );
    assert_eq!(refreshed["token_type"], "Bearer");
    assert_eq!(refreshed["scope"], "read write");
    assert_eq!(
        app.me(str_of(&refreshed, "access_token")).await.status(),
        StatusCode::OK
    );
    let third = ok(app.refresh(&client, second, None).await).await;
    assert_ne!(str_of(&third, "refresh_token"), second);

    // A client without the refresh_token grant gets none, and cannot refresh.
    let plain = app
        .client("plain", true, &[GrantType::Password], "read", None)
        .await;
    let body = app.login(&plain, "alice").await;
    assert!(body.get("refresh_token").is_none());
    assert_eq!(
        error(app.refresh(&plain, first, None).await).await.1,
        "unauthorized_client"
    );
    assert_eq!(
        error(app.token(&client, &[("grant_type", "refresh_token")]).await)
            .await
            .1,
        "invalid_request"
    );
}

async fn a_retry_within_the_grace_window_gets_the_same_successor(app: TestApp) {
    app.user("alice").await;
    let client = app.confidential_client("web").await;
    let login = app.login(&client, "alice").await;
    let token = str_of(&login, "refresh_token");
    let first = ok(app.refresh(&client, token, None).await).await;
    app.clock.advance(3);
    let retried = ok(app.refresh(&client, token, None).await).await;
    assert_eq!(
        str_of(&retried, "refresh_token"),
        str_of(&first, "refresh_token")
    );
    assert_eq!(
        app.me(str_of(&retried, "access_token")).await.status(),
        StatusCode::OK
    );
    // The session goes on from the successor.
    ok(app
        .refresh(&client, str_of(&retried, "refresh_token"), None)
        .await)
    .await;
}

async fn reuse_of_a_spent_token_revokes_the_family_and_its_access_tokens(app: TestApp) {
    app.user("alice").await;
    let client = app.confidential_client("web").await;
    let login = app.login(&client, "alice").await;
    let stolen = str_of(&login, "refresh_token");
    let rotated = ok(app.refresh(&client, stolen, None).await).await;
    let other_login = app.login(&client, "alice").await;

    app.clock.advance(6);
    assert_eq!(
        error(app.refresh(&client, stolen, None).await).await,
        (StatusCode::BAD_REQUEST, "invalid_grant".into())
    );
    // The legitimate holder is logged out too, access tokens included.
    assert_eq!(
        error(
            app.refresh(&client, str_of(&rotated, "refresh_token"), None)
                .await
        )
        .await
        .1,
        "invalid_grant"
    );
    for token in [
        str_of(&login, "access_token"),
        str_of(&rotated, "access_token"),
    ] {
        assert_eq!(app.me(token).await.status(), StatusCode::UNAUTHORIZED);
    }
    // Another session of the same user is untouched.
    assert_eq!(
        app.me(str_of(&other_login, "access_token")).await.status(),
        StatusCode::OK
    );
    ok(app
        .refresh(&client, str_of(&other_login, "refresh_token"), None)
        .await)
    .await;
}

async fn concurrent_refreshes_of_one_token_leave_exactly_one_live_chain(app: TestApp) {
    app.user("alice").await;
    let client = app.confidential_client("web").await;
    let login = app.login(&client, "alice").await;
    let token = str_of(&login, "refresh_token").to_string();
    let attempts = (0..8).map(|_| app.refresh(&client, &token, None));
    let responses = futures::future::join_all(attempts).await;
    let mut successors = HashSet::new();
    for response in responses {
        let body = ok(response).await;
        successors.insert(str_of(&body, "refresh_token").to_string());
    }
    assert_eq!(successors.len(), 1, "one successor for all: {successors:?}");
    let successor = successors.into_iter().next().unwrap();
    let next = ok(app.refresh(&client, &successor, None).await).await;
    assert!(str_of(&next, "refresh_token").starts_with("sigil_rt_"));
}

async fn a_refresh_may_narrow_the_scope_but_never_widen_it(app: TestApp) {
    app.user("alice").await;
    let client = app.confidential_client("web").await;
    let login = app.login(&client, "alice").await;
    let narrowed = ok(app
        .refresh(&client, str_of(&login, "refresh_token"), Some("read"))
        .await)
    .await;
    assert_eq!(narrowed["scope"], "read");
    // RFC 6749 §6: the new refresh token keeps the presented token's scope.
    let introspected = app
        .introspect(&client, str_of(&narrowed, "refresh_token"))
        .await;
    assert_eq!(introspected["scope"], "read write");
    let (status, code) = error(
        app.refresh(
            &client,
            str_of(&narrowed, "refresh_token"),
            Some("read admin"),
        )
        .await,
    )
    .await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::BAD_REQUEST, "invalid_scope")
    );
    // The failed attempt spent nothing: the token still refreshes.
    ok(app
        .refresh(&client, str_of(&narrowed, "refresh_token"), Some("read"))
        .await)
    .await;
}

async fn a_refresh_token_works_only_for_the_client_it_was_issued_to(app: TestApp) {
    app.user("alice").await;
    let web = app.confidential_client("web").await;
    let other = app.confidential_client("other").await;
    let login = app.login(&web, "alice").await;
    let token = str_of(&login, "refresh_token");
    assert_eq!(
        error(app.refresh(&other, token, None).await).await.1,
        "invalid_grant"
    );
    // Nothing was spent or revoked by the foreign attempt.
    ok(app.refresh(&web, token, None).await).await;
    assert_eq!(
        error(app.refresh(&web, "sigil_rt_not-a-real-token", None).await)
            .await
            .1,
        "invalid_grant"
    );
}

async fn idle_and_absolute_lifetimes_both_end_a_session(app: TestApp) {
    let app = TestApp::spawn_with(backend_of(&app), |c| {
        c.refresh_idle_ttl = std::time::Duration::from_secs(3600);
        c.refresh_absolute_ttl = std::time::Duration::from_secs(2 * 3600 + 600);
    })
    .await
    .unwrap();
    app.user("alice").await;
    let client = app.confidential_client("web").await;

    // Idle: unused for an hour.
    let idle = app.login(&client, "alice").await;
    app.clock.advance(3600);
    assert_eq!(
        error(
            app.refresh(&client, str_of(&idle, "refresh_token"), None)
                .await
        )
        .await
        .1,
        "invalid_grant"
    );

    // Absolute: used every 50 minutes, still ends 2h10m after login.
    let login = app.login(&client, "alice").await;
    let mut token = str_of(&login, "refresh_token").to_string();
    for _ in 0..2 {
        app.clock.advance(50 * 60);
        let body = ok(app.refresh(&client, &token, None).await).await;
        token = str_of(&body, "refresh_token").to_string();
    }
    app.clock.advance(50 * 60);
    assert_eq!(
        error(app.refresh(&client, &token, None).await).await.1,
        "invalid_grant"
    );
}

fn backend_of(app: &TestApp) -> crate::helpers::Backend {
    if app.database_url.starts_with("sqlite") {
        crate::helpers::Backend::Sqlite
    } else {
        crate::helpers::Backend::Postgres
    }
}

async fn a_password_change_or_disablement_revokes_every_session(app: TestApp) {
    app.user("alice").await;
    app.user("bob").await;
    let client = app.confidential_client("web").await;
    let alice = app.login(&client, "alice").await;
    let bob = app.login(&client, "bob").await;
    let store = app.sigil.store.as_ref();
    let config = &app.sigil.config;
    let now = sigil::clock::Clock::now(&app.clock);

    app.set_password("alice", "a brand new password").await;
    let audit = sigil::audit::Audit::new();
    let cli = sigil::service::Ops::offline(store, config, &audit, sigil::service::CLI, now);
    sigil::service::users::set_disabled(&cli, "bob", true)
        .await
        .unwrap();
    app.sigil.revocations_changed(now).await;

    for session in [&alice, &bob] {
        assert_eq!(
            error(
                app.refresh(&client, str_of(session, "refresh_token"), None)
                    .await
            )
            .await
            .1,
            "invalid_grant"
        );
        assert_eq!(
            app.me(str_of(session, "access_token")).await.status(),
            StatusCode::UNAUTHORIZED
        );
    }
    assert_eq!(
        app.password_grant(&client, "alice", PASSWORD)
            .await
            .status(),
        StatusCode::BAD_REQUEST
    );
    app.clock.advance(1);
    let again = app
        .password_grant(&client, "alice", "a brand new password")
        .await;
    assert_eq!(again.status(), StatusCode::OK, "the new password logs in");
}
