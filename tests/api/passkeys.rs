//! Passkeys through the endpoints the pages' script calls, with a software
//! authenticator (`authenticator.rs`): registration from the account page,
//! sign-in without a username, what the tokens say, each refusal (another
//! user's credential, another relying party or origin, a replayed
//! ceremony, a counter that went back), passkey-only accounts, and the
//! admin API and CLI over a user's passkeys.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::authenticator::{Authenticator, assertion};
use crate::browser::{Browser, code_client, exchange, jwt_claims, pkce, request};
use crate::cli::{run, sigil};
use crate::helpers::{Backend, PASSWORD, TestApp, until_audited};
use crate::mfa::sign_in_to_account;
use crate::on_both_backends;

on_both_backends!(
    spawn = super::on_localhost;
    a_passkey_added_on_the_account_page_signs_in_without_a_username,
    a_passkey_signs_in_to_an_app_and_the_tokens_say_phishing_resistant,
    a_credential_answering_for_another_user_is_refused,
    an_assertion_for_another_relying_party_or_origin_is_refused,
    a_ceremony_is_used_once_and_a_counter_that_went_back_is_refused,
    adding_a_passkey_needs_the_pages_token_and_a_recent_sign_in,
    a_passkey_steps_a_password_session_up_for_acr_values,
    an_account_may_be_made_with_a_passkey_and_no_password,
    admins_and_operators_list_rename_and_remove_a_users_passkeys,
);

on_both_backends!(an_issuer_without_a_domain_name_has_no_passkeys);

/// Passkeys need a domain name: the issuer is `http://localhost:<port>`
/// (the test's HTTP client still connects to 127.0.0.1), and passkey-only
/// accounts are allowed.
async fn on_localhost(backend: Backend) -> Option<TestApp> {
    TestApp::spawn_with(backend, |c| {
        c.issuer = c.issuer.replace("127.0.0.1", "localhost");
        c.mfa.passkey_only_accounts = true;
    })
    .await
}

fn authenticator(app: &TestApp) -> Authenticator {
    Authenticator::new(&app.sigil.config.issuer)
}

/// Registers a passkey for the browser's signed-in user from the account
/// page; returns its id (Sigil's, as the account page and admin API name
/// it).
async fn add_passkey(browser: &mut Browser<'_>, auth: &mut Authenticator, name: &str) -> String {
    let account = browser.get("/account").await;
    let csrf = account.field("csrf").expect("csrf");
    let (status, started) = browser
        .post_json("/account/passkeys/register/start", &csrf, &json!({}))
        .await;
    assert_eq!(status, StatusCode::OK, "{started}");
    let options = &started["options"];
    assert_eq!(
        options["publicKey"]["authenticatorSelection"]["userVerification"], "required",
        "{options}"
    );
    let credential = auth.create(options);
    let (status, done) = browser
        .post_json(
            "/account/passkeys/register/finish",
            &csrf,
            &json!({ "ceremony": started["ceremony"], "credential": credential, "name": name }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{done}");
    assert_eq!(done["location"], "/account");
    let store = browser.app.sigil.store.as_ref();
    let username = browser
        .get("/account")
        .await
        .text_of("account-username")
        .expect("signed in");
    let user = store.user_by_username(&username).await.unwrap().unwrap();
    let credential_id = &auth.credentials.last().expect("created").id;
    store
        .passkeys(&user.id)
        .await
        .unwrap()
        .into_iter()
        .find(|p| &p.credential_id == credential_id)
        .expect("stored")
        .id
}

/// A passkey sign-in on a fresh page: the start, the authenticator's
/// answer (credential `which`, changed by `tamper`), the finish. Returns
/// the finish's status and answer.
async fn passkey_sign_in(
    browser: &mut Browser<'_>,
    auth: &mut Authenticator,
    which: usize,
    carried: (&str, &str),
    tamper: impl FnOnce(&mut Value),
) -> (StatusCode, Value) {
    // The sign-in form (shown even to a signed-in browser with ?reauth=1),
    // for its CSRF token.
    let page = browser.get("/login?reauth=1").await;
    let csrf = page.field("csrf").expect("csrf");
    let (status, started) = browser
        .post_json("/passkeys/sign-in/start", &csrf, &json!({}))
        .await;
    assert_eq!(status, StatusCode::OK, "{started}");
    let mut credential = auth.get(&started["options"], which);
    tamper(&mut credential);
    browser
        .post_json(
            "/passkeys/sign-in/finish",
            &csrf,
            &json!({
                "ceremony": started["ceremony"],
                "credential": credential,
                "request": carried.0,
                "device": carried.1,
            }),
        )
        .await
}

async fn a_passkey_added_on_the_account_page_signs_in_without_a_username(app: TestApp) {
    app.user("alice").await;
    let mut browser = Browser::new(&app);
    let account = sign_in_to_account(&mut browser, "alice").await;
    assert!(account.body.contains("id=\"add-passkey\""));
    assert!(account.body.contains("src=\"/assets/webauthn.js\""));
    let csp = account.headers["content-security-policy"].to_str().unwrap();
    assert!(
        csp.contains("script-src 'self'") && !csp.contains("unsafe"),
        "{csp}"
    );
    let mut auth = authenticator(&app);
    let id = add_passkey(&mut browser, &mut auth, "Laptop").await;
    let account = browser.get("/account").await;
    assert!(account.body.contains("Laptop"), "listed by name");
    assert!(account.body.contains("last used never"));

    let mut fresh = Browser::new(&app);
    let (status, done) = passkey_sign_in(&mut fresh, &mut auth, 0, ("", ""), |_| {}).await;
    assert_eq!(status, StatusCode::OK, "{done}");
    assert_eq!(done["location"], "/account");
    assert!(fresh.has_session());
    let account = fresh.get("/account").await;
    assert_eq!(
        account.text_of("account-username").as_deref(),
        Some("alice")
    );
    assert!(
        account.body.contains("(hwk, user, mfa)"),
        "{}",
        account.body
    );
    assert!(!account.body.contains("last used never"));
    let event = until_audited(&app, "passkey.added").await;
    let detail: Value = serde_json::from_str(&event.detail).unwrap();
    assert_eq!(detail["passkey"], id.as_str());
    assert_eq!(detail["name"], "Laptop");
}

async fn a_passkey_signs_in_to_an_app_and_the_tokens_say_phishing_resistant(app: TestApp) {
    app.user("alice").await;
    let client = code_client(&app, "web", true, false).await;
    for synced in [false, true] {
        let mut setup = Browser::new(&app);
        sign_in_to_account(&mut setup, "alice").await;
        let mut auth = authenticator(&app);
        auth.synced = synced;
        add_passkey(&mut setup, &mut auth, "Phone").await;

        let mut browser = Browser::new(&app);
        let (verifier, challenge) = pkce();
        let form = browser.authorize(&request(&client, &challenge)).await;
        assert!(form.body.contains("autocomplete=\"username webauthn\""));
        let carried = form.field("request").unwrap();
        let (status, done) =
            passkey_sign_in(&mut browser, &mut auth, 0, (&carried, ""), |_| {}).await;
        assert_eq!(status, StatusCode::OK, "{done}");
        let location = done["location"].as_str().unwrap();
        assert!(location.starts_with("/authorize?"), "{location}");
        let mut page = browser.get(location).await;
        if page.is_consent_form() {
            page = browser.consent(&page, "allow").await;
        }
        let code = page.redirect_params()["code"].clone();
        let response = exchange(&app, &client, &code, &verifier).await;
        assert_eq!(response.status(), StatusCode::OK);
        let tokens: Value = response.json().await.unwrap();
        let id = jwt_claims(tokens["id_token"].as_str().unwrap());
        let access = jwt_claims(tokens["access_token"].as_str().unwrap());
        let (amr, acr) = if synced {
            (json!(["swk", "user", "mfa"]), "phr")
        } else {
            (json!(["hwk", "user", "mfa"]), "phrh")
        };
        assert_eq!(id["amr"], amr);
        assert_eq!(id["acr"], acr);
        assert_eq!(access["amr"], amr);
        assert_eq!(access["acr"], acr);
    }
}

async fn a_credential_answering_for_another_user_is_refused(app: TestApp) {
    app.user("alice").await;
    app.user("bob").await;
    let mut auth = authenticator(&app);
    let mut alice = Browser::new(&app);
    sign_in_to_account(&mut alice, "alice").await;
    add_passkey(&mut alice, &mut auth, "Alice's").await;
    let mut bob = Browser::new(&app);
    sign_in_to_account(&mut bob, "bob").await;
    add_passkey(&mut bob, &mut auth, "Bob's").await;
    let bobs_handle = auth.credentials[1].user_handle.clone();
    // Alice's credential, claiming to be Bob's (its user handle).
    auth.credentials[0].user_handle = bobs_handle;
    let mut browser = Browser::new(&app);
    let (status, refused) = passkey_sign_in(&mut browser, &mut auth, 0, ("", ""), |_| {}).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{refused}");
    assert_eq!(refused["error"], "invalid_request");
    assert!(!browser.has_session());
    // And a credential Sigil never registered.
    let mut stranger = authenticator(&app);
    let mut other = Browser::new(&app);
    sign_in_to_account(&mut other, "bob").await;
    let account = other.get("/account").await;
    let csrf = account.field("csrf").unwrap();
    let (_, started) = other
        .post_json("/account/passkeys/register/start", &csrf, &json!({}))
        .await;
    stranger.create(&started["options"]); // never finished
    let mut browser = Browser::new(&app);
    let (status, _) = passkey_sign_in(&mut browser, &mut stranger, 0, ("", ""), |_| {}).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(!browser.has_session());
    until_audited(&app, "passkey.sign_in_refused").await;
}

async fn an_assertion_for_another_relying_party_or_origin_is_refused(app: TestApp) {
    app.user("alice").await;
    let mut auth = authenticator(&app);
    let mut setup = Browser::new(&app);
    sign_in_to_account(&mut setup, "alice").await;
    add_passkey(&mut setup, &mut auth, "Laptop").await;
    // The same key, signing for another relying party id.
    let mut elsewhere = auth.credentials[0].clone();
    elsewhere.rp_id = "evil.example".into();
    let mut browser = Browser::new(&app);
    let page = browser.get("/login").await;
    let csrf = page.field("csrf").unwrap();
    let (_, started) = browser
        .post_json("/passkeys/sign-in/start", &csrf, &json!({}))
        .await;
    let challenge = started["options"]["publicKey"]["challenge"]
        .as_str()
        .unwrap();
    let client_data = serde_json::to_vec(&json!({
        "type": "webauthn.get", "challenge": challenge, "origin": app.sigil.config.issuer,
    }))
    .unwrap();
    elsewhere.counter = 7;
    let forged = assertion(&elsewhere, 0x05, &client_data);
    let (status, _) = browser
        .post_json(
            "/passkeys/sign-in/finish",
            &csrf,
            &json!({ "ceremony": started["ceremony"], "credential": forged }),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "another RP id");
    assert!(!browser.has_session());
    // The right relying party, but a page on another origin asked.
    auth.origin = "http://evil.example".into();
    let (status, _) = passkey_sign_in(&mut browser, &mut auth, 0, ("", ""), |_| {}).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "another origin");
    // Without user verification (the UV flag cleared): refused too.
    auth.origin = app.sigil.config.issuer.clone();
    let (status, _) = passkey_sign_in(&mut browser, &mut auth, 0, ("", ""), |c| {
        let data = c["response"]["authenticatorData"]
            .as_str()
            .unwrap()
            .to_string();
        let mut bytes =
            base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, data)
                .unwrap();
        bytes[32] &= !0x04;
        c["response"]["authenticatorData"] = json!(base64::Engine::encode(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD,
            bytes
        ));
    })
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "no user verification");
    assert!(!browser.has_session());
}

async fn a_ceremony_is_used_once_and_a_counter_that_went_back_is_refused(app: TestApp) {
    app.user("alice").await;
    let mut auth = authenticator(&app);
    let mut setup = Browser::new(&app);
    sign_in_to_account(&mut setup, "alice").await;
    add_passkey(&mut setup, &mut auth, "Key").await;
    let mut browser = Browser::new(&app);
    let page = browser.get("/login").await;
    let csrf = page.field("csrf").unwrap();
    let (_, started) = browser
        .post_json("/passkeys/sign-in/start", &csrf, &json!({}))
        .await;
    let credential = auth.get(&started["options"], 0);
    let finish = json!({ "ceremony": started["ceremony"], "credential": credential });
    let (first, _) = browser
        .post_json("/passkeys/sign-in/finish", &csrf, &finish)
        .await;
    assert_eq!(first, StatusCode::OK);
    let (second, answer) = browser
        .post_json("/passkeys/sign-in/finish", &csrf, &finish)
        .await;
    assert_eq!(second, StatusCode::BAD_REQUEST, "a ceremony is used once");
    assert!(
        answer["error_description"]
            .as_str()
            .unwrap()
            .contains("expired")
    );
    // A ceremony older than five minutes is gone.
    let (_, started) = browser
        .post_json("/passkeys/sign-in/start", &csrf, &json!({}))
        .await;
    app.clock.advance(301);
    let credential = auth.get(&started["options"], 0);
    let (late, _) = browser
        .post_json(
            "/passkeys/sign-in/finish",
            &csrf,
            &json!({ "ceremony": started["ceremony"], "credential": credential }),
        )
        .await;
    assert_eq!(late, StatusCode::BAD_REQUEST);
    // The stored counter is 1: the late attempt was refused before its
    // signature was checked. A copy of the key answering with a counter
    // no greater than that (a cloned authenticator) is refused (WebAuthn
    // §7.2 step 21).
    let stored = auth.credentials[0].counter;
    auth.credentials[0].counter = 0;
    let mut clone = Browser::new(&app);
    let (status, _) = passkey_sign_in(&mut clone, &mut auth, 0, ("", ""), |_| {}).await;
    assert_eq!(
        status,
        StatusCode::BAD_REQUEST,
        "counter 1 after {stored} answers"
    );
    assert!(!clone.has_session());
}

async fn adding_a_passkey_needs_the_pages_token_and_a_recent_sign_in(app: TestApp) {
    app.user("alice").await;
    let mut browser = Browser::new(&app);
    sign_in_to_account(&mut browser, "alice").await;
    let (status, refused) = browser
        .post_json("/account/passkeys/register/start", "forged", &json!({}))
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{refused}");
    app.clock.advance(16 * 60);
    let account = browser.get("/account").await;
    assert!(account.body.contains("id=\"reauth-needed\""));
    let csrf = account.field("csrf").unwrap();
    let (status, refused) = browser
        .post_json("/account/passkeys/register/start", &csrf, &json!({}))
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(
        refused["error_description"]
            .as_str()
            .unwrap()
            .contains("sign in again"),
        "{refused}"
    );
    // Signing in again (with a session: ?reauth=1) lets them.
    let form = browser.get("/login?reauth=1").await;
    assert!(form.is_sign_in_form());
    browser.sign_in(&form, "alice", PASSWORD).await;
    let mut auth = authenticator(&app);
    add_passkey(&mut browser, &mut auth, "Later").await;
}

async fn a_passkey_steps_a_password_session_up_for_acr_values(app: TestApp) {
    app.user("alice").await;
    let client = code_client(&app, "web", true, true).await;
    let mut browser = Browser::new(&app);
    sign_in_to_account(&mut browser, "alice").await;
    let mut auth = authenticator(&app);
    add_passkey(&mut browser, &mut auth, "Key").await;
    let (verifier, challenge) = pkce();
    let mut params = request(&client, &challenge);
    params.push(("acr_values", "phr"));
    let page = browser.authorize(&params).await;
    assert!(page.is_second_factor_form(), "{}", page.body);
    assert!(
        page.body.contains("id=\"use-passkey\""),
        "the passkey is offered"
    );
    assert!(!page.body.contains("id=\"totp-form\""), "no app to ask for");
    let carried = page.field("request").unwrap();
    let (status, done) = passkey_sign_in(&mut browser, &mut auth, 0, (&carried, ""), |_| {}).await;
    assert_eq!(status, StatusCode::OK, "{done}");
    let location = done["location"].as_str().unwrap();
    assert!(!location.contains("acr_values"), "asked once: {location}");
    let page = browser.get(location).await;
    let code = page.redirect_params()["code"].clone();
    let tokens: Value = exchange(&app, &client, &code, &verifier)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        jwt_claims(tokens["id_token"].as_str().unwrap())["acr"],
        "phrh"
    );
}

async fn an_account_may_be_made_with_a_passkey_and_no_password(app: TestApp) {
    let mut browser = Browser::new(&app);
    let page = browser.get("/signup").await;
    assert!(page.body.contains("id=\"sign-up-passkey\""));
    let csrf = page.field("csrf").unwrap();
    let (status, refused) = browser
        .post_json(
            "/signup/passkey/start",
            &csrf,
            &json!({ "username": "x", "email": "carol@example.com" }),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{refused}");
    let (status, started) = browser
        .post_json(
            "/signup/passkey/start",
            &csrf,
            &json!({ "username": "carol", "email": "carol@example.com" }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{started}");
    let mut auth = authenticator(&app);
    let credential = auth.create(&started["options"]);
    let (status, done) = browser
        .post_json(
            "/signup/passkey/finish",
            &csrf,
            &json!({ "ceremony": started["ceremony"], "credential": credential }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{done}");
    assert!(browser.has_session());
    let account = browser.get("/account").await;
    assert_eq!(
        account.text_of("account-username").as_deref(),
        Some("carol")
    );
    // No password signs her in; her passkey does; her only passkey stays.
    let client = app.confidential_client("legacy").await;
    let response = app.password_grant(&client, "carol", "").await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let mut fresh = Browser::new(&app);
    let (status, _) = passkey_sign_in(&mut fresh, &mut auth, 0, ("", ""), |_| {}).await;
    assert_eq!(status, StatusCode::OK);
    let account = fresh.get("/account").await;
    let csrf = account.field("csrf").unwrap();
    let marker = "id=\"passkey-";
    let at = account.body.find(marker).unwrap() + marker.len();
    let id = account.body[at..].split('"').next().unwrap().to_string();
    let refused = fresh
        .post("/account/passkeys/remove", &[("csrf", &csrf), ("id", &id)])
        .await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST);
    assert!(refused.body.contains("only way to sign in"));
    // The same username again: refused, and no half-made account.
    let (_, started) = browser
        .post_json(
            "/signup/passkey/start",
            &csrf,
            &json!({ "username": "carol", "email": "carol2@example.com" }),
        )
        .await;
    assert!(started.get("ceremony").is_none(), "{started}");
}

async fn admins_and_operators_list_rename_and_remove_a_users_passkeys(app: TestApp) {
    app.user("alice").await;
    let mut browser = Browser::new(&app);
    sign_in_to_account(&mut browser, "alice").await;
    let mut auth = authenticator(&app);
    let first = add_passkey(&mut browser, &mut auth, "Laptop").await;
    let second = add_passkey(&mut browser, &mut auth, "Phone").await;
    // The user renames one on the account page.
    let account = browser.get("/account").await;
    let csrf = account.field("csrf").unwrap();
    let renamed = browser
        .post(
            "/account/passkeys/rename",
            &[("csrf", &csrf), ("id", &first), ("name", "Work laptop")],
        )
        .await;
    assert_eq!(renamed.status, StatusCode::SEE_OTHER);
    // The admin API lists, renames and removes.
    let admin = crate::admin::admin_token(&app).await;
    let factors: Value = app
        .get("/admin/users/alice/factors")
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let mut names: Vec<&str> = factors["passkeys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    names.sort();
    assert_eq!(names, ["Phone", "Work laptop"]);
    let response = app
        .post(&format!("/admin/users/alice/passkeys/{second}/rename"))
        .bearer_auth(&admin)
        .json(&json!({ "name": "" }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST, "an empty name");
    let response = app
        .post(&format!("/admin/users/alice/passkeys/{second}/remove"))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let response = app
        .post(&format!("/admin/users/alice/passkeys/{second}/remove"))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NOT_FOUND, "gone already");
    // The removed passkey signs no one in.
    let mut fresh = Browser::new(&app);
    let (status, _) = passkey_sign_in(&mut fresh, &mut auth, 1, ("", ""), |_| {}).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    // The operator's CLI: factors, rename, remove, reset.
    let cli = |args: &[&str]| {
        let mut command = sigil(app.dir.path());
        command
            .args(args)
            .env("SIGIL_DATABASE_URL", &app.database_url);
        let out = run(command, None);
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let listed: Value =
        serde_json::from_str(&cli(&["users", "factors", "alice", "--json"])).unwrap();
    assert_eq!(listed["passkeys"][0]["name"], "Work laptop");
    assert_eq!(listed["passkeys"].as_array().unwrap().len(), 1);
    cli(&["users", "rename-passkey", "alice", &first, "Old laptop"]);
    assert!(cli(&["users", "factors", "alice"]).contains("Old laptop"));
    cli(&["users", "remove-passkey", "alice", &first]);
    assert!(cli(&["users", "factors", "alice"]).contains("passkeys: 0"));
    let store = app.sigil.store.as_ref();
    let user = store.user_by_username("alice").await.unwrap().unwrap();
    assert!(store.passkeys(&user.id).await.unwrap().is_empty());
    let events = store.recent_audit(1000).await.unwrap();
    assert!(
        events
            .iter()
            .any(|e| e.action == "passkey.removed" && e.actor == "cli"),
        "the CLI's removal is audited as cli"
    );
    tokio::time::sleep(Duration::from_millis(1)).await;
}

async fn an_issuer_without_a_domain_name_has_no_passkeys(app: TestApp) {
    let mut browser = Browser::new(&app);
    let page = browser.get("/login").await;
    assert!(!page.body.contains("id=\"passkey\""), "no passkey button");
    assert!(!page.body.contains("<script"), "no script");
    let csp = page.headers["content-security-policy"].to_str().unwrap();
    assert!(!csp.contains("script-src"), "{csp}");
    let csrf = page.field("csrf").unwrap();
    let (status, refused) = browser
        .post_json("/passkeys/sign-in/start", &csrf, &json!({}))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        refused["error_description"]
            .as_str()
            .unwrap()
            .contains("not available"),
        "{refused}"
    );
}
