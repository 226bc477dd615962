//! TOTP as a second factor (RFC 6238) and recovery codes through the hosted
//! pages: enrolment from the account page, the code after the password,
//! replay and skew, throttling, step-up for `acr_values`, a client that
//! requires a second factor, and what the tokens say (`amr`, `acr`).

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};
use sigil::mfa::totp;

use crate::browser::{Browser, Page, code_client, exchange, jwt_claims, pkce, request};
use crate::helpers::{Backend, NowSecs, PASSWORD, TestApp, TestClient};
use crate::on_both_backends;

on_both_backends!(
    an_authenticator_app_is_set_up_from_the_account_page_with_a_qr_code_and_a_first_code,
    a_user_with_totp_gives_a_code_after_the_password_and_the_tokens_say_mfa,
    a_code_is_accepted_once_and_only_within_one_step_of_the_clock,
    a_recovery_code_signs_in_once,
    acr_values_steps_a_live_session_up_to_the_second_factor,
    a_client_requiring_mfa_has_a_user_without_one_set_up_an_authenticator,
    an_admin_resets_a_users_factors_and_the_reset_is_audited,
    the_totp_secret_is_sealed_at_rest_and_survives_a_kek_rewrap,
    password_and_client_credentials_tokens_say_how_or_say_nothing,
);

on_both_backends!(spawn = super::throttled; wrong_codes_count_against_the_passwords_throttle);

async fn throttled(backend: Backend) -> Option<TestApp> {
    TestApp::spawn_with(backend, |c| {
        c.throttle.pair_free_failures = 3;
        c.throttle.pair_limit = 3;
        c.throttle.account_limit = 100;
        c.throttle.max_delay = Duration::ZERO;
    })
    .await
}

/// Signs `username` in on the plain sign-in page (no authorization
/// request): the browser lands on the account page.
pub async fn sign_in_to_account(browser: &mut Browser<'_>, username: &str) -> Page {
    let form = browser.get("/login").await;
    let page = browser.sign_in(&form, username, PASSWORD).await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
    assert_eq!(page.location(), "/account");
    browser.get("/account").await
}

/// The authenticator app's secret shown on a set-up page.
fn shown_secret(page: &Page) -> Vec<u8> {
    let text = page.text_of("totp-secret").expect("the secret as text");
    data_encoding::BASE32_NOPAD
        .decode(text.as_bytes())
        .expect("base32")
}

/// The code an authenticator app shows at Sigil's (manual) time.
pub fn code_now(app: &TestApp, secret: &[u8]) -> String {
    totp::code(secret, totp::step_at(app.clock.now_secs()))
}

/// Sets up an authenticator app for the signed-in browser: returns its
/// secret and the recovery codes shown. Moves the clock on one step, so
/// the code used to confirm is not the next one asked for.
pub async fn enrol(app: &TestApp, browser: &mut Browser<'_>) -> (Vec<u8>, Vec<String>) {
    let account = browser.get("/account").await;
    let csrf = account.field("csrf").expect("csrf");
    let setup = browser.post("/account/totp", &[("csrf", &csrf)]).await;
    assert_eq!(setup.status, StatusCode::OK, "{}", setup.body);
    let secret = shown_secret(&setup);
    let csrf = setup.field("csrf").expect("csrf");
    let code = code_now(app, &secret);
    let codes = browser
        .post("/account/totp/confirm", &[("csrf", &csrf), ("code", &code)])
        .await;
    assert_eq!(codes.status, StatusCode::OK, "{}", codes.body);
    let listed: Vec<String> = codes
        .body
        .split("<li><code>")
        .skip(1)
        .filter_map(|s| s.split("</code>").next())
        .map(str::to_string)
        .collect();
    assert_eq!(listed.len(), 10, "{}", codes.body);
    app.clock.advance(totp::STEP);
    (secret, listed)
}

/// A fresh browser's authorization request up to the second-factor page.
async fn to_second_factor(
    browser: &mut Browser<'_>,
    client: &TestClient,
    challenge: &str,
    username: &str,
) -> Page {
    let form = browser.authorize(&request(client, challenge)).await;
    let page = browser.sign_in(&form, username, PASSWORD).await;
    assert!(page.is_second_factor_form(), "{}", page.body);
    assert!(
        !browser.has_session(),
        "no session before the second factor"
    );
    page
}

/// Goes on from a page to the code at the client (consenting if asked).
async fn to_code(browser: &mut Browser<'_>, mut page: Page) -> String {
    if page.is_consent_form() {
        page = browser.consent(&page, "allow").await;
    }
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
    page.redirect_params()
        .get("code")
        .cloned()
        .unwrap_or_else(|| panic!("no code in {}", page.location()))
}

async fn tokens(app: &TestApp, client: &TestClient, code: &str, verifier: &str) -> Value {
    let response = exchange(app, client, code, verifier).await;
    assert_eq!(response.status(), StatusCode::OK);
    response.json().await.expect("json")
}

async fn an_authenticator_app_is_set_up_from_the_account_page_with_a_qr_code_and_a_first_code(
    app: TestApp,
) {
    app.user("alice").await;
    let mut browser = Browser::new(&app);
    let account = sign_in_to_account(&mut browser, "alice").await;
    assert_eq!(
        account.text_of("totp-status").as_deref(),
        Some("No authenticator app.")
    );
    let csrf = account.field("csrf").expect("csrf");
    let setup = browser.post("/account/totp", &[("csrf", &csrf)]).await;
    assert!(setup.body.contains("<svg"), "a QR code, rendered here");
    assert!(!setup.body.contains("<?xml"), "inline SVG");
    assert!(
        !setup.body.contains("src=\"http"),
        "no outside service draws it"
    );
    let secret = shown_secret(&setup);
    assert_eq!(secret.len(), 20, "160 bits (RFC 4226 §4)");
    // A wrong first code: the same secret again, with a message.
    let csrf = setup.field("csrf").expect("csrf");
    let wrong = browser
        .post(
            "/account/totp/confirm",
            &[("csrf", &csrf), ("code", "000000")],
        )
        .await;
    assert_eq!(wrong.status, StatusCode::BAD_REQUEST);
    assert!(wrong.body.contains("not the one the app shows"));
    assert_eq!(shown_secret(&wrong), secret);
    // Until confirmed, a password sign-in is not asked for a code.
    let mut other = Browser::new(&app);
    sign_in_to_account(&mut other, "alice").await;
    let code = code_now(&app, &secret);
    let codes = browser
        .post("/account/totp/confirm", &[("csrf", &csrf), ("code", &code)])
        .await;
    assert_eq!(codes.status, StatusCode::OK, "{}", codes.body);
    assert!(codes.body.contains("id=\"recovery-codes\""));
    assert_eq!(codes.body.matches("<li><code>").count(), 10);
    let account = browser.get("/account").await;
    assert_eq!(
        account.text_of("totp-status").as_deref(),
        Some("An authenticator app is set up. 10 recovery codes left.")
    );
    // Set up twice? Only after removing the first.
    let csrf = account.field("csrf").expect("csrf");
    let again = browser.post("/account/totp", &[("csrf", &csrf)]).await;
    assert_eq!(again.status, StatusCode::BAD_REQUEST);
    assert!(again.body.contains("remove it first"), "{}", again.body);
    crate::helpers::until_audited(&app, "totp.enrolled").await;
}

async fn a_user_with_totp_gives_a_code_after_the_password_and_the_tokens_say_mfa(app: TestApp) {
    app.user("alice").await;
    let client = code_client(&app, "web", true, false).await;
    let mut setup = Browser::new(&app);
    sign_in_to_account(&mut setup, "alice").await;
    let (secret, _) = enrol(&app, &mut setup).await;

    let mut browser = Browser::new(&app);
    let (verifier, challenge) = pkce();
    let page = to_second_factor(&mut browser, &client, &challenge, "alice").await;
    let page = browser
        .second_factor(&page, "code", &code_now(&app, &secret))
        .await;
    assert!(browser.has_session());
    let code = to_code(&mut browser, page).await;
    let issued = tokens(&app, &client, &code, &verifier).await;
    let id = jwt_claims(issued["id_token"].as_str().unwrap());
    assert_eq!(id["amr"], json!(["pwd", "otp", "mfa"]));
    assert_eq!(id["acr"], "urn:sigil:acr:mfa");
    let access = jwt_claims(issued["access_token"].as_str().unwrap());
    assert_eq!(access["amr"], json!(["pwd", "otp", "mfa"]));
    assert_eq!(access["acr"], "urn:sigil:acr:mfa");
    // The session remembers: the next request needs no code, and a refresh
    // keeps saying how the login was made.
    let (_, challenge) = pkce();
    let again = browser.authorize(&request(&client, &challenge)).await;
    assert_eq!(again.status, StatusCode::SEE_OTHER, "{}", again.body);
    let refreshed = app
        .refresh(&client, issued["refresh_token"].as_str().unwrap(), None)
        .await;
    assert_eq!(refreshed.status(), StatusCode::OK);
    let refreshed: Value = refreshed.json().await.unwrap();
    let access = jwt_claims(refreshed["access_token"].as_str().unwrap());
    assert_eq!(access["acr"], "urn:sigil:acr:mfa");
    assert_eq!(access["amr"], json!(["pwd", "otp", "mfa"]));
}

async fn a_code_is_accepted_once_and_only_within_one_step_of_the_clock(app: TestApp) {
    app.user("alice").await;
    let client = code_client(&app, "web", true, true).await;
    let mut setup = Browser::new(&app);
    sign_in_to_account(&mut setup, "alice").await;
    let (secret, _) = enrol(&app, &mut setup).await;
    let step = totp::step_at(app.clock.now_secs());
    let attempt = |code: String| {
        let app = &app;
        let client = &client;
        async move {
            let mut browser = Browser::new(app);
            let (_, challenge) = pkce();
            let page = to_second_factor(&mut browser, client, &challenge, "alice").await;
            let answer = browser.second_factor(&page, "code", &code).await;
            (
                answer.status == StatusCode::SEE_OTHER && browser.has_session(),
                answer,
            )
        }
    };
    // Two steps away either side: refused.
    for off in [-2, 2] {
        let (ok, page) = attempt(totp::code(&secret, step + off)).await;
        assert!(!ok, "a code {off} steps away");
        assert!(page.body.contains("That code is not right"));
    }
    // One step ahead (a fast phone): accepted, and then the current step,
    // older than the one accepted, is not.
    assert!(attempt(totp::code(&secret, step + 1)).await.0);
    assert!(!attempt(totp::code(&secret, step + 1)).await.0, "replayed");
    assert!(!attempt(totp::code(&secret, step)).await.0, "older step");
    // Later, a code one step behind the clock (a slow phone) is accepted.
    app.clock.advance(3 * totp::STEP);
    let now = totp::step_at(app.clock.now_secs());
    assert!(attempt(totp::code(&secret, now - 1)).await.0);
    assert!(!attempt(totp::code(&secret, now - 1)).await.0, "replayed");
}

async fn wrong_codes_count_against_the_passwords_throttle(app: TestApp) {
    app.user("alice").await;
    let client = code_client(&app, "web", true, true).await;
    let mut setup = Browser::new(&app);
    sign_in_to_account(&mut setup, "alice").await;
    let (secret, _) = enrol(&app, &mut setup).await;
    let mut browser = Browser::new(&app);
    let (_, challenge) = pkce();
    let mut page = to_second_factor(&mut browser, &client, &challenge, "alice").await;
    for _ in 0..3 {
        page = browser.second_factor(&page, "code", "123456").await;
        assert!(page.body.contains("That code is not right"));
    }
    // Locked out: the right code is refused alike, and so is the password.
    let page = browser
        .second_factor(&page, "code", &code_now(&app, &secret))
        .await;
    assert!(
        page.body.contains("That code is not right"),
        "{}",
        page.body
    );
    assert!(!browser.has_session());
    let mut other = Browser::new(&app);
    let form = other.get("/login").await;
    let refused = other.sign_in(&form, "alice", PASSWORD).await;
    assert!(refused.is_sign_in_form(), "the password is locked too");
    assert!(refused.body.contains("incorrect"), "{}", refused.body);
    crate::helpers::until_audited(&app, "login.second_factor_failed").await;
}

async fn a_recovery_code_signs_in_once(app: TestApp) {
    app.user("alice").await;
    let client = code_client(&app, "web", true, true).await;
    let mut setup = Browser::new(&app);
    sign_in_to_account(&mut setup, "alice").await;
    let (_, codes) = enrol(&app, &mut setup).await;
    let typed = codes[3].to_uppercase().replace('-', " ");
    let use_code = |code: String| {
        let app = &app;
        let client = &client;
        async move {
            let mut browser = Browser::new(app);
            let (verifier, challenge) = pkce();
            let page = to_second_factor(&mut browser, client, &challenge, "alice").await;
            let answer = browser.second_factor(&page, "recovery_code", &code).await;
            if !browser.has_session() {
                return None;
            }
            let code = to_code(&mut browser, answer).await;
            Some(tokens(app, client, &code, &verifier).await)
        }
    };
    let issued = use_code(typed.clone())
        .await
        .expect("a recovery code signs in");
    let id = jwt_claims(issued["id_token"].as_str().unwrap());
    assert_eq!(id["amr"], json!(["pwd", "otp", "mfa"]));
    assert!(use_code(typed).await.is_none(), "each code works once");
    assert!(use_code("aaaa-bbbb-cccc-dddd".into()).await.is_none());
    let account = setup.get("/account").await;
    assert_eq!(
        account.text_of("totp-status").as_deref(),
        Some("An authenticator app is set up. 9 recovery codes left.")
    );
    crate::helpers::until_audited(&app, "recovery_code.used").await;
}

async fn acr_values_steps_a_live_session_up_to_the_second_factor(app: TestApp) {
    app.user("alice").await;
    app.user("bob").await;
    let client = code_client(&app, "web", true, true).await;
    let mfa = "urn:sigil:acr:mfa";
    let with_acr = |challenge: &str, extra: &[(&'static str, &'static str)]| {
        let mut params: Vec<(String, String)> = request(&client, challenge)
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        for (k, v) in extra {
            params.push((k.to_string(), v.to_string()));
        }
        params
    };
    // alice signs in with her password, then sets up an app: her session
    // is still a one-factor one.
    let mut browser = Browser::new(&app);
    sign_in_to_account(&mut browser, "alice").await;
    let (secret, _) = enrol(&app, &mut browser).await;
    let (verifier, challenge) = pkce();
    let params = with_acr(&challenge, &[("acr_values", mfa)]);
    let pairs: Vec<(&str, &str)> = params
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let page = browser.authorize(&pairs).await;
    assert!(page.is_second_factor_form(), "{}", page.body);
    assert!(
        page.body.contains("id=\"skip\""),
        "acr_values may be declined"
    );
    // prompt=none cannot ask: interaction_required.
    let mut none = pairs.clone();
    none.push(("prompt", "none"));
    let refused = browser.authorize(&none).await;
    assert_eq!(refused.redirect_params()["error"], "interaction_required");
    let page = browser
        .second_factor(&page, "code", &code_now(&app, &secret))
        .await;
    let code = to_code(&mut browser, page).await;
    let id = jwt_claims(
        tokens(&app, &client, &code, &verifier).await["id_token"]
            .as_str()
            .unwrap(),
    );
    assert_eq!(id["acr"], mfa);
    assert_eq!(id["amr"], json!(["pwd", "otp", "mfa"]));

    // bob has no second factor: acr_values is voluntary, so he goes on
    // and the ID token says what he has.
    let mut bob = Browser::new(&app);
    let (verifier, challenge) = pkce();
    let params = with_acr(&challenge, &[("acr_values", mfa)]);
    let pairs: Vec<(&str, &str)> = params
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let form = bob.authorize(&pairs).await;
    let page = bob.sign_in(&form, "bob", PASSWORD).await;
    let code = to_code(&mut bob, page).await;
    let id = jwt_claims(
        tokens(&app, &client, &code, &verifier).await["id_token"]
            .as_str()
            .unwrap(),
    );
    assert_eq!(id["acr"], "urn:sigil:acr:1fa");
    assert_eq!(id["amr"], json!(["pwd"]));

    // A user who may add a factor but declines ("Continue without").
    let mut carol = Browser::new(&app);
    app.user("carol").await;
    sign_in_to_account(&mut carol, "carol").await;
    enrol(&app, &mut carol).await;
    let (verifier, challenge) = pkce();
    let params = with_acr(&challenge, &[("acr_values", mfa)]);
    let pairs: Vec<(&str, &str)> = params
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let page = carol.authorize(&pairs).await;
    assert!(page.is_second_factor_form());
    let csrf = page.field("csrf").unwrap();
    let request_field = page.field("request").unwrap();
    let skipped = carol
        .post(
            "/login/second-factor",
            &[("csrf", &csrf), ("request", &request_field), ("skip", "1")],
        )
        .await;
    let code = to_code(&mut carol, skipped).await;
    let id = jwt_claims(
        tokens(&app, &client, &code, &verifier).await["id_token"]
            .as_str()
            .unwrap(),
    );
    assert_eq!(id["acr"], "urn:sigil:acr:1fa");
}

async fn a_client_requiring_mfa_has_a_user_without_one_set_up_an_authenticator(app: TestApp) {
    app.user("alice").await;
    let client = app
        .client_from(sigil::clients::NewClient {
            require_mfa: true,
            ..crate::browser::code_client_settings("strict", true, true)
        })
        .await;
    let mut browser = Browser::new(&app);
    let (verifier, challenge) = pkce();
    let form = browser.authorize(&request(&client, &challenge)).await;
    let required = browser.sign_in(&form, "alice", PASSWORD).await;
    assert!(
        required.body.contains("id=\"enrol-reason\""),
        "{}",
        required.body
    );
    assert!(required.body.contains("<strong>strict</strong> requires"));
    // prompt=none cannot set one up.
    let mut none = request(&client, &challenge);
    none.push(("prompt", "none"));
    let refused = browser.authorize(&none).await;
    assert_eq!(refused.redirect_params()["error"], "interaction_required");
    let setup = browser
        .post(
            "/account/totp",
            &[
                ("csrf", &required.field("csrf").unwrap()),
                ("request", &required.field("request").unwrap()),
            ],
        )
        .await;
    let secret = shown_secret(&setup);
    let codes = browser
        .post(
            "/account/totp/confirm",
            &[
                ("csrf", &setup.field("csrf").unwrap()),
                ("request", &setup.field("request").unwrap()),
                ("code", &code_now(&app, &secret)),
            ],
        )
        .await;
    assert_eq!(codes.status, StatusCode::OK, "{}", codes.body);
    let next = codes.field_href("continue").expect("continue link");
    assert!(next.starts_with("/authorize?"), "{next}");
    let page = browser.get(&next).await;
    let code = to_code(&mut browser, page).await;
    let id = jwt_claims(
        tokens(&app, &client, &code, &verifier).await["id_token"]
            .as_str()
            .unwrap(),
    );
    assert_eq!(id["acr"], "urn:sigil:acr:mfa");

    // The client stops requiring it (admin API): a password is enough for
    // a user without factors again.
    app.user("bob").await;
    let admin = crate::admin::admin_token(&app).await;
    let response = app
        .post("/admin/clients/strict/optional-mfa")
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    app.until_client_change_holds("optional-mfa", || async {
        let mut bob = Browser::new(&app);
        let (_, challenge) = pkce();
        let form = bob.authorize(&request(&client, &challenge)).await;
        let page = bob.sign_in(&form, "bob", PASSWORD).await;
        page.status == StatusCode::SEE_OTHER
    })
    .await;
}

async fn an_admin_resets_a_users_factors_and_the_reset_is_audited(app: TestApp) {
    app.user("alice").await;
    let client = code_client(&app, "web", true, true).await;
    let mut setup = Browser::new(&app);
    sign_in_to_account(&mut setup, "alice").await;
    enrol(&app, &mut setup).await;
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
    assert_eq!(factors["totp"], true);
    assert_eq!(factors["recovery_codes_left"], 10);
    assert_eq!(factors["password"], true);
    let response = app
        .post("/admin/users/alice/reset-factors")
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["removed"]["totp"], 1);
    assert_eq!(body["removed"]["recovery_codes"], 10);
    // Her password alone signs her in again.
    let mut browser = Browser::new(&app);
    let (_, challenge) = pkce();
    let form = browser.authorize(&request(&client, &challenge)).await;
    let page = browser.sign_in(&form, "alice", PASSWORD).await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
    let event = crate::helpers::until_audited(&app, "factors.reset").await;
    assert!(event.actor.starts_with("client:"), "{}", event.actor);
    // An unknown user is a 404.
    let missing = app
        .post("/admin/users/nobody/reset-factors")
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
}

async fn the_totp_secret_is_sealed_at_rest_and_survives_a_kek_rewrap(app: TestApp) {
    app.user("alice").await;
    let mut setup = Browser::new(&app);
    sign_in_to_account(&mut setup, "alice").await;
    let (secret, _) = enrol(&app, &mut setup).await;
    let store = app.sigil.store.as_ref();
    let user = store.user_by_username("alice").await.unwrap().unwrap();
    let sealed = store.totp(&user.id).await.unwrap().unwrap().secret;
    assert!(
        !sealed.windows(secret.len()).any(|w| w == secret.as_slice()),
        "the stored secret is not the secret"
    );
    let kek = app.sigil.keys.kek();
    assert_eq!(
        kek.open_totp(&user.id, &sealed).unwrap().as_slice(),
        secret.as_slice()
    );
    assert!(
        kek.open_totp("someone-else", &sealed).is_err(),
        "bound to its user"
    );
    // A rewrap re-seals it under the new KEK with the signing keys.
    let (new, _) = sigil::keys::Kek::generate().unwrap();
    let audit = sigil::audit::Audit::new();
    let by = sigil::audit::By {
        trail: &audit,
        actor: "cli",
        at: app.clock.now_secs(),
    };
    sigil::keys::ops::rewrap(store, kek, &new, by, false)
        .await
        .expect("rewrapped");
    let resealed = store.totp(&user.id).await.unwrap().unwrap().secret;
    assert_eq!(
        new.open_totp(&user.id, &resealed).unwrap().as_slice(),
        secret.as_slice()
    );
    assert!(kek.open_totp(&user.id, &resealed).is_err());
}

async fn password_and_client_credentials_tokens_say_how_or_say_nothing(app: TestApp) {
    app.user("alice").await;
    let client = app.confidential_client("legacy").await;
    let token = app.access_token(&client, "alice").await;
    let claims = jwt_claims(&token);
    assert_eq!(claims["amr"], json!(["pwd"]));
    assert_eq!(claims["acr"], "urn:sigil:acr:1fa");
    let service = app
        .client(
            "svc",
            false,
            &[sigil::clients::GrantType::ClientCredentials],
            "read",
            None,
        )
        .await;
    let response = app
        .token(&service, &[("grant_type", "client_credentials")])
        .await;
    let body: Value = response.json().await.unwrap();
    let claims = jwt_claims(body["access_token"].as_str().unwrap());
    assert!(claims.get("amr").is_none() && claims.get("acr").is_none());
    // The discovery document lists the classes and the claims.
    let metadata: Value = app
        .get("/.well-known/openid-configuration")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        metadata["acr_values_supported"],
        json!(["urn:sigil:acr:1fa", "urn:sigil:acr:mfa", "phr", "phrh"])
    );
    let claims_supported = metadata["claims_supported"].as_array().unwrap();
    assert!(claims_supported.contains(&json!("acr")));
    assert!(claims_supported.contains(&json!("amr")));
}
