//! The code exchange, ID tokens, UserInfo, RP-initiated logout and the
//! discovery documents (RFC 6749 §4.1.3, RFC 7636 §4.6, OIDC Core §2, §3.1.3,
//! §5.3, RP-Initiated Logout 1.0, OIDC Discovery §3, RFC 8414).

use jsonwebtoken::{DecodingKey, Validation};
use reqwest::StatusCode;
use serde_json::Value;

use crate::browser::{
    Browser, LOGOUT_REDIRECT, REDIRECT, code_client, code_for, exchange, pkce, request,
};
use crate::helpers::{Backend, PASSWORD, TestApp, json};
use crate::on_both_backends;

on_both_backends!(
    the_exchange_returns_access_refresh_and_an_id_token_that_verify_through_the_jwks,
    a_replayed_code_is_refused_and_revokes_what_it_issued,
    a_code_binds_its_client_redirect_uri_and_pkce_verifier,
    a_code_expires_after_a_minute,
    userinfo_answers_by_get_post_header_and_post_body_with_claims_by_scope,
    an_id_token_is_never_accepted_as_an_access_token,
    logout_with_a_hint_ends_the_session_and_returns_with_state,
    logout_without_a_hint_asks_first,
    logout_refuses_an_unregistered_post_logout_redirect_uri,
    the_account_page_ends_sessions_and_revokes_consent,
);

on_both_backends!(
    spawn = super::throttled;
    the_sign_in_form_is_throttled_like_the_password_grant,
);

async fn throttled(backend: Backend) -> Option<TestApp> {
    TestApp::spawn_with(backend, |c| {
        c.throttle.pair_free_failures = 1;
        c.throttle.pair_limit = 3;
        c.throttle.max_delay = std::time::Duration::ZERO;
    })
    .await
}

/// Checks an ID token with the JWKS alone (the `jsonwebtoken` crate, not
/// Sigil's code) and returns its claims.
async fn verified_id_token(app: &TestApp, token: &str, client_id: &str) -> Value {
    let header = jsonwebtoken::decode_header(token).expect("header");
    assert_eq!(header.typ.as_deref(), Some("JWT"));
    assert_eq!(
        header.alg,
        jsonwebtoken::Algorithm::RS256,
        "OIDC's mandatory algorithm by default"
    );
    let jwks = app.jwks().await;
    let jwk = jwks.find(&header.kid.expect("kid")).expect("published");
    let mut validation = Validation::new(jsonwebtoken::Algorithm::RS256);
    validation.set_issuer(&[&app.sigil.config.issuer]);
    validation.set_audience(&[client_id]);
    validation.set_required_spec_claims(&["exp", "iss", "aud", "sub", "iat"]);
    let key = DecodingKey::from_jwk(jwk).expect("key");
    jsonwebtoken::decode::<Value>(token, &key, &validation)
        .expect("ID token verifies")
        .claims
}

async fn the_exchange_returns_access_refresh_and_an_id_token_that_verify_through_the_jwks(
    app: TestApp,
) {
    app.user("alice").await;
    let client = code_client(&app, "web", false, false).await;
    let mut browser = Browser::new(&app);
    let (code, verifier) = code_for(&mut browser, &client, "alice").await;
    let response = exchange(&app, &client, &code, &verifier).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["cache-control"], "no-store");
    let tokens: Value = response.json().await.expect("json");
    assert_eq!(tokens["token_type"], "Bearer");
    let access = tokens["access_token"].as_str().expect("access token");
    let claims =
        verified_id_token(&app, tokens["id_token"].as_str().expect("id_token"), "web").await;
    let me: Value = json(app.me(access).await).await;
    assert_eq!(claims["sub"], me["id"]);
    assert_eq!(claims["nonce"], "n-456");
    assert_eq!(claims["azp"], "web");
    assert!(claims["sid"].is_string() && claims["auth_time"].is_i64());
    // at_hash: the left half of SHA-256 of the access token.
    let digest = ring::digest::digest(&ring::digest::SHA256, access.as_bytes());
    let expected = base64::Engine::encode(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD,
        &digest.as_ref()[..16],
    );
    assert_eq!(claims["at_hash"], expected);
    // The refresh token starts a family like any login's.
    let refresh = tokens["refresh_token"].as_str().expect("refresh token");
    let refreshed = app.refresh(&client, refresh, None).await;
    assert_eq!(refreshed.status(), StatusCode::OK);
    // Without openid there is no ID token.
    let (verifier, challenge) = pkce();
    let mut params: Vec<(&str, &str)> = request(&client, &challenge)
        .into_iter()
        .filter(|(k, _)| *k != "scope")
        .collect();
    params.push(("scope", "profile"));
    let page = browser.authorize(&params).await;
    let page = if page.is_consent_form() {
        browser.consent(&page, "allow").await
    } else {
        page
    };
    let code = page.redirect_params()["code"].clone();
    let tokens: Value = json(exchange(&app, &client, &code, &verifier).await).await;
    assert!(tokens.get("id_token").is_none());
}

async fn a_replayed_code_is_refused_and_revokes_what_it_issued(app: TestApp) {
    app.user("alice").await;
    let client = code_client(&app, "web", true, true).await;
    let mut browser = Browser::new(&app);
    let (code, verifier) = code_for(&mut browser, &client, "alice").await;
    let first: Value = json(exchange(&app, &client, &code, &verifier).await).await;
    let again = exchange(&app, &client, &code, &verifier).await;
    assert_eq!(again.status(), StatusCode::BAD_REQUEST);
    assert_eq!(json(again).await["error"], "invalid_grant");
    let access = first["access_token"].as_str().expect("access");
    assert_eq!(
        app.me(access).await.status(),
        StatusCode::UNAUTHORIZED,
        "the first access token is revoked"
    );
    let refresh = app
        .refresh(
            &client,
            first["refresh_token"].as_str().expect("refresh"),
            None,
        )
        .await;
    assert_eq!(
        json(refresh).await["error"],
        "invalid_grant",
        "and its refresh token"
    );
}

async fn a_code_binds_its_client_redirect_uri_and_pkce_verifier(app: TestApp) {
    app.user("alice").await;
    let client = code_client(&app, "web", true, true).await;
    let other = code_client(&app, "other", true, true).await;
    let confidential = code_client(&app, "backend", false, true).await;
    let mut browser = Browser::new(&app);
    let grant = |code: &str, redirect: &str, verifier: Option<&str>| {
        let mut form = vec![
            ("grant_type", "authorization_code".to_string()),
            ("code", code.to_string()),
            ("redirect_uri", redirect.to_string()),
        ];
        if let Some(v) = verifier {
            form.push(("code_verifier", v.to_string()));
        }
        form
    };
    let refused = |response: reqwest::Response| async {
        assert_eq!(response.status(), StatusCode::BAD_REQUEST);
        json(response).await["error"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    };

    let (code, verifier) = code_for(&mut browser, &client, "alice").await;
    let form = grant(&code, REDIRECT, Some(&verifier));
    assert_eq!(
        refused(app.token(&other, &as_refs(&form)).await).await,
        "invalid_grant",
        "another client's code"
    );
    assert_eq!(
        refused(app.token(&client, &as_refs(&form)).await).await,
        "invalid_grant",
        "and it is burnt"
    );

    let (code, verifier) = code_for(&mut browser, &client, "alice").await;
    let form = grant(&code, "http://127.0.0.1/native", Some(&verifier));
    assert_eq!(
        refused(app.token(&client, &as_refs(&form)).await).await,
        "invalid_grant",
        "redirect URI swap"
    );

    let (code, _) = code_for(&mut browser, &client, "alice").await;
    let (wrong, _) = pkce();
    let form = grant(&code, REDIRECT, Some(&wrong));
    assert_eq!(
        refused(app.token(&client, &as_refs(&form)).await).await,
        "invalid_grant",
        "PKCE mismatch"
    );

    let (code, _) = code_for(&mut browser, &client, "alice").await;
    let form = grant(&code, REDIRECT, None);
    assert_eq!(
        refused(app.token(&client, &as_refs(&form)).await).await,
        "invalid_grant",
        "verifier missing"
    );

    // Downgrade: a code issued without a challenge, redeemed with a verifier.
    let (verifier, _) = pkce();
    let params: Vec<(&str, &str)> = request(&confidential, "")
        .into_iter()
        .filter(|(k, _)| !k.starts_with("code_challenge"))
        .collect();
    let page = browser.authorize(&params).await;
    let code = page.redirect_params()["code"].clone();
    let form = grant(&code, REDIRECT, Some(&verifier));
    assert_eq!(
        refused(app.token(&confidential, &as_refs(&form)).await).await,
        "invalid_grant",
        "PKCE downgrade"
    );

    let form = vec![
        ("grant_type", "authorization_code".to_string()),
        ("redirect_uri", REDIRECT.to_string()),
    ];
    assert_eq!(
        refused(app.token(&client, &as_refs(&form)).await).await,
        "invalid_request",
        "no code"
    );
    let form = grant("not-a-code", REDIRECT, Some(&verifier));
    assert_eq!(
        refused(app.token(&client, &as_refs(&form)).await).await,
        "invalid_grant",
        "unknown code"
    );
    // A client without the grant may not redeem codes at all.
    let legacy = app.confidential_client("legacy").await;
    let response = app.token(&legacy, &as_refs(&form)).await;
    assert_eq!(json(response).await["error"], "unauthorized_client");
}

async fn a_code_expires_after_a_minute(app: TestApp) {
    app.user("alice").await;
    let client = code_client(&app, "web", true, true).await;
    let mut browser = Browser::new(&app);
    let (code, verifier) = code_for(&mut browser, &client, "alice").await;
    app.clock.advance(61);
    let response = exchange(&app, &client, &code, &verifier).await;
    assert_eq!(json(response).await["error"], "invalid_grant");
}

async fn userinfo_answers_by_get_post_header_and_post_body_with_claims_by_scope(app: TestApp) {
    app.user("alice").await;
    let client = code_client(&app, "web", true, true).await;
    let mut browser = Browser::new(&app);
    let (code, verifier) = code_for(&mut browser, &client, "alice").await;
    let tokens: Value = json(exchange(&app, &client, &code, &verifier).await).await;
    let access = tokens["access_token"].as_str().expect("access");
    let by_get = app
        .get("/userinfo")
        .bearer_auth(access)
        .send()
        .await
        .expect("get");
    let by_header = app
        .post("/userinfo")
        .bearer_auth(access)
        .send()
        .await
        .expect("post");
    let by_body = app
        .post("/userinfo")
        .form(&[("access_token", access)])
        .send()
        .await
        .expect("body");
    let mut answers = Vec::new();
    for response in [by_get, by_header, by_body] {
        assert_eq!(response.status(), StatusCode::OK);
        answers.push(json(response).await);
    }
    assert!(answers.windows(2).all(|w| w[0] == w[1]));
    let info = &answers[0];
    assert_eq!(info["preferred_username"], "alice");
    assert_eq!(info["email"], "alice@example.com");
    assert_eq!(info["email_verified"], false);
    let me: Value = json(app.me(access).await).await;
    assert_eq!(info["sub"], me["id"]);

    let both = app
        .post("/userinfo")
        .bearer_auth(access)
        .form(&[("access_token", access)])
        .send()
        .await
        .expect("both");
    assert_eq!(
        both.status(),
        StatusCode::UNAUTHORIZED,
        "two methods at once"
    );
    let none = app.get("/userinfo").send().await.expect("none");
    assert_eq!(none.status(), StatusCode::UNAUTHORIZED);
    assert!(
        none.headers()["www-authenticate"]
            .to_str()
            .expect("challenge")
            .starts_with("Bearer")
    );

    // Only the scopes granted: openid alone is the subject only.
    let (verifier, challenge) = pkce();
    let mut params: Vec<(&str, &str)> = request(&client, &challenge)
        .into_iter()
        .filter(|(k, _)| *k != "scope")
        .collect();
    params.push(("scope", "openid"));
    let page = browser.authorize(&params).await;
    let code = page.redirect_params()["code"].clone();
    let tokens: Value = json(exchange(&app, &client, &code, &verifier).await).await;
    let access = tokens["access_token"].as_str().expect("access");
    let info = json(
        app.get("/userinfo")
            .bearer_auth(access)
            .send()
            .await
            .expect("get"),
    )
    .await;
    assert_eq!(info.as_object().map(|o| o.len()), Some(1), "{info}");

    // A token without openid (the password grant's) is not for UserInfo.
    let legacy = app.confidential_client("legacy").await;
    let token = app.access_token(&legacy, "alice").await;
    let response = app
        .get("/userinfo")
        .bearer_auth(&token)
        .send()
        .await
        .expect("get");
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert!(
        response.headers()["www-authenticate"]
            .to_str()
            .expect("challenge")
            .contains("insufficient_scope")
    );
}

async fn an_id_token_is_never_accepted_as_an_access_token(app: TestApp) {
    app.user("alice").await;
    let client = code_client(&app, "web", true, true).await;
    let mut browser = Browser::new(&app);
    let (code, verifier) = code_for(&mut browser, &client, "alice").await;
    let tokens: Value = json(exchange(&app, &client, &code, &verifier).await).await;
    let id_token = tokens["id_token"].as_str().expect("id_token");
    assert_eq!(app.me(id_token).await.status(), StatusCode::UNAUTHORIZED);
    let userinfo = app
        .get("/userinfo")
        .bearer_auth(id_token)
        .send()
        .await
        .expect("get");
    assert_eq!(userinfo.status(), StatusCode::UNAUTHORIZED);
    let introspector = app
        .client(
            "introspector",
            false,
            &[sigil::clients::GrantType::ClientCredentials],
            "",
            None,
        )
        .await;
    assert_eq!(
        app.introspect(&introspector, id_token).await["active"],
        false
    );
}

async fn logout_with_a_hint_ends_the_session_and_returns_with_state(app: TestApp) {
    app.user("alice").await;
    let client = code_client(&app, "web", true, true).await;
    let mut browser = Browser::new(&app);
    let (code, verifier) = code_for(&mut browser, &client, "alice").await;
    let tokens: Value = json(exchange(&app, &client, &code, &verifier).await).await;
    let hint = tokens["id_token"].as_str().expect("id_token");
    // Long after the ID token expired, the hint still names the session.
    app.clock.advance(3600);
    let query = form_urlencoded::Serializer::new(String::new())
        .append_pair("id_token_hint", hint)
        .append_pair("post_logout_redirect_uri", LOGOUT_REDIRECT)
        .append_pair("state", "bye-1")
        .finish();
    let page = browser.get(&format!("/logout?{query}")).await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
    assert_eq!(page.location(), format!("{LOGOUT_REDIRECT}?state=bye-1"));
    let (_, challenge) = pkce();
    assert!(
        browser
            .authorize(&request(&client, &challenge))
            .await
            .is_sign_in_form(),
        "signed out"
    );
    // Without a redirect URI: Sigil's own signed-out page.
    let page = browser.get(&format!("/logout?id_token_hint={hint}")).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("id=\"signed-out\""));
}

async fn logout_without_a_hint_asks_first(app: TestApp) {
    app.user("alice").await;
    let client = code_client(&app, "web", true, true).await;
    let mut browser = Browser::new(&app);
    code_for(&mut browser, &client, "alice").await;
    let page = browser
        .get(&format!(
            "/logout?client_id=web&post_logout_redirect_uri={LOGOUT_REDIRECT}&state=s"
        ))
        .await;
    assert!(page.body.contains("id=\"sign-out-form\""), "{}", page.body);
    let (_, challenge) = pkce();
    let still = browser.authorize(&request(&client, &challenge)).await;
    assert_eq!(
        still.status,
        StatusCode::SEE_OTHER,
        "not signed out before confirming"
    );
    let csrf = page.field("csrf").expect("csrf");
    let carried = page.field("request").expect("request");
    let forged = browser
        .post("/logout/confirm", &[("csrf", "x"), ("request", &carried)])
        .await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    let done = browser
        .post("/logout/confirm", &[("csrf", &csrf), ("request", &carried)])
        .await;
    assert_eq!(done.location(), format!("{LOGOUT_REDIRECT}?state=s"));
    assert!(
        browser
            .authorize(&request(&client, &challenge))
            .await
            .is_sign_in_form()
    );
}

async fn logout_refuses_an_unregistered_post_logout_redirect_uri(app: TestApp) {
    let _client = code_client(&app, "web", true, true).await;
    let mut browser = Browser::new(&app);
    for query in [
        "client_id=web&post_logout_redirect_uri=https://evil.example/",
        "post_logout_redirect_uri=https://app.example/bye",
        "id_token_hint=not.a.token",
        "client_id=nobody",
    ] {
        let page = browser.get(&format!("/logout?{query}")).await;
        assert_eq!(page.status, StatusCode::BAD_REQUEST, "{query}");
        assert!(page.headers.get("location").is_none());
    }
}

async fn the_account_page_ends_sessions_and_revokes_consent(app: TestApp) {
    app.user("alice").await;
    let client = code_client(&app, "web", true, false).await;
    let mut laptop = Browser::new(&app);
    let mut phone = Browser::new(&app);
    code_for(&mut laptop, &client, "alice").await;
    code_for(&mut phone, &client, "alice").await;
    let page = laptop.get("/account").await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert_eq!(
        page.body.matches("TestBrowser/1.0").count(),
        2,
        "two signed-in browsers"
    );
    assert!(page.body.contains("id=\"revoke-web\""));
    let csrf = page.field("csrf").expect("csrf");
    // End the phone's session (the row that is not "this browser").
    let sids: Vec<String> = page
        .body
        .match_indices("name=\"sid\" value=\"")
        .map(|(i, m)| {
            page.body[i + m.len()..]
                .split('"')
                .next()
                .unwrap_or_default()
                .to_string()
        })
        .collect();
    assert_eq!(sids.len(), 2);
    for sid in &sids {
        let row_start = page.body.find(sid.as_str()).unwrap_or_default();
        let before = &page.body[..row_start];
        let row = &before[before.rfind("<li>").unwrap_or_default()..];
        if !row.contains("this browser") {
            laptop
                .post("/account/sessions/end", &[("csrf", &csrf), ("sid", sid)])
                .await;
        }
    }
    assert_eq!(
        phone.get("/account").await.status,
        StatusCode::SEE_OTHER,
        "the phone is signed out"
    );
    assert_eq!(
        laptop.get("/account").await.status,
        StatusCode::OK,
        "the laptop is not"
    );
    // Revoke the consent: the next request asks again.
    laptop
        .post(
            "/account/consents/revoke",
            &[("csrf", &csrf), ("client_id", "web")],
        )
        .await;
    let (_, challenge) = pkce();
    assert!(
        laptop
            .authorize(&request(&client, &challenge))
            .await
            .is_consent_form()
    );
    // Another user's session cannot be ended from this account.
    let mut bob = Browser::new(&app);
    app.user("bob").await;
    code_for(&mut bob, &client, "bob").await;
    let bob_page = bob.get("/account").await;
    let bob_sid = bob_page.field("sid").expect("bob's sid");
    laptop
        .post(
            "/account/sessions/end",
            &[("csrf", &csrf), ("sid", &bob_sid)],
        )
        .await;
    assert_eq!(bob.get("/account").await.status, StatusCode::OK);
}

async fn the_sign_in_form_is_throttled_like_the_password_grant(app: TestApp) {
    app.user("alice").await;
    let client = code_client(&app, "web", true, true).await;
    let limit = app.sigil.config.throttle.pair_limit;
    let mut browser = Browser::new(&app);
    let (_, challenge) = pkce();
    let mut page = browser.authorize(&request(&client, &challenge)).await;
    for _ in 0..limit {
        page = browser.sign_in(&page, "alice", "wrong password!").await;
    }
    // Locked: even the right password gets the same answer now.
    let locked = browser.sign_in(&page, "alice", PASSWORD).await;
    assert!(locked.is_sign_in_form(), "locked out");
    assert!(
        locked
            .body
            .contains("The username or password is incorrect.")
    );
    // And the password grant sees the same lockout.
    let legacy = app.confidential_client("legacy").await;
    let response = app.password_grant(&legacy, "alice", PASSWORD).await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
}

fn as_refs<'a>(form: &'a [(&'static str, String)]) -> Vec<(&'static str, &'a str)> {
    form.iter().map(|(k, v)| (*k, v.as_str())).collect()
}
