//! What the OpenID Foundation's conformance test plans (Basic OP, Config OP,
//! RP-Initiated Logout OP) check, beyond the flows the other files test:
//! each test names the suite's modules whose behaviour it asserts. The
//! suite's own default client is confidential and sends neither PKCE nor a
//! nonce; everything else here uses the helpers' PKCE client.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use reqwest::StatusCode;
use serde_json::Value;

use crate::browser::{
    Browser, LOGOUT_REDIRECT, REDIRECT, code_client, code_for, exchange, pkce, request,
};
use crate::helpers::{PASSWORD, TestApp, TestClient, json};
use crate::on_both_backends;

on_both_backends!(
    the_suites_default_client_signs_in_without_pkce_or_nonce,
    a_code_reused_after_30_seconds_revokes_the_first_access_token,
    a_post_to_authorize_works_as_a_get_does,
    prompt_none_with_the_users_id_token_hint_returns_a_code,
    logout_refuses_a_bad_hint_or_redirect_and_keeps_the_session,
    logout_without_a_hint_or_state_behaves_as_the_logout_plan_expects,
);

fn decode_segment(token: &str, index: usize) -> Value {
    let part = token.split('.').nth(index).expect("a JWS segment");
    serde_json::from_slice(&B64.decode(part).expect("base64url")).expect("JSON")
}

async fn userinfo(app: &TestApp, token: &str) -> StatusCode {
    app.get("/userinfo")
        .bearer_auth(token)
        .send()
        .await
        .expect("request")
        .status()
}

/// A signed-in browser, the ID token and the access token of `client`.
async fn signed_in(
    app: &TestApp,
    browser: &mut Browser<'_>,
    client: &TestClient,
) -> (String, String) {
    let (code, verifier) = code_for(browser, client, "alice").await;
    let tokens: Value = json(exchange(app, client, &code, &verifier).await).await;
    (
        tokens["id_token"].as_str().expect("id_token").to_string(),
        tokens["access_token"]
            .as_str()
            .expect("access_token")
            .to_string(),
    )
}

async fn logout(browser: &mut Browser<'_>, pairs: &[(&str, &str)]) -> crate::browser::Page {
    let mut query = form_urlencoded::Serializer::new(String::new());
    for (k, v) in pairs {
        query.append_pair(k, v);
    }
    browser.get(&format!("/logout?{}", query.finish())).await
}

/// Whether the browser still has a session: `prompt=none` answers with a
/// code, or with `login_required` (how the logout plan checks it).
async fn still_signed_in(browser: &mut Browser<'_>, client: &TestClient) -> bool {
    let (_, challenge) = pkce();
    let mut params = request(client, &challenge);
    params.push(("prompt", "none"));
    let page = browser.authorize(&params).await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
    let back = page.redirect_params();
    match back.get("error").map(String::as_str) {
        None => true,
        Some("login_required") => false,
        Some(other) => panic!("prompt=none answered {other}"),
    }
}

/// oidcc-server, oidcc-ensure-request-without-nonce-succeeds-for-code-flow:
/// a confidential client without code_challenge or nonce gets its code,
/// exchanges it without a verifier, and the ID token has no nonce.
async fn the_suites_default_client_signs_in_without_pkce_or_nonce(app: TestApp) {
    app.user("alice").await;
    let client = code_client(&app, "suite", false, false).await;
    let mut browser = Browser::new(&app);
    let page = browser
        .authorize(&[
            ("response_type", "code"),
            ("client_id", "suite"),
            ("redirect_uri", REDIRECT),
            ("scope", "openid"),
            ("state", "s"),
        ])
        .await;
    let page = browser.sign_in(&page, "alice", PASSWORD).await;
    let page = browser.consent(&page, "allow").await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
    let code = page.redirect_params()["code"].clone();
    let response = app
        .token(
            &client,
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", REDIRECT),
            ],
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let tokens: Value = response.json().await.expect("json");
    let claims = decode_segment(tokens["id_token"].as_str().expect("id_token"), 1);
    assert!(claims.get("nonce").is_none(), "{claims}");
    assert!(claims["at_hash"].is_string(), "{claims}");
    assert_eq!(claims["aud"], "suite");
}

/// oidcc-codereuse-30seconds: the second exchange 30 s later is refused
/// and the access token of the first stops working at /userinfo.
async fn a_code_reused_after_30_seconds_revokes_the_first_access_token(app: TestApp) {
    app.user("alice").await;
    let client = code_client(&app, "web", false, false).await;
    let mut browser = Browser::new(&app);
    let (code, verifier) = code_for(&mut browser, &client, "alice").await;
    let first: Value = json(exchange(&app, &client, &code, &verifier).await).await;
    let access = first["access_token"].as_str().expect("access token");
    assert_eq!(userinfo(&app, access).await, StatusCode::OK);
    app.clock.advance(30);
    let again = exchange(&app, &client, &code, &verifier).await;
    assert_eq!(again.status(), StatusCode::BAD_REQUEST);
    assert_eq!(json(again).await["error"], "invalid_grant");
    assert_eq!(userinfo(&app, access).await, StatusCode::UNAUTHORIZED);
}

/// oidcc-ensure-post-request-succeeds: the authorization request as a form
/// POST, first without a session (the sign-in form), then with one.
async fn a_post_to_authorize_works_as_a_get_does(app: TestApp) {
    app.user("alice").await;
    let client = code_client(&app, "web", true, true).await;
    let mut browser = Browser::new(&app);
    let (_, challenge) = pkce();
    let params = request(&client, &challenge);
    let page = browser.post("/authorize", &params).await;
    assert!(page.is_sign_in_form(), "{}", page.body);
    let page = browser.sign_in(&page, "alice", PASSWORD).await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
    assert_eq!(page.redirect_params()["state"], "st-123");
    let page = browser.post("/authorize", &params).await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
    assert!(page.redirect_params().contains_key("code"));
}

/// oidcc-id-token-hint: `prompt=none` with the signed-in user's ID token
/// as `id_token_hint` answers with a code.
async fn prompt_none_with_the_users_id_token_hint_returns_a_code(app: TestApp) {
    app.user("alice").await;
    let client = code_client(&app, "web", true, true).await;
    let mut browser = Browser::new(&app);
    let (id_token, _) = signed_in(&app, &mut browser, &client).await;
    let (_, challenge) = pkce();
    let mut params = request(&client, &challenge);
    params.extend([("prompt", "none"), ("id_token_hint", id_token.as_str())]);
    let page = browser.authorize(&params).await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
    let back = page.redirect_params();
    assert!(back.contains_key("code"), "{back:?}");
}

/// oidcc-rp-initiated-logout-bad-post-logout-redirect-uri,
/// -query-added-to-post-logout-redirect-uri, -modified-id-token-hint and
/// -bad-id-token-hint: Sigil's error page, no redirect, and the session
/// stays; then -no-state: the registered URI exactly, signed out.
async fn logout_refuses_a_bad_hint_or_redirect_and_keeps_the_session(app: TestApp) {
    app.user("alice").await;
    let client = code_client(&app, "web", true, true).await;
    let mut browser = Browser::new(&app);
    let (hint, _) = signed_in(&app, &mut browser, &client).await;
    let payload = hint.split('.').nth(1).expect("payload");
    let unsigned = format!(
        "{}.{payload}.",
        B64.encode(br#"{"alg":"none","typ":"JWT"}"#)
    );
    let kid = decode_segment(&hint, 0)["kid"]
        .as_str()
        .expect("kid")
        .to_string();
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
    header.kid = Some(kid);
    let foreign = jsonwebtoken::encode(
        &header,
        &decode_segment(&hint, 1),
        &jsonwebtoken::EncodingKey::from_secret(b"not sigil's key"),
    )
    .expect("a token signed by someone else");
    let with_query = format!("{LOGOUT_REDIRECT}?x=1");
    for (what, pairs) in [
        (
            "an unregistered post_logout_redirect_uri",
            vec![
                ("id_token_hint", hint.as_str()),
                ("post_logout_redirect_uri", "https://evil.example/bye"),
            ],
        ),
        (
            "a query added to the registered URI",
            vec![
                ("id_token_hint", hint.as_str()),
                ("post_logout_redirect_uri", with_query.as_str()),
            ],
        ),
        (
            "an unsigned (alg none) hint",
            vec![
                ("id_token_hint", unsigned.as_str()),
                ("post_logout_redirect_uri", LOGOUT_REDIRECT),
            ],
        ),
        (
            "a hint signed by another key",
            vec![
                ("id_token_hint", foreign.as_str()),
                ("post_logout_redirect_uri", LOGOUT_REDIRECT),
            ],
        ),
    ] {
        let page = logout(&mut browser, &pairs).await;
        assert_eq!(
            page.status,
            StatusCode::BAD_REQUEST,
            "{what}: {}",
            page.body
        );
        assert!(page.headers.get("location").is_none(), "{what}");
        assert!(page.body.contains("id=\"error\""), "{what}: {}", page.body);
        assert!(still_signed_in(&mut browser, &client).await, "{what}");
    }
    let page = logout(
        &mut browser,
        &[
            ("id_token_hint", hint.as_str()),
            ("post_logout_redirect_uri", LOGOUT_REDIRECT),
        ],
    )
    .await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
    assert_eq!(page.location(), LOGOUT_REDIRECT, "no state: nothing added");
    assert!(!still_signed_in(&mut browser, &client).await);
}

/// oidcc-rp-initiated-logout-no-params, -only-state and -no-id-token-hint:
/// without a hint Sigil asks before ending the session, and a
/// post_logout_redirect_uri without a hint naming its client is refused.
async fn logout_without_a_hint_or_state_behaves_as_the_logout_plan_expects(app: TestApp) {
    app.user("alice").await;
    let client = code_client(&app, "web", true, true).await;
    let mut browser = Browser::new(&app);
    signed_in(&app, &mut browser, &client).await;
    for pairs in [vec![], vec![("state", "only-state")]] {
        let page = logout(&mut browser, &pairs).await;
        assert_eq!(page.status, StatusCode::OK, "{pairs:?}");
        assert!(page.body.contains("id=\"sign-out-form\""), "{}", page.body);
        assert!(still_signed_in(&mut browser, &client).await, "asks first");
    }
    let page = logout(
        &mut browser,
        &[
            ("post_logout_redirect_uri", LOGOUT_REDIRECT),
            ("state", "s"),
        ],
    )
    .await;
    assert_eq!(page.status, StatusCode::BAD_REQUEST);
    assert!(page.body.contains("id_token_hint"), "{}", page.body);
    assert!(still_signed_in(&mut browser, &client).await);
    // Confirming the no-params page ends the session.
    let page = logout(&mut browser, &[]).await;
    let csrf = page.field("csrf").expect("csrf");
    let carried = page.field("request").unwrap_or_default();
    let done = browser
        .post(
            "/logout/confirm",
            &[
                ("csrf", &csrf),
                ("request", &carried),
                ("action", "sign-out"),
            ],
        )
        .await;
    assert_eq!(done.status, StatusCode::OK, "{}", done.body);
    assert!(done.body.contains("id=\"signed-out\""), "{}", done.body);
    assert!(!still_signed_in(&mut browser, &client).await);
}
