//! The authorization code flow through the hosted pages: sign-in, consent,
//! SSO, `prompt` and `max_age`, and every refusal of `/authorize` (RFC 6749
//! §4.1, OIDC Core §3.1.2, RFC 7636, RFC 9207, RFC 9700 §2.1).

use reqwest::StatusCode;
use serde_json::Value;

use crate::browser::{Browser, REDIRECT, code_client, code_for, exchange, pkce, request};
use crate::helpers::{PASSWORD, TestApp, json};
use crate::on_both_backends;

on_both_backends!(
    the_code_flow_signs_in_asks_consent_and_redirects_with_code_state_and_iss,
    a_live_session_and_remembered_consent_skip_both_pages,
    a_first_party_client_is_not_asked_for_consent,
    prompt_none_answers_login_required_then_consent_required,
    prompt_login_and_max_age_ask_for_a_fresh_sign_in,
    an_untrusted_client_or_redirect_uri_gets_the_error_page_never_a_redirect,
    errors_after_the_redirect_uri_is_trusted_go_back_with_state_and_iss,
    a_wrong_password_renders_the_form_again_with_one_message,
    a_form_without_its_csrf_token_is_refused,
    declining_consent_redirects_with_access_denied,
    log_out_everywhere_ends_the_browser_session,
    a_loopback_redirect_matches_on_any_port,
    the_pages_forbid_framing_and_outside_resources,
    unknown_parameters_are_ignored_and_scope_order_does_not_matter,
    sign_up_from_the_sign_in_page_continues_the_request,
);

async fn the_code_flow_signs_in_asks_consent_and_redirects_with_code_state_and_iss(app: TestApp) {
    app.user("alice").await;
    let client = code_client(&app, "web", true, false).await;
    let mut browser = Browser::new(&app);
    let (_, challenge) = pkce();
    let page = browser.authorize(&request(&client, &challenge)).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.is_sign_in_form(), "{}", page.body);
    assert!(page.body.contains("id=\"username\"") && page.body.contains("id=\"password\""));
    let page = browser.sign_in(&page, "alice", PASSWORD).await;
    assert!(page.is_consent_form(), "{}", page.body);
    for scope in ["openid", "profile", "email"] {
        assert!(page.body.contains(scope), "consent lists {scope}");
    }
    let page = browser.consent(&page, "allow").await;
    assert_eq!(page.status, StatusCode::SEE_OTHER);
    assert!(page.location().starts_with(&format!("{REDIRECT}?")));
    let params = page.redirect_params();
    assert_eq!(params["state"], "st-123");
    assert_eq!(params["iss"], app.sigil.config.issuer);
    assert!(params["code"].len() >= 40, "a random code");
}

async fn a_live_session_and_remembered_consent_skip_both_pages(app: TestApp) {
    app.user("alice").await;
    let client = code_client(&app, "web", true, false).await;
    let mut browser = Browser::new(&app);
    code_for(&mut browser, &client, "alice").await;
    // SSO: no form, no consent, straight back with a code.
    let (_, challenge) = pkce();
    let page = browser.authorize(&request(&client, &challenge)).await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
    assert!(page.redirect_params().contains_key("code"));
    // Asking for more than was granted asks again.
    let more = code_client(&app, "other", true, false).await;
    let page = browser.authorize(&request(&more, &challenge)).await;
    assert!(page.is_consent_form(), "another client asks for consent");
}

async fn a_first_party_client_is_not_asked_for_consent(app: TestApp) {
    app.user("alice").await;
    let client = code_client(&app, "console", true, true).await;
    let mut browser = Browser::new(&app);
    let (_, challenge) = pkce();
    let page = browser.authorize(&request(&client, &challenge)).await;
    let page = browser.sign_in(&page, "alice", PASSWORD).await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
    assert!(page.redirect_params().contains_key("code"));
}

async fn prompt_none_answers_login_required_then_consent_required(app: TestApp) {
    app.user("alice").await;
    let web = code_client(&app, "web", true, false).await;
    let other = code_client(&app, "other", true, false).await;
    let mut browser = Browser::new(&app);
    let (_, challenge) = pkce();
    let mut params = request(&web, &challenge);
    params.push(("prompt", "none"));
    let page = browser.authorize(&params).await;
    assert_eq!(page.status, StatusCode::SEE_OTHER);
    let back = page.redirect_params();
    assert_eq!(back["error"], "login_required");
    assert_eq!(back["state"], "st-123");
    assert_eq!(back["iss"], app.sigil.config.issuer);

    code_for(&mut browser, &web, "alice").await;
    let page = browser.authorize(&params).await;
    assert!(
        page.redirect_params().contains_key("code"),
        "signed in and consented: a code"
    );
    let mut params = request(&other, &challenge);
    params.push(("prompt", "none"));
    let page = browser.authorize(&params).await;
    assert_eq!(page.redirect_params()["error"], "consent_required");
}

async fn prompt_login_and_max_age_ask_for_a_fresh_sign_in(app: TestApp) {
    app.user("alice").await;
    let client = code_client(&app, "web", false, false).await;
    let mut browser = Browser::new(&app);
    let (code, verifier) = code_for(&mut browser, &client, "alice").await;
    let first: Value = json(exchange(&app, &client, &code, &verifier).await).await;
    let first_auth = id_claims(&first)["auth_time"].as_i64().expect("auth_time");

    app.clock.advance(30);
    let (verifier, challenge) = pkce();
    let mut params = request(&client, &challenge);
    params.push(("prompt", "login"));
    let page = browser.authorize(&params).await;
    assert!(
        page.is_sign_in_form(),
        "prompt=login shows the form despite the session"
    );
    let page = browser.sign_in(&page, "alice", PASSWORD).await;
    assert_eq!(
        page.status,
        StatusCode::SEE_OTHER,
        "consent is remembered: {}",
        page.body
    );
    let code = page.redirect_params()["code"].clone();
    let second: Value = json(exchange(&app, &client, &code, &verifier).await).await;
    let second_auth = id_claims(&second)["auth_time"].as_i64().expect("auth_time");
    assert_eq!(
        second_auth,
        first_auth + 30,
        "a fresh sign-in has a later auth_time"
    );

    app.clock.advance(20);
    let (_, challenge) = pkce();
    let mut params = request(&client, &challenge);
    params.push(("max_age", "10"));
    assert!(
        browser.authorize(&params).await.is_sign_in_form(),
        "signed in 20 s ago > max_age 10"
    );
    let mut params = request(&client, &challenge);
    params.push(("max_age", "60"));
    let page = browser.authorize(&params).await;
    assert_eq!(
        page.status,
        StatusCode::SEE_OTHER,
        "within max_age: no form"
    );
    let mut params = request(&client, &challenge);
    params.push(("max_age", "-1"));
    assert_eq!(
        browser.authorize(&params).await.redirect_params()["error"],
        "invalid_request"
    );
}

/// The claims of the response's ID token (signature checked elsewhere).
fn id_claims(response: &Value) -> Value {
    crate::helpers::claims_of(response["id_token"].as_str().expect("id_token"))
}

async fn an_untrusted_client_or_redirect_uri_gets_the_error_page_never_a_redirect(app: TestApp) {
    let client = code_client(&app, "web", true, false).await;
    let mut browser = Browser::new(&app);
    let (_, challenge) = pkce();
    let swap = |name: &'static str, value: &'static str| {
        let mut params: Vec<(&str, &str)> = request(&client, &challenge)
            .into_iter()
            .filter(|(k, _)| *k != name)
            .collect();
        if !value.is_empty() {
            params.push((name, value));
        }
        params
    };
    for (params, says) in [
        (
            swap("redirect_uri", "https://evil.example/cb"),
            "not a redirect URI registered",
        ),
        (
            swap("redirect_uri", "https://app.example/cb/../evil"),
            "not a redirect URI registered",
        ),
        (
            swap("redirect_uri", "https://app.example/cb?x=1"),
            "not a redirect URI registered",
        ),
        (swap("redirect_uri", ""), "redirect_uri"),
        (swap("client_id", "nobody"), "no client"),
        (swap("client_id", ""), "client_id"),
    ] {
        let page = browser.authorize(&params).await;
        assert_eq!(page.status, StatusCode::BAD_REQUEST, "{params:?}");
        assert!(
            page.headers.get("location").is_none(),
            "never redirected: {params:?}"
        );
        assert!(page.body.contains(says), "{says:?} in {}", page.body);
    }
    // A repeated parameter is refused before the client is trusted.
    let mut params = request(&client, &challenge);
    params.push(("redirect_uri", "https://evil.example/cb"));
    let page = browser.authorize(&params).await;
    assert_eq!(page.status, StatusCode::BAD_REQUEST);
    assert!(page.body.contains("repeated"));
}

async fn errors_after_the_redirect_uri_is_trusted_go_back_with_state_and_iss(app: TestApp) {
    let public = code_client(&app, "spa", true, false).await;
    let confidential = code_client(&app, "web", false, false).await;
    let password_only = app.confidential_client("legacy").await;
    let mut browser = Browser::new(&app);
    let (_, challenge) = pkce();
    let with = |client, changes: &[(&'static str, &'static str)]| {
        let mut params: Vec<(&str, &str)> = request(client, &challenge)
            .into_iter()
            .filter(|(k, _)| !changes.iter().any(|(c, _)| c == k))
            .collect();
        params.extend(changes.iter().filter(|(_, v)| !v.is_empty()));
        params
    };
    for (params, error) in [
        (
            with(&public, &[("response_type", "token")]),
            "unsupported_response_type",
        ),
        (with(&public, &[("response_type", "")]), "invalid_request"),
        (with(&public, &[("scope", "openid admin")]), "invalid_scope"),
        (
            with(
                &public,
                &[("code_challenge", ""), ("code_challenge_method", "")],
            ),
            "invalid_request",
        ),
        (
            with(&public, &[("code_challenge_method", "plain")]),
            "invalid_request",
        ),
        (
            with(&public, &[("code_challenge_method", "")]),
            "invalid_request",
        ),
        (
            with(&public, &[("code_challenge", "too-short")]),
            "invalid_request",
        ),
        (
            with(&confidential, &[("code_challenge_method", "plain")]),
            "invalid_request",
        ),
        (
            with(&public, &[("prompt", "none login")]),
            "invalid_request",
        ),
        (
            with(&public, &[("response_mode", "fragment")]),
            "invalid_request",
        ),
        (
            with(&public, &[("request", "eyJhbGciOiJub25lIn0.e30.")]),
            "request_not_supported",
        ),
        (
            with(&public, &[("request_uri", "https://app.example/r")]),
            "request_uri_not_supported",
        ),
    ] {
        let page = browser.authorize(&params).await;
        assert_eq!(
            page.status,
            StatusCode::SEE_OTHER,
            "{params:?}: {}",
            page.body
        );
        assert!(page.location().starts_with(REDIRECT));
        let back = page.redirect_params();
        assert_eq!(back["error"], error, "{params:?}");
        assert_eq!(back["state"], "st-123");
        assert_eq!(back["iss"], app.sigil.config.issuer);
        assert!(!back.contains_key("code"));
    }
    // A client without the grant cannot have registered redirect URIs, so
    // its requests stop at the error page.
    let page = browser.authorize(&with(&password_only, &[])).await;
    assert_eq!(page.status, StatusCode::BAD_REQUEST);
    // A confidential client may skip PKCE.
    let page = browser
        .authorize(&with(
            &confidential,
            &[("code_challenge", ""), ("code_challenge_method", "")],
        ))
        .await;
    assert!(page.is_sign_in_form());
}

async fn a_wrong_password_renders_the_form_again_with_one_message(app: TestApp) {
    app.user("alice").await;
    let client = code_client(&app, "web", true, false).await;
    let mut browser = Browser::new(&app);
    let (_, challenge) = pkce();
    let page = browser.authorize(&request(&client, &challenge)).await;
    let wrong = browser.sign_in(&page, "alice", "not the password").await;
    let unknown = browser.sign_in(&page, "mallory", "not the password").await;
    for again in [&wrong, &unknown] {
        assert!(again.is_sign_in_form());
        assert!(
            again
                .body
                .contains("The username or password is incorrect.")
        );
        assert!(
            again
                .field("request")
                .is_some_and(|r| r.contains("client_id=web")),
            "the request is kept"
        );
    }
    assert!(
        wrong.body.contains("value=\"alice\""),
        "the username is kept"
    );
    assert!(
        !browser.cookies.keys().any(|k| k.contains("session")),
        "no session"
    );
    let page = browser.sign_in(&wrong, "alice", PASSWORD).await;
    assert!(page.is_consent_form(), "the right password then works");
}

async fn a_form_without_its_csrf_token_is_refused(app: TestApp) {
    app.user("alice").await;
    let client = code_client(&app, "web", true, false).await;
    let mut browser = Browser::new(&app);
    let (_, challenge) = pkce();
    let page = browser.authorize(&request(&client, &challenge)).await;
    let request = page.field("request").expect("request");
    let real = page.field("csrf").expect("csrf");
    let altered = format!(
        "{}{}",
        &real[..real.len() - 1],
        if real.ends_with('x') { 'y' } else { 'x' }
    );
    for csrf in ["", "forged", &altered] {
        let refused = browser
            .post(
                "/login",
                &[
                    ("csrf", csrf),
                    ("request", &request),
                    ("username", "alice"),
                    ("password", PASSWORD),
                ],
            )
            .await;
        assert_eq!(refused.status, StatusCode::FORBIDDEN, "csrf {csrf:?}");
    }
    // Another browser (no CSRF cookie) with this page's token: refused too.
    let mut other = Browser::new(&app);
    let csrf = page.field("csrf").expect("csrf");
    let refused = other
        .post(
            "/login",
            &[
                ("csrf", &csrf),
                ("request", &request),
                ("username", "alice"),
                ("password", PASSWORD),
            ],
        )
        .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    assert!(!other.cookies.keys().any(|k| k.contains("session")));
}

async fn declining_consent_redirects_with_access_denied(app: TestApp) {
    app.user("alice").await;
    let client = code_client(&app, "web", true, false).await;
    let mut browser = Browser::new(&app);
    let (_, challenge) = pkce();
    let page = browser.authorize(&request(&client, &challenge)).await;
    let page = browser.sign_in(&page, "alice", PASSWORD).await;
    let page = browser.consent(&page, "deny").await;
    let back = page.redirect_params();
    assert_eq!(back["error"], "access_denied");
    assert_eq!(back["state"], "st-123");
    // Nothing was remembered: the next request asks again.
    assert!(
        browser
            .authorize(&request(&client, &challenge))
            .await
            .is_consent_form()
    );
}

async fn log_out_everywhere_ends_the_browser_session(app: TestApp) {
    app.user("alice").await;
    let client = code_client(&app, "web", true, false).await;
    let mut browser = Browser::new(&app);
    let (code, verifier) = code_for(&mut browser, &client, "alice").await;
    let tokens: Value = json(exchange(&app, &client, &code, &verifier).await).await;
    let access = tokens["access_token"].as_str().expect("access_token");
    app.clock.advance(1);
    let response = app
        .post("/users/me/revoke-sessions")
        .bearer_auth(access)
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), StatusCode::OK);
    let (_, challenge) = pkce();
    assert!(
        browser
            .authorize(&request(&client, &challenge))
            .await
            .is_sign_in_form()
    );
}

async fn a_loopback_redirect_matches_on_any_port(app: TestApp) {
    app.user("alice").await;
    let client = code_client(&app, "cli", true, true).await;
    let mut browser = Browser::new(&app);
    let (verifier, challenge) = pkce();
    let redirect = "http://127.0.0.1:53682/native";
    let mut params: Vec<(&str, &str)> = request(&client, &challenge)
        .into_iter()
        .filter(|(k, _)| *k != "redirect_uri")
        .collect();
    params.push(("redirect_uri", redirect));
    let page = browser.authorize(&params).await;
    let page = browser.sign_in(&page, "alice", PASSWORD).await;
    assert!(
        page.location().starts_with(&format!("{redirect}?")),
        "{}",
        page.location()
    );
    let code = page.redirect_params()["code"].clone();
    let response = app
        .token(
            &client,
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", redirect),
                ("code_verifier", &verifier),
            ],
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    // Another path on the loopback host is not registered.
    params.retain(|(k, _)| *k != "redirect_uri");
    params.push(("redirect_uri", "http://127.0.0.1:53682/elsewhere"));
    assert_eq!(
        browser.authorize(&params).await.status,
        StatusCode::BAD_REQUEST
    );
}

async fn the_pages_forbid_framing_and_outside_resources(app: TestApp) {
    let client = code_client(&app, "web", true, false).await;
    let mut browser = Browser::new(&app);
    let (_, challenge) = pkce();
    let first = browser.authorize(&request(&client, &challenge)).await;
    let cookie = first.headers["set-cookie"].to_str().expect("cookie");
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax"),
        "{cookie}"
    );
    for page in [first, browser.get("/login").await] {
        let csp = page.headers["content-security-policy"]
            .to_str()
            .expect("csp");
        assert!(csp.contains("default-src 'none'"), "{csp}");
        assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
        assert!(!csp.contains("script-src"), "no script is allowed: {csp}");
        assert_eq!(page.headers["x-frame-options"], "DENY");
        assert_eq!(page.headers["cache-control"], "no-store");
        assert!(!page.body.contains("<script"), "no JavaScript");
        assert!(
            !page.body.contains("src=\"http") && !page.body.contains("href=\"http"),
            "no outside asset"
        );
    }
    let page = browser.authorize(&request(&client, &challenge)).await;
    let csp = page.headers["content-security-policy"]
        .to_str()
        .expect("csp");
    assert!(
        csp.contains("form-action 'self' https://app.example;"),
        "{csp}"
    );
    let css = app.get("/assets/sign-in.css").send().await.expect("css");
    assert_eq!(css.status(), StatusCode::OK);
}

async fn unknown_parameters_are_ignored_and_scope_order_does_not_matter(app: TestApp) {
    app.user("alice").await;
    let client = code_client(&app, "web", true, true).await;
    let mut browser = Browser::new(&app);
    let (verifier, challenge) = pkce();
    let mut params: Vec<(&str, &str)> = request(&client, &challenge)
        .into_iter()
        .filter(|(k, _)| *k != "scope")
        .collect();
    params.extend([
        ("scope", "email openid profile"),
        ("extra", "ignored"),
        ("ui_locales", "fr"),
        ("display", "page"),
        ("acr_values", "urn:mace:incommon:iap:silver"),
        ("login_hint", "alice"),
    ]);
    let page = browser.authorize(&params).await;
    assert!(
        page.body.contains("value=\"alice\""),
        "login_hint fills the username"
    );
    let page = browser.sign_in(&page, "alice", PASSWORD).await;
    let code = page.redirect_params()["code"].clone();
    let tokens: Value = json(exchange(&app, &client, &code, &verifier).await).await;
    assert_eq!(tokens["scope"], "email openid profile");
}

async fn sign_up_from_the_sign_in_page_continues_the_request(app: TestApp) {
    let client = code_client(&app, "web", true, true).await;
    let mut browser = Browser::new(&app);
    let (_, challenge) = pkce();
    let page = browser.authorize(&request(&client, &challenge)).await;
    let request = page.field("request").expect("request");
    let form = browser
        .get(&format!("/signup?request={}", urlencode(&request)))
        .await;
    assert!(form.body.contains("id=\"sign-up-form\""), "{}", form.body);
    let csrf = form.field("csrf").expect("csrf");
    let carried = form.field("request").expect("carried request");
    let bad = browser
        .post(
            "/signup",
            &[
                ("csrf", &csrf),
                ("request", &carried),
                ("username", "x"),
                ("email", "nope"),
                ("password", "short"),
            ],
        )
        .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert!(bad.body.contains("id=\"error\""));
    let done = browser
        .post(
            "/signup",
            &[
                ("csrf", &csrf),
                ("request", &carried),
                ("username", "carol"),
                ("email", "carol@example.com"),
                ("password", PASSWORD),
            ],
        )
        .await;
    assert_eq!(done.status, StatusCode::SEE_OTHER, "{}", done.body);
    assert!(done.redirect_params().contains_key("code"));
}

fn urlencode(text: &str) -> String {
    form_urlencoded::byte_serialize(text.as_bytes()).collect()
}
