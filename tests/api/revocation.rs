//! RFC 7009 revocation, "log out everywhere", and the revocation feed.

use reqwest::StatusCode;
use serde_json::{Value, json as j};

use crate::helpers::{TestApp, TestClient, json};
use crate::on_both_backends;

on_both_backends!(
    revoking_a_refresh_token_ends_its_session_and_its_access_tokens,
    revoking_an_access_token_stops_only_that_token,
    revocation_answers_200_for_unknown_or_repeated_tokens_but_checks_the_request,
    a_client_cannot_revoke_another_clients_tokens,
    log_out_everywhere_revokes_every_session_of_the_user,
    the_feed_lists_revocations_after_a_cursor_until_they_expire,
);

fn s<'a>(body: &'a Value, field: &str) -> &'a str {
    body[field]
        .as_str()
        .unwrap_or_else(|| panic!("{field} in {body}"))
}

async fn revoked_ok(response: reqwest::Response) {
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["cache-control"], "no-store");
    assert_eq!(json(response).await, j!({}));
}

async fn revoking_a_refresh_token_ends_its_session_and_its_access_tokens(app: TestApp) {
    app.user("alice").await;
    let client = app.confidential_client("web").await;
    let session = app.login(&client, "alice").await;
    revoked_ok(app.revoke(&client, s(&session, "refresh_token")).await).await;
    let refresh = app
        .refresh(&client, s(&session, "refresh_token"), None)
        .await;
    assert_eq!(json(refresh).await["error"], "invalid_grant");
    assert_eq!(
        app.me(s(&session, "access_token")).await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        app.introspect(&client, s(&session, "access_token")).await,
        j!({"active": false})
    );
}

async fn revoking_an_access_token_stops_only_that_token(app: TestApp) {
    app.user("alice").await;
    let client = app.confidential_client("web").await;
    let one = app.login(&client, "alice").await;
    let two = app.login(&client, "alice").await;
    revoked_ok(app.revoke(&client, s(&one, "access_token")).await).await;
    let response = app.me(s(&one, "access_token")).await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert!(
        response.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .contains("revoked")
    );
    assert_eq!(
        app.me(s(&two, "access_token")).await.status(),
        StatusCode::OK
    );
    // The session itself lives on: its refresh token still works.
    let refreshed = app.refresh(&client, s(&one, "refresh_token"), None).await;
    assert_eq!(refreshed.status(), StatusCode::OK);
}

async fn revocation_answers_200_for_unknown_or_repeated_tokens_but_checks_the_request(
    app: TestApp,
) {
    app.user("alice").await;
    let client = app.confidential_client("web").await;
    let session = app.login(&client, "alice").await;
    for token in [
        "garbage",
        "sigil_rt_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        "a.b.c",
    ] {
        revoked_ok(app.revoke(&client, token).await).await;
    }
    revoked_ok(app.revoke(&client, s(&session, "refresh_token")).await).await;
    revoked_ok(app.revoke(&client, s(&session, "refresh_token")).await).await;
    let hinted = app
        .client_post(
            "/oauth/revoke",
            &client,
            &[
                ("token", s(&session, "access_token")),
                ("token_type_hint", "refresh_token"),
            ],
        )
        .await;
    revoked_ok(hinted).await;

    let missing = app.client_post("/oauth/revoke", &client, &[]).await;
    assert_eq!(missing.status(), StatusCode::BAD_REQUEST);
    assert_eq!(json(missing).await["error"], "invalid_request");
    let bad_client = TestClient {
        id: "web".into(),
        secret: Some("wrong".into()),
    };
    let unauthenticated = app.revoke(&bad_client, s(&session, "access_token")).await;
    assert_eq!(unauthenticated.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(json(unauthenticated).await["error"], "invalid_client");
}

async fn a_client_cannot_revoke_another_clients_tokens(app: TestApp) {
    app.user("alice").await;
    let web = app.confidential_client("web").await;
    let attacker = app.confidential_client("attacker").await;
    let session = app.login(&web, "alice").await;
    revoked_ok(app.revoke(&attacker, s(&session, "refresh_token")).await).await;
    revoked_ok(app.revoke(&attacker, s(&session, "access_token")).await).await;
    assert_eq!(
        app.me(s(&session, "access_token")).await.status(),
        StatusCode::OK
    );
    assert_eq!(
        app.refresh(&web, s(&session, "refresh_token"), None)
            .await
            .status(),
        StatusCode::OK
    );
}

async fn log_out_everywhere_revokes_every_session_of_the_user(app: TestApp) {
    app.user("alice").await;
    app.user("bob").await;
    let client = app.confidential_client("web").await;
    let laptop = app.login(&client, "alice").await;
    let phone = app.login(&client, "alice").await;
    let bob = app.login(&client, "bob").await;

    let response = app
        .post("/users/me/revoke-sessions")
        .bearer_auth(s(&phone, "access_token"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(json(response).await["revoked_sessions"], 2);
    for session in [&laptop, &phone] {
        assert_eq!(
            app.me(s(session, "access_token")).await.status(),
            StatusCode::UNAUTHORIZED
        );
        let refresh = app
            .refresh(&client, s(session, "refresh_token"), None)
            .await;
        assert_eq!(json(refresh).await["error"], "invalid_grant");
    }
    assert_eq!(
        app.me(s(&bob, "access_token")).await.status(),
        StatusCode::OK,
        "other users untouched"
    );
    // Logging in again afterwards works.
    app.clock.advance(1);
    let again = app.login(&client, "alice").await;
    assert_eq!(
        app.me(s(&again, "access_token")).await.status(),
        StatusCode::OK
    );
}

async fn the_feed_lists_revocations_after_a_cursor_until_they_expire(app: TestApp) {
    app.user("alice").await;
    app.user("bob").await;
    let client = app.confidential_client("web").await;
    let resource = app
        .client(
            "notes-api",
            false,
            &[sigil::clients::GrantType::ClientCredentials],
            "",
            None,
        )
        .await;

    let start = app.feed(&resource, "0").await;
    assert_eq!(start["entries"], j!([]));
    let cursor = s(&start, "cursor").to_string();

    let access = app.login(&client, "alice").await;
    let session = app.login(&client, "alice").await;
    let bob = app.login(&client, "bob").await;
    revoked_ok(app.revoke(&client, s(&access, "access_token")).await).await;
    revoked_ok(app.revoke(&client, s(&session, "refresh_token")).await).await;
    let out = app
        .post("/users/me/revoke-sessions")
        .bearer_auth(s(&bob, "access_token"))
        .send()
        .await
        .unwrap();
    assert_eq!(out.status(), StatusCode::OK);

    let page = app.feed(&resource, &cursor).await;
    let entries = page["entries"].as_array().unwrap();
    assert_eq!(entries.len(), 4, "{page}");
    let claims = crate::helpers::claims_of;
    let access_claims = claims(s(&access, "access_token"));
    assert_eq!(entries[0]["type"], "token");
    assert_eq!(entries[0]["jti"], access_claims["jti"]);
    assert!(entries[0]["exp"].as_i64().unwrap() >= access_claims["exp"].as_i64().unwrap());
    assert_eq!(entries[1]["type"], "session");
    assert_eq!(
        entries[1]["sid"],
        claims(s(&session, "access_token"))["sid"]
    );
    // "Log out everywhere": the user entry denies tokens of earlier
    // seconds; the session that was active this second has its own entry,
    // so a login right after the revocation is not caught by either.
    let bob_claims = claims(s(&bob, "access_token"));
    assert_eq!(entries[2]["type"], "session");
    assert_eq!(entries[2]["sid"], bob_claims["sid"]);
    assert_eq!(entries[3]["type"], "user");
    assert_eq!(entries[3]["sub"], bob_claims["sub"]);
    assert_eq!(
        entries[3]["not_before"].as_i64().unwrap(),
        bob_claims["iat"].as_i64().unwrap() - 1,
        "the clock has not moved since bob's login"
    );
    assert_eq!(page["more"], false);

    let next = app.feed(&resource, s(&page, "cursor")).await;
    assert_eq!(next["entries"], j!([]), "nothing new after the cursor");
    assert_eq!(next["cursor"], page["cursor"]);

    // Once every token an entry could match has expired, it leaves the feed.
    app.clock.advance(900 + 61);
    assert_eq!(app.feed(&resource, "0").await["entries"], j!([]));

    // The feed is for authenticated confidential clients only.
    let anonymous = app.get("/oauth/revocations?since=0").send().await.unwrap();
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
    let public = app
        .client(
            "spa",
            true,
            &[sigil::clients::GrantType::Password],
            "",
            None,
        )
        .await;
    let public_response = app
        .get("/oauth/revocations")
        .basic_auth(&public.id, Some(""))
        .send()
        .await
        .unwrap();
    assert_eq!(public_response.status(), StatusCode::UNAUTHORIZED);
    let bad = app
        .get("/oauth/revocations?since=-4")
        .basic_auth(&resource.id, resource.secret.as_deref())
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), StatusCode::BAD_REQUEST);
    assert_eq!(json(bad).await["error"], "invalid_request");
}
