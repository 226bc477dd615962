//! Registering clients for the authorization code flow (CLI and admin API),
//! and switching the password grant off (RFC 9700 §2.4).

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::admin::{admin_token, call};
use crate::browser::{Browser, code_for};
use crate::cli::{run, sigil};
use crate::helpers::{Backend, PASSWORD, TestApp};
use crate::on_both_backends;

on_both_backends!(
    the_cli_registers_a_web_app_with_redirect_uris_in_one_command,
    the_admin_api_registers_and_lists_redirect_uris,
    consent_is_listed_and_revoked_by_the_admin_api_and_the_cli,
    disabling_a_user_ends_their_browser_sessions,
);

on_both_backends!(
    spawn = super::without_password_grant;
    a_server_without_the_password_grant_refuses_it_and_does_not_advertise_it,
);

async fn without_password_grant(backend: Backend) -> Option<TestApp> {
    TestApp::spawn_with(backend, |c| c.password_grant = false).await
}

async fn the_cli_registers_a_web_app_with_redirect_uris_in_one_command(app: TestApp) {
    let cli = |args: &[&str]| {
        let mut command = sigil(app.dir.path());
        command
            .args(args)
            .env("SIGIL_DATABASE_URL", &app.database_url);
        run(command, None)
    };
    for (uri, says) in [
        ("http://app.example/cb", "https"),
        ("https://app.example/cb#x", "fragment"),
        ("/cb", "absolute"),
        ("http://localhost/cb", "https"),
    ] {
        let out = cli(&["clients", "create", "bad", "--redirect-uri", uri]);
        assert!(!out.status.success(), "{uri} refused");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(says), "{uri}: {stderr}");
    }
    // The default is the code flow, so a client without a redirect URI must
    // name its grants; the password grant only when asked for.
    let out = cli(&["clients", "create", "web", "--scopes", "openid profile"]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("redirect URI") && stderr.contains("client_credentials"),
        "{stderr}"
    );
    let out = cli(&[
        "clients",
        "create",
        "web",
        "--grant-types",
        "password,refresh_token",
    ]);
    assert!(out.status.success());
    let out = cli(&[
        "clients",
        "create",
        "portal",
        "--scopes",
        "openid profile",
        "--redirect-uri",
        "https://portal.example/cb",
        "--redirect-uri",
        "http://127.0.0.1/cb",
        "--post-logout-redirect-uri",
        "https://portal.example/bye",
        "--first-party",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = cli(&["clients", "list", "--json"]);
    let listed: Value = serde_json::from_slice(&out.stdout).expect("json");
    let rows = listed
        .as_array()
        .or_else(|| listed["clients"].as_array())
        .expect("rows");
    let portal = rows
        .iter()
        .find(|c| c["client_id"] == "portal")
        .expect("portal listed");
    assert_eq!(
        portal["grant_types"],
        json!(["authorization_code", "refresh_token"])
    );
    assert_eq!(
        portal["redirect_uris"],
        json!(["https://portal.example/cb", "http://127.0.0.1/cb"])
    );
    assert_eq!(
        portal["post_logout_redirect_uris"],
        json!(["https://portal.example/bye"])
    );
    assert_eq!(portal["first_party"], true);
    let web = rows
        .iter()
        .find(|c| c["client_id"] == "web")
        .expect("web listed");
    assert_eq!(
        web["grant_types"],
        json!(["password", "refresh_token"]),
        "asked for"
    );
    // authorization_code without a redirect URI cannot work: refused.
    let out = cli(&[
        "clients",
        "create",
        "lost",
        "--grant-types",
        "authorization_code",
    ]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("redirect URI"));
}

async fn the_admin_api_registers_and_lists_redirect_uris(app: TestApp) {
    let admin = admin_token(&app).await;
    let body = json!({
        "client_id": "spa", "public": true, "scopes": "openid profile",
        "redirect_uris": ["https://spa.example/cb"],
        "post_logout_redirect_uris": ["https://spa.example/"],
    });
    let (status, created) = call(&app, Method::POST, "/admin/clients", &admin, Some(body)).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(created["redirect_uris"], json!(["https://spa.example/cb"]));
    assert_eq!(
        created["grant_types"],
        json!(["authorization_code", "refresh_token"])
    );
    // No grant types and no redirect URI: the default code flow cannot work.
    let lost = json!({ "client_id": "lost", "scopes": "openid" });
    let (status, error) = call(&app, Method::POST, "/admin/clients", &admin, Some(lost)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(error["error"], "invalid_request");
    assert!(
        error["error_description"]
            .as_str()
            .unwrap_or_default()
            .contains("redirect URI"),
        "{error}"
    );
    let bad = json!({ "client_id": "bad", "redirect_uris": ["http://evil.example/cb"] });
    let (status, error) = call(&app, Method::POST, "/admin/clients", &admin, Some(bad)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        error["error_description"]
            .as_str()
            .unwrap_or_default()
            .contains("https"),
        "{error}"
    );
    // The registered client works at once.
    app.user("alice").await;
    let mut browser = Browser::new(&app);
    let (_, challenge) = crate::browser::pkce();
    let page = browser
        .authorize(&[
            ("response_type", "code"),
            ("client_id", "spa"),
            ("redirect_uri", "https://spa.example/cb"),
            ("scope", "openid"),
            ("code_challenge", &challenge),
            ("code_challenge_method", "S256"),
        ])
        .await;
    assert!(page.is_sign_in_form(), "{}", page.body);
}

async fn a_server_without_the_password_grant_refuses_it_and_does_not_advertise_it(app: TestApp) {
    app.user("alice").await;
    let legacy = app.confidential_client("legacy").await;
    let response = app.password_grant(&legacy, "alice", PASSWORD).await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let body: Value = response.json().await.expect("json");
    assert_eq!(body["error"], "unsupported_grant_type");
    let metadata: Value = app
        .get("/.well-known/openid-configuration")
        .send()
        .await
        .expect("metadata")
        .json()
        .await
        .expect("json");
    let grants = metadata["grant_types_supported"]
        .as_array()
        .expect("grants");
    assert!(!grants.iter().any(|g| g == "password"), "{grants:?}");
    // The browser flow still signs alice in.
    let client = crate::browser::code_client(&app, "web", true, true).await;
    let mut browser = Browser::new(&app);
    code_for(&mut browser, &client, "alice").await;
}

async fn consent_is_listed_and_revoked_by_the_admin_api_and_the_cli(app: TestApp) {
    app.user("alice").await;
    let web = crate::browser::code_client(&app, "web", true, false).await;
    let spa = crate::browser::code_client(&app, "spa", true, false).await;
    let mut browser = Browser::new(&app);
    code_for(&mut browser, &web, "alice").await;
    code_for(&mut browser, &spa, "alice").await;
    let admin = admin_token(&app).await;
    let (status, listed) = call(
        &app,
        Method::GET,
        "/admin/users/alice/consents",
        &admin,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let clients: Vec<&str> = listed["consents"]
        .as_array()
        .expect("consents")
        .iter()
        .filter_map(|c| c["client_id"].as_str())
        .collect();
    assert_eq!(clients, ["spa", "web"]);
    let (status, _) = call(
        &app,
        Method::POST,
        "/admin/users/alice/consents/web/revoke",
        &admin,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = call(
        &app,
        Method::POST,
        "/admin/users/alice/consents/web/revoke",
        &admin,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "revoked already");
    let (status, _) = call(
        &app,
        Method::GET,
        "/admin/users/nobody/consents",
        &admin,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (_, challenge) = crate::browser::pkce();
    assert!(
        browser
            .authorize(&crate::browser::request(&web, &challenge))
            .await
            .is_consent_form()
    );

    let cli = |args: &[&str]| {
        let mut command = sigil(app.dir.path());
        command
            .args(args)
            .env("SIGIL_DATABASE_URL", &app.database_url);
        if let Some(kek) = &app.sigil.config.kek {
            command.env("SIGIL_KEK", secrecy::ExposeSecret::expose_secret(kek));
        }
        run(command, None)
    };
    let out = cli(&["users", "consents", "alice"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "spa\topenid profile email\n"
    );
    let out = cli(&["users", "revoke-consent", "alice", "spa"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = cli(&["users", "revoke-consent", "alice", "spa"]);
    assert!(!out.status.success(), "nothing left to revoke");
    assert!(
        browser
            .authorize(&crate::browser::request(&spa, &challenge))
            .await
            .is_consent_form()
    );
}

async fn disabling_a_user_ends_their_browser_sessions(app: TestApp) {
    app.user("alice").await;
    let client = crate::browser::code_client(&app, "web", true, true).await;
    let mut browser = Browser::new(&app);
    code_for(&mut browser, &client, "alice").await;
    let admin = admin_token(&app).await;
    app.clock.advance(1);
    let (status, _) = call(
        &app,
        Method::POST,
        "/admin/users/alice/disable",
        &admin,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let (_, challenge) = crate::browser::pkce();
    let page = browser
        .authorize(&crate::browser::request(&client, &challenge))
        .await;
    assert!(page.is_sign_in_form(), "the session ended with the account");
    let page = browser.sign_in(&page, "alice", PASSWORD).await;
    assert!(page.is_sign_in_form(), "and a disabled user cannot sign in");
    let (status, _) = call(
        &app,
        Method::POST,
        "/admin/users/alice/enable",
        &admin,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let page = browser
        .authorize(&crate::browser::request(&client, &challenge))
        .await;
    assert!(
        page.is_sign_in_form(),
        "enabling does not bring the old session back"
    );
}
