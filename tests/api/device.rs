//! The device authorization grant, RFC 8628: the device's two requests,
//! each answer of §3.5 (`authorization_pending`, `slow_down` and the
//! interval it grows, `access_denied`, `expired_token`), single use, the
//! `/device` page with its throttle against guessed codes, and a client
//! that requires a second factor.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::browser::{Browser, Page, jwt_claims};
use crate::cli::{run, sigil};
use crate::helpers::{Backend, PASSWORD, TestApp, TestClient};
use crate::mfa::{code_now, enrol, sign_in_to_account};
use crate::on_both_backends;

const DEVICE_GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";

on_both_backends!(
    a_device_is_signed_in_once_the_user_approves_its_code,
    polling_faster_than_the_interval_slows_the_device_down,
    a_denied_or_expired_request_says_so_to_the_device,
    device_codes_belong_to_their_client_and_bad_requests_get_rfc_errors,
    a_client_requiring_mfa_gets_the_second_factor_on_the_device_page,
);

on_both_backends!(spawn = super::throttled; guessing_user_codes_is_throttled);

async fn throttled(backend: Backend) -> Option<TestApp> {
    TestApp::spawn_with(backend, |c| {
        c.throttle.pair_free_failures = 3;
        c.throttle.pair_limit = 3;
        c.throttle.account_limit = 100;
        c.throttle.max_delay = Duration::ZERO;
    })
    .await
}

/// A public device client allowed to refresh, as the CLI registers one.
async fn device_client(app: &TestApp, id: &str, require_mfa: bool) -> TestClient {
    app.client_from(sigil::clients::NewClient {
        id: id.to_string(),
        public: true,
        grant_types: vec![
            sigil::clients::GrantType::DeviceCode,
            sigil::clients::GrantType::RefreshToken,
        ],
        scopes: sigil::scope::Scopes::parse("openid profile").unwrap(),
        require_mfa,
        ..sigil::clients::NewClient::default()
    })
    .await
}

/// `POST /oauth/device_authorization`.
async fn start(app: &TestApp, client: &TestClient, scope: &str) -> (StatusCode, Value) {
    let response = app
        .client_post("/oauth/device_authorization", client, &[("scope", scope)])
        .await;
    let status = response.status();
    if status == StatusCode::OK {
        assert_eq!(response.headers()["cache-control"], "no-store");
    }
    (status, response.json().await.unwrap())
}

/// One poll of the token endpoint.
async fn poll(app: &TestApp, client: &TestClient, device_code: &str) -> (StatusCode, Value) {
    let response = app
        .token(
            client,
            &[("grant_type", DEVICE_GRANT), ("device_code", device_code)],
        )
        .await;
    (response.status(), response.json().await.unwrap())
}

/// The browser at `/device?user_code=…`, signed in first if it is not:
/// the page it lands on.
async fn open_device_page(browser: &mut Browser<'_>, user_code: &str) -> Page {
    let path = format!("/device?user_code={user_code}");
    let page = browser.get(&path).await;
    if !page.is_sign_in_form() {
        return page;
    }
    assert_eq!(page.field("device").as_deref(), Some(user_code));
    let signed_in = browser.sign_in(&page, "alice", PASSWORD).await;
    assert_eq!(
        signed_in.status,
        StatusCode::SEE_OTHER,
        "{}",
        signed_in.body
    );
    assert_eq!(signed_in.location(), path);
    browser.get(&path).await
}

async fn decide(browser: &mut Browser<'_>, confirm: &Page, decision: &str) -> Page {
    assert!(
        confirm.body.contains("id=\"device-decision-form\""),
        "{}",
        confirm.body
    );
    browser
        .post(
            "/device/decision",
            &[
                ("csrf", &confirm.field("csrf").unwrap()),
                ("user_code", &confirm.field("user_code").unwrap()),
                ("decision", decision),
            ],
        )
        .await
}

async fn a_device_is_signed_in_once_the_user_approves_its_code(app: TestApp) {
    app.user("alice").await;
    // Registered as the CLI example does it.
    let mut command = sigil(app.dir.path());
    command
        .args([
            "clients",
            "create",
            "my-cli",
            "--public",
            "--grant-types",
            &format!("{DEVICE_GRANT},refresh_token"),
            "--scopes",
            "openid profile",
        ])
        .env("SIGIL_DATABASE_URL", &app.database_url);
    let out = run(command, None);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let client = TestClient {
        id: "my-cli".into(),
        secret: None,
    };
    let metadata: Value = app
        .get("/.well-known/openid-configuration")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let endpoint = format!("{}/oauth/device_authorization", app.sigil.config.issuer);
    assert_eq!(metadata["device_authorization_endpoint"], endpoint.as_str());
    assert!(
        metadata["grant_types_supported"]
            .as_array()
            .unwrap()
            .contains(&json!(DEVICE_GRANT))
    );

    let (status, started) = start(&app, &client, "openid profile").await;
    assert_eq!(status, StatusCode::OK, "{started}");
    let user_code = started["user_code"].as_str().unwrap().to_string();
    let ok = user_code.len() == 9
        && user_code.chars().enumerate().all(|(i, c)| {
            if i == 4 {
                c == '-'
            } else {
                "BCDFGHJKLMNPQRSTVWXZ".contains(c)
            }
        });
    assert!(ok, "{user_code}");
    let issuer = &app.sigil.config.issuer;
    assert_eq!(started["verification_uri"], format!("{issuer}/device"));
    assert_eq!(
        started["verification_uri_complete"],
        format!("{issuer}/device?user_code={user_code}")
    );
    assert_eq!(started["expires_in"], 600);
    assert_eq!(started["interval"], 5);
    let device_code = started["device_code"].as_str().unwrap().to_string();

    let (status, pending) = poll(&app, &client, &device_code).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(pending["error"], "authorization_pending");

    // The user, on another device's browser: signs in, sees the same code
    // and what the app asks for, approves.
    let mut browser = Browser::new(&app);
    let confirm = open_device_page(&mut browser, &user_code.to_lowercase()).await;
    assert_eq!(
        confirm.text_of("user-code").as_deref(),
        Some(user_code.as_str())
    );
    assert!(confirm.body.contains("<strong>my-cli</strong>"));
    assert!(
        confirm
            .body
            .contains("<span class=\"scope\">profile</span>")
    );
    let done = decide(&mut browser, &confirm, "allow").await;
    assert!(
        done.body.contains("id=\"device-approved\""),
        "{}",
        done.body
    );

    app.clock.advance(5);
    let (status, tokens) = poll(&app, &client, &device_code).await;
    assert_eq!(status, StatusCode::OK, "{tokens}");
    assert!(tokens["refresh_token"].is_string());
    let id = jwt_claims(tokens["id_token"].as_str().unwrap());
    let alice = app
        .sigil
        .store
        .user_by_username("alice")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(id["sub"], alice.id.as_str());
    assert_eq!(id["aud"], "my-cli");
    assert_eq!(id["amr"], json!(["pwd"]));
    assert!(id["sid"].is_string() && id["auth_time"].is_i64());
    let access = jwt_claims(tokens["access_token"].as_str().unwrap());
    assert_eq!(access["client_id"], "my-cli");
    assert_eq!(access["scope"], "openid profile");
    // The refresh token works like any other.
    let refreshed = app
        .refresh(&client, tokens["refresh_token"].as_str().unwrap(), None)
        .await;
    assert_eq!(refreshed.status(), StatusCode::OK);

    // Single use: the device code, and the user code on the page.
    app.clock.advance(5);
    let (status, again) = poll(&app, &client, &device_code).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(again["error"], "invalid_grant");
    let page = browser.get(&format!("/device?user_code={user_code}")).await;
    assert!(
        page.body.contains("not valid, or it has expired"),
        "{}",
        page.body
    );
    crate::helpers::until_audited(&app, "device.approved").await;
}

async fn polling_faster_than_the_interval_slows_the_device_down(app: TestApp) {
    let client = device_client(&app, "tv", false).await;
    let (_, started) = start(&app, &client, "openid").await;
    let device_code = started["device_code"].as_str().unwrap();
    // The first poll may come at once (the interval is between polls).
    let (_, pending) = poll(&app, &client, device_code).await;
    assert_eq!(pending["error"], "authorization_pending");
    // Again at once, before the interval has passed: slow down, by 5 s.
    let (status, slow) = poll(&app, &client, device_code).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(slow["error"], "slow_down");
    assert!(
        slow["error_description"]
            .as_str()
            .unwrap()
            .contains("10 seconds"),
        "{slow}"
    );
    // 5 s later is still too soon (the interval is 10 s now).
    app.clock.advance(5);
    let (_, slow) = poll(&app, &client, device_code).await;
    assert_eq!(slow["error"], "slow_down");
    assert!(
        slow["error_description"]
            .as_str()
            .unwrap()
            .contains("15 seconds")
    );
    app.clock.advance(15);
    let (_, pending) = poll(&app, &client, device_code).await;
    assert_eq!(pending["error"], "authorization_pending");
    // The interval does not shrink back: 10 s later is too soon again.
    app.clock.advance(10);
    let (_, slow) = poll(&app, &client, device_code).await;
    assert_eq!(slow["error"], "slow_down");
}

async fn a_denied_or_expired_request_says_so_to_the_device(app: TestApp) {
    app.user("alice").await;
    let client = device_client(&app, "tv", false).await;
    let (_, started) = start(&app, &client, "openid").await;
    let mut browser = Browser::new(&app);
    let confirm = open_device_page(&mut browser, started["user_code"].as_str().unwrap()).await;
    let done = decide(&mut browser, &confirm, "deny").await;
    assert!(done.body.contains("id=\"device-denied\""));
    app.clock.advance(5);
    let (_, denied) = poll(&app, &client, started["device_code"].as_str().unwrap()).await;
    assert_eq!(denied["error"], "access_denied");

    let (_, started) = start(&app, &client, "openid").await;
    app.clock.advance(600);
    let (_, expired) = poll(&app, &client, started["device_code"].as_str().unwrap()).await;
    assert_eq!(expired["error"], "expired_token");
    // The page no longer finds it either; approving an old form fails.
    let page = browser
        .get(&format!(
            "/device?user_code={}",
            started["user_code"].as_str().unwrap()
        ))
        .await;
    assert!(page.body.contains("not valid, or it has expired"));
    let late = browser
        .post(
            "/device/decision",
            &[
                ("csrf", &page.field("csrf").unwrap()),
                ("user_code", started["user_code"].as_str().unwrap()),
                ("decision", "allow"),
            ],
        )
        .await;
    assert!(late.body.contains("has expired or was already answered"));
}

async fn device_codes_belong_to_their_client_and_bad_requests_get_rfc_errors(app: TestApp) {
    app.user("alice").await;
    let client = device_client(&app, "tv", false).await;
    let other = device_client(&app, "radio", false).await;
    let (_, started) = start(&app, &client, "openid").await;
    let device_code = started["device_code"].as_str().unwrap();
    let mut browser = Browser::new(&app);
    let confirm = open_device_page(&mut browser, started["user_code"].as_str().unwrap()).await;
    decide(&mut browser, &confirm, "allow").await;
    app.clock.advance(5);
    // Another client cannot redeem it (and learns nothing).
    let (_, stolen) = poll(&app, &other, device_code).await;
    assert_eq!(stolen["error"], "invalid_grant");
    let (status, _) = poll(&app, &client, device_code).await;
    assert_eq!(status, StatusCode::OK, "the rightful client still can");

    let (_, unknown) = poll(&app, &client, "no-such-code").await;
    assert_eq!(unknown["error"], "invalid_grant");
    let response = app.token(&client, &[("grant_type", DEVICE_GRANT)]).await;
    assert_eq!(json_of(response).await["error"], "invalid_request");
    // A client without the grant, at either endpoint.
    let web = crate::browser::code_client(&app, "web", true, true).await;
    let (status, refused) = start(&app, &web, "openid").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(refused["error"], "unauthorized_client");
    let (_, refused) = poll(&app, &web, device_code).await;
    assert_eq!(refused["error"], "unauthorized_client");
    // Scope beyond the client's; unknown client; not a form.
    let (_, wide) = start(&app, &client, "openid admin").await;
    assert_eq!(wide["error"], "invalid_scope");
    let nobody = TestClient {
        id: "nobody".into(),
        secret: None,
    };
    let (status, who) = start(&app, &nobody, "openid").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(who["error"], "invalid_client");
    let response = app
        .post("/oauth/device_authorization")
        .json(&json!({"client_id": "tv"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert_eq!(json_of(response).await["error"], "invalid_request");
}

async fn json_of(response: reqwest::Response) -> Value {
    response.json().await.unwrap()
}

async fn guessing_user_codes_is_throttled(app: TestApp) {
    app.user("alice").await;
    let client = device_client(&app, "tv", false).await;
    let (_, started) = start(&app, &client, "openid").await;
    let mut browser = Browser::new(&app);
    open_device_page(&mut browser, "BCDF-BCDF").await;
    for guess in ["BCDF-GHJK", "ZZZZ-ZZZZ"] {
        let page = browser.get(&format!("/device?user_code={guess}")).await;
        assert!(page.body.contains("not valid"));
    }
    // Locked out now: even the right code is not looked up.
    let page = browser
        .get(&format!(
            "/device?user_code={}",
            started["user_code"].as_str().unwrap()
        ))
        .await;
    assert!(page.body.contains("Too many wrong codes"), "{}", page.body);
    // Guesses lock no one out of signing in.
    let mut other = Browser::new(&app);
    sign_in_to_account(&mut other, "alice").await;
}

async fn a_client_requiring_mfa_gets_the_second_factor_on_the_device_page(app: TestApp) {
    app.user("alice").await;
    let client = device_client(&app, "tv", true).await;
    let (_, started) = start(&app, &client, "openid").await;
    let user_code = started["user_code"].as_str().unwrap();
    // Without a second factor: set one up first.
    let mut browser = Browser::new(&app);
    let page = open_device_page(&mut browser, user_code).await;
    assert!(page.body.contains("id=\"enrol-reason\""), "{}", page.body);
    let (secret, _) = enrol(&app, &mut browser).await;
    // A password session meets a client that requires more: the code.
    let page = browser.get(&format!("/device?user_code={user_code}")).await;
    assert!(page.is_second_factor_form(), "{}", page.body);
    assert_eq!(page.field("device").as_deref(), Some(user_code));
    let next = browser
        .second_factor(&page, "code", &code_now(&app, &secret))
        .await;
    assert_eq!(next.status, StatusCode::SEE_OTHER);
    assert_eq!(next.location(), format!("/device?user_code={user_code}"));
    let confirm = browser.get(next.location()).await;
    decide(&mut browser, &confirm, "allow").await;
    app.clock.advance(5);
    let (status, tokens) = poll(&app, &client, started["device_code"].as_str().unwrap()).await;
    assert_eq!(status, StatusCode::OK, "{tokens}");
    let id = jwt_claims(tokens["id_token"].as_str().unwrap());
    assert_eq!(id["amr"], json!(["pwd", "otp", "mfa"]));
    assert_eq!(id["acr"], "urn:sigil:acr:mfa");
}
