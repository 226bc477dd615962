//! Revoking every session of a user revokes exactly the sessions (and
//! access tokens) that existed when it was acknowledged: a login right
//! after it, in the same second, or the same millisecond, stays signed in.
//! Each path that ends all of a user's sessions is taken at that boundary.

use reqwest::{Method, StatusCode};
use serde_json::Value;
use sigil::clock::{Clock, SystemClock};

use crate::admin::{admin_token, call};
use crate::helpers::{PASSWORD, TestApp, TestClient, claims_of, json, session_records};
use crate::on_both_backends;

on_both_backends!(
    every_path_that_ends_all_sessions_spares_a_login_in_the_same_instant,
    a_session_begun_on_another_node_right_after_log_out_everywhere_is_live,
    with_the_real_clock_a_login_right_after_the_cli_revokes_stays_signed_in,
    a_login_that_began_before_the_revocation_and_ended_after_it_is_dated_after_it,
    a_login_waiting_on_a_revocation_in_progress_is_dated_after_it,
);

/// The ways a user's sessions all end.
#[derive(Debug, Clone, Copy)]
enum Path {
    /// `POST /users/me/revoke-sessions`.
    SelfService,
    /// `POST /admin/users/{name}/revoke-sessions`.
    Admin,
    /// `POST /admin/users/{name}/disable`, then `/enable`.
    DisableThenEnable,
    /// A new password (`sigil users set-password` calls this).
    PasswordChange,
}

const NEW_PASSWORD: &str = "a brand new password for after";

fn s<'a>(body: &'a Value, field: &str) -> &'a str {
    body[field]
        .as_str()
        .unwrap_or_else(|| panic!("{field} in {body}"))
}

/// Ends every session of `username` by `path`; returns the password that
/// logs the user in afterwards.
async fn end_all_sessions(
    app: &TestApp,
    path: Path,
    username: &str,
    session: &Value,
    admin: &str,
) -> &'static str {
    match path {
        Path::SelfService => {
            let response = app
                .post("/users/me/revoke-sessions")
                .bearer_auth(s(session, "access_token"))
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), StatusCode::OK);
        }
        Path::Admin => {
            let url = format!("/admin/users/{username}/revoke-sessions");
            let (status, body) = call(app, Method::POST, &url, admin, None).await;
            assert_eq!(status, StatusCode::OK, "{body}");
        }
        Path::DisableThenEnable => {
            for action in ["disable", "enable"] {
                let url = format!("/admin/users/{username}/{action}");
                let (status, body) = call(app, Method::POST, &url, admin, None).await;
                assert_eq!(status, StatusCode::OK, "{body}");
            }
        }
        Path::PasswordChange => {
            app.set_password(username, NEW_PASSWORD).await;
            app.sigil.revocations_changed(app.clock.now()).await;
            return NEW_PASSWORD;
        }
    }
    PASSWORD
}

async fn login_with(app: &TestApp, client: &TestClient, username: &str, password: &str) -> Value {
    let response = app.password_grant(client, username, password).await;
    assert_eq!(response.status(), StatusCode::OK, "{username} logs in");
    json(response).await
}

/// `before` must be dead and `after` live, on `app` (access tokens at
/// `/users/me` and introspection, refresh tokens at the token endpoint).
async fn assert_only_the_later_session_lives(
    app: &TestApp,
    client: &TestClient,
    before: &Value,
    after: &Value,
    what: &str,
) {
    assert_eq!(
        app.me(s(after, "access_token")).await.status(),
        StatusCode::OK,
        "{what}: an access token issued after the revocation is not denied"
    );
    assert_eq!(
        app.introspect(client, s(after, "access_token")).await["active"],
        true,
        "{what}"
    );
    assert_eq!(
        app.me(s(before, "access_token")).await.status(),
        StatusCode::UNAUTHORIZED,
        "{what}: an access token issued before it, in the same instant, is denied"
    );
    let refused = app.refresh(client, s(before, "refresh_token"), None).await;
    assert_eq!(json(refused).await["error"], "invalid_grant", "{what}");
    // What users met: the new session thrown out at its first refresh, a
    // couple of seconds later.
    app.clock.advance(2);
    let refreshed = app.refresh(client, s(after, "refresh_token"), None).await;
    assert_eq!(
        refreshed.status(),
        StatusCode::OK,
        "{what}: the new session refreshes"
    );
    let refreshed = json(refreshed).await;
    assert_eq!(
        app.me(s(&refreshed, "access_token")).await.status(),
        StatusCode::OK,
        "{what}"
    );
}

async fn every_path_that_ends_all_sessions_spares_a_login_in_the_same_instant(app: TestApp) {
    let client = app.confidential_client("web").await;
    let admin = admin_token(&app).await;
    let paths = [
        Path::SelfService,
        Path::Admin,
        Path::DisableThenEnable,
        Path::PasswordChange,
    ];
    for (i, path) in paths.into_iter().enumerate() {
        let username = format!("user{i}");
        app.user(&username).await;
        let what = format!("{path:?}");
        // The clock does not move between these three steps: the login
        // before, the revocation and the login after share one instant
        // (Sigil's clock has one-second steps, so this is also the same
        // millisecond).
        let before = app.login(&client, &username).await;
        let password = end_all_sessions(&app, path, &username, &before, &admin).await;
        let after = login_with(&app, &client, &username, password).await;
        assert_only_the_later_session_lives(&app, &client, &before, &after, &what).await;
    }
}

async fn a_session_begun_on_another_node_right_after_log_out_everywhere_is_live(app: TestApp) {
    app.user("alice").await;
    let client = app.confidential_client("web").await;
    let other = app.spawn_node().await;
    let before = app.login(&client, "alice").await;
    end_all_sessions(&app, Path::SelfService, "alice", &before, "").await;
    let after = login_with(&other, &client, "alice", PASSWORD).await;
    // The other node has read the revocation (its feed poll, done now).
    other.sigil.revocations_changed(other.clock.now()).await;
    for node in [&app, &other] {
        assert_eq!(
            node.me(s(&after, "access_token")).await.status(),
            StatusCode::OK
        );
        assert_eq!(
            node.me(s(&before, "access_token")).await.status(),
            StatusCode::UNAUTHORIZED
        );
    }
    assert_only_the_later_session_lives(&other, &client, &before, &after, "other node").await;
}

/// The CLI runs on the system clock; the server's clock is set to it before
/// each step, so every time involved is the real one, at whatever point of
/// the second the steps fall.
async fn with_the_real_clock_a_login_right_after_the_cli_revokes_stays_signed_in(app: TestApp) {
    let client = app.confidential_client("web").await;
    let real = || app.clock.set(SystemClock.now());
    for (username, command) in [("carol", "revoke-sessions"), ("dave", "set-password")] {
        app.user(username).await;
        real();
        let before = app.login(&client, username).await;
        let mut cli = std::process::Command::new(env!("CARGO_BIN_EXE_sigil"));
        cli.current_dir(app.dir.path())
            .env_clear()
            .env("SIGIL_DATABASE_URL", &app.database_url)
            .env("SIGIL_ARGON2__MEMORY_KIB", "256")
            .env("SIGIL_ARGON2__ITERATIONS", "1")
            .args(["users", command, username])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        let password = if command == "set-password" {
            cli.arg("--password-stdin");
            NEW_PASSWORD
        } else {
            PASSWORD
        };
        let mut child = cli.spawn().unwrap();
        {
            use std::io::Write;
            let mut stdin = child.stdin.take().unwrap();
            writeln!(stdin, "{NEW_PASSWORD}").unwrap();
        }
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{command}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        real();
        // The CLI is another process: the node learns of it by its poll.
        app.sigil.revocations_changed(app.clock.now()).await;
        let after = login_with(&app, &client, username, password).await;
        real();
        assert_only_the_later_session_lives(&app, &client, &before, &after, command).await;
    }
}

/// A login whose password check began before "log out everywhere" (its
/// `now` is a second earlier) but whose session is stored after it: the
/// session is live, and starts at the revocation, not before it, so its
/// tokens are not caught by the revocation's `user` entry.
async fn a_login_that_began_before_the_revocation_and_ended_after_it_is_dated_after_it(
    app: TestApp,
) {
    app.user("alice").await;
    let client = app.confidential_client("web").await;
    let store = app.sigil.store.as_ref();
    let alice = store.user_by_username("alice").await.unwrap().unwrap();
    let now = app.clock.now();
    let ops = sigil::service::Ops::on(&app.sigil, "test");
    assert_eq!(ops.now(), now);
    sigil::service::users::revoke_sessions(&ops, &alice)
        .await
        .unwrap();
    let (token, family, first) = session_records("began-before", &alice.id, &client.id, now - 1);
    let started = store
        .create_family(&family, Some(&first), Some(&alice.password_hash))
        .await
        .unwrap();
    assert_eq!(started, now, "dated at the revocation, not before it");
    let refreshed = app.refresh(&client, &token, None).await;
    assert_eq!(refreshed.status(), StatusCode::OK, "the session is live");
    let refreshed = json(refreshed).await;
    assert_eq!(
        app.me(s(&refreshed, "access_token")).await.status(),
        StatusCode::OK
    );
}

/// The ordering itself: a revocation's first write (the user row) is held
/// open in another connection while a login runs; the login waits for it
/// and, once it commits, opens a live session dated at the revocation.
async fn a_login_waiting_on_a_revocation_in_progress_is_dated_after_it(app: TestApp) {
    use sqlx::Connection;
    app.user("alice").await;
    let client = app.confidential_client("web").await;
    let alice = app
        .sigil
        .store
        .user_by_username("alice")
        .await
        .unwrap()
        .unwrap();
    let revoked_at = app.clock.now() + 1;
    let statement = "UPDATE users SET sessions_revoked_at = $1 WHERE id = $2";
    let sqlite = app.database_url.starts_with("sqlite");
    // Each backend's own connection type; the same steps.
    macro_rules! hold_then_login {
        ($conn:expr) => {{
            let mut conn = $conn;
            let mut tx = conn.begin().await.unwrap();
            sqlx::query(statement)
                .bind(revoked_at)
                .bind(&alice.id)
                .execute(&mut *tx)
                .await
                .unwrap();
            let login = app.password_grant(&client, "alice", PASSWORD);
            let commit = async {
                // Long enough for the login to reach its write and wait;
                // if it has not, it reads the committed row all the same.
                tokio::time::sleep(std::time::Duration::from_millis(300)).await;
                tx.commit().await.unwrap();
            };
            let (response, ()) = tokio::join!(login, commit);
            response
        }};
    }
    let response = if sqlite {
        hold_then_login!(
            sqlx::SqliteConnection::connect(&app.database_url)
                .await
                .unwrap()
        )
    } else {
        hold_then_login!(
            sqlx::PgConnection::connect(&app.database_url)
                .await
                .unwrap()
        )
    };
    assert_eq!(response.status(), StatusCode::OK);
    let session = json(response).await;
    let claims = claims_of(s(&session, "access_token"));
    assert_eq!(
        claims["iat"], revoked_at,
        "issued no earlier than the revocation"
    );
    app.clock.advance(2);
    let refreshed = app
        .refresh(&client, s(&session, "refresh_token"), None)
        .await;
    assert_eq!(refreshed.status(), StatusCode::OK, "the session is live");
}
