//! The example device app of examples/device (the device authorization
//! grant, RFC 8628, through the `openidconnect` crate) against a live Sigil:
//! the app shows a code and polls while a browser session signs in on
//! `/device` and approves, or denies, it.
//!
//! The app polls in real time; Sigil's clock stays where the test put it.
//! openidconnect polls right away, which Sigil finds too early
//! (`slow_down`), then again 10 s later; if Sigil closes the idle keep-alive
//! connection (`http.header_read_timeout`, 10 s) just as that poll reuses
//! it, the poll is lost and the next one comes 10 s after. So each case
//! takes 10 to 20 s.

use std::time::Duration;

use device_login::{Error, Prompt, Settings, SignedIn};
use reqwest::StatusCode;
use sigil::clients::{GrantType, NewClient};
use sigil::scope::Scopes;
use tokio::task::JoinHandle;

use crate::browser::{Browser, Page};
use crate::helpers::{NowSecs, PASSWORD, TestApp, TestClient, json};
use crate::on_both_backends;

on_both_backends!(
    the_device_example_signs_in_once_a_browser_approves_the_code,
    the_device_example_reports_a_denied_code,
);

/// How long the app may take, from the decision to its answer: see above.
const ANSWER_WITHIN: Duration = Duration::from_secs(30);

/// What `sigil clients create my-cli --public --grant-types
/// urn:ietf:params:oauth:grant-type:device_code,refresh_token --scopes
/// "openid profile"` registers (the README's command).
async fn device_client(app: &TestApp) -> TestClient {
    app.client_from(NewClient {
        id: "my-cli".into(),
        public: true,
        grant_types: vec![GrantType::DeviceCode, GrantType::RefreshToken],
        scopes: Scopes::parse("openid profile").expect("scopes"),
        ..NewClient::default()
    })
    .await
}

/// Runs the example's `sign_in` in a task of its own; returns what it shows
/// the user, and the task.
async fn start(
    app: &TestApp,
    client: &TestClient,
) -> (Prompt, JoinHandle<Result<SignedIn, Error>>) {
    let settings = Settings {
        issuer: app.sigil.config.issuer.clone(),
        client_id: client.id.clone(),
    };
    let (shown, prompt) = tokio::sync::oneshot::channel();
    let task = tokio::spawn(async move {
        device_login::sign_in(&settings, move |prompt| {
            let _ = shown.send(prompt.clone());
        })
        .await
    });
    let prompt = tokio::time::timeout(Duration::from_secs(10), prompt)
        .await
        .expect("the example shows a code in time")
        .expect("the example shows a code before it ends");
    (prompt, task)
}

/// The app's answer, once the browser has decided.
async fn answer(task: JoinHandle<Result<SignedIn, Error>>) -> Result<SignedIn, Error> {
    tokio::time::timeout(ANSWER_WITHIN, task)
        .await
        .expect("the example answers in time")
        .expect("the example's task does not panic")
}

/// A browser without a session follows the prompt's complete URI, signs
/// `username` in there, and is sent on to the confirm page for the code.
async fn confirm_page(browser: &mut Browser<'_>, prompt: &Prompt, username: &str) -> Page {
    let issuer = browser.app.sigil.config.issuer.clone();
    assert_eq!(prompt.verification_uri, format!("{issuer}/device"));
    let complete = prompt
        .verification_uri_complete
        .as_deref()
        .expect("a verification_uri_complete");
    let path = complete
        .strip_prefix(issuer.as_str())
        .unwrap_or_else(|| panic!("{complete} is not on Sigil"));
    assert_eq!(path, format!("/device?user_code={}", prompt.user_code));

    // Not signed in: the sign-in form, carrying the code in a hidden field.
    let form = browser.get(path).await;
    assert_eq!(form.status, StatusCode::OK);
    assert!(form.is_sign_in_form(), "{}", form.body);
    let device = form.field("device").expect("the device field");
    assert_eq!(device, prompt.user_code);
    let signed_in = browser
        .post(
            "/login",
            &[
                ("csrf", &form.field("csrf").expect("csrf field")),
                ("request", ""),
                ("device", &device),
                ("username", username),
                ("password", PASSWORD),
            ],
        )
        .await;
    assert_eq!(
        signed_in.status,
        StatusCode::SEE_OTHER,
        "{}",
        signed_in.body
    );
    assert_eq!(signed_in.location(), path);

    // Signed in: the page names the code and the app, and asks.
    let confirm = browser.get(signed_in.location()).await;
    assert_eq!(confirm.status, StatusCode::OK);
    assert!(
        confirm.body.contains("id=\"device-decision-form\""),
        "{}",
        confirm.body
    );
    assert_eq!(confirm.field("user_code"), Some(prompt.user_code.clone()));
    assert!(confirm.body.contains("my-cli"), "{}", confirm.body);
    confirm
}

/// Presses "Allow" or "Deny" on the confirm page.
async fn decide(browser: &mut Browser<'_>, confirm: &Page, decision: &str) -> Page {
    let csrf = confirm.field("csrf").expect("csrf field");
    let user_code = confirm.field("user_code").expect("user_code field");
    let done = browser
        .post(
            "/device/decision",
            &[
                ("csrf", &csrf),
                ("user_code", &user_code),
                ("decision", decision),
            ],
        )
        .await;
    assert_eq!(done.status, StatusCode::OK, "{}", done.body);
    done
}

async fn the_device_example_signs_in_once_a_browser_approves_the_code(app: TestApp) {
    app.user("alice").await;
    let client = device_client(&app).await;
    let (prompt, task) = start(&app, &client).await;
    assert_eq!(prompt.user_code.len(), 9, "BCDF-GHJK: {}", prompt.user_code);
    assert_eq!(prompt.expires_in, Duration::from_secs(600));

    let mut browser = Browser::new(&app);
    let confirm = confirm_page(&mut browser, &prompt, "alice").await;
    let signed_in_at = app.clock.now_secs();
    let done = decide(&mut browser, &confirm, "allow").await;
    assert!(
        done.body.contains("id=\"device-approved\""),
        "{}",
        done.body
    );

    // The example's ID token, verified by openidconnect, names alice and
    // says how she signed in on the browser: a password, one factor.
    let user = answer(task).await.expect("the example signs in");
    let alice = app
        .sigil
        .store
        .user_by_username("alice")
        .await
        .expect("store")
        .expect("alice");
    assert_eq!(user.subject, alice.id);
    assert_eq!(user.username.as_deref(), Some("alice"));
    assert_eq!(user.amr, ["pwd"]);
    assert_eq!(user.acr.as_deref(), Some("urn:sigil:acr:1fa"));
    assert_eq!(user.auth_time, Some(signed_in_at));

    // Its tokens work: the access token for alice, the refresh token once.
    let me = app.me(&user.access_token).await;
    assert_eq!(me.status(), StatusCode::OK);
    assert_eq!(json(me).await["id"], alice.id.as_str());
    let refresh_token = user.refresh_token.expect("a refresh token");
    let refreshed = app.refresh(&client, &refresh_token, None).await;
    assert_eq!(refreshed.status(), StatusCode::OK);

    // The code was answered: the page no longer knows it.
    let again = browser
        .get(&format!("/device?user_code={}", prompt.user_code))
        .await;
    assert!(
        again.body.contains("id=\"device-form\"") && again.body.contains("id=\"error\""),
        "{}",
        again.body
    );
}

async fn the_device_example_reports_a_denied_code(app: TestApp) {
    app.user("bob").await;
    let client = device_client(&app).await;
    let (prompt, task) = start(&app, &client).await;

    let mut browser = Browser::new(&app);
    let confirm = confirm_page(&mut browser, &prompt, "bob").await;
    let done = decide(&mut browser, &confirm, "deny").await;
    assert!(done.body.contains("id=\"device-denied\""), "{}", done.body);

    // Sigil answers the next poll with access_denied; the example says so.
    let refused = answer(task).await;
    assert!(matches!(refused, Err(Error::Denied)), "{refused:?}");
    assert_eq!(refused.unwrap_err().to_string(), "the sign-in was denied");
}
