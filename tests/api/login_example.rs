//! The example app of examples/login (a relying party built on the
//! `openidconnect` crate) against a live Sigil: sign in through the hosted
//! pages, the app's own checks, and RP-initiated logout back to the app.

use reqwest::{StatusCode, header};
use sigil::clients::{GrantType, NewClient};
use sigil::scope::Scopes;

use crate::browser::Browser;
use crate::helpers::{TestApp, TestClient};
use crate::on_both_backends;

on_both_backends!(the_example_app_signs_a_user_in_and_out_with_openidconnect);

/// The example app, serving on a port of its own.
struct Example {
    base: String,
    http: reqwest::Client,
    cookies: String,
}

impl Example {
    async fn start(app: &TestApp, client: &TestClient) -> Example {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let base = format!("http://{}", listener.local_addr().expect("addr"));
        let example = login_with_sigil::App::discover(login_with_sigil::Settings {
            issuer: app.sigil.config.issuer.clone(),
            client_id: client.id.clone(),
            client_secret: client.secret.clone().expect("confidential"),
            base_url: base.clone(),
        })
        .await
        .expect("the example discovers Sigil");
        tokio::spawn(async move {
            let _ = axum::serve(listener, login_with_sigil::router(example)).await;
        });
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("client");
        Example {
            base,
            http,
            cookies: String::new(),
        }
    }

    /// A request to the app with its cookies (kept apart from Sigil's, as
    /// the names differ); keeps the cookies it sets.
    async fn send(&mut self, request: reqwest::RequestBuilder) -> (StatusCode, String, String) {
        let response = request
            .header(header::COOKIE, &self.cookies)
            .send()
            .await
            .expect("request");
        for set in response.headers().get_all(header::SET_COOKIE) {
            let pair = set.to_str().expect("ascii").split(';').next().unwrap_or("");
            let name = pair.split('=').next().unwrap_or("");
            let mut kept: Vec<&str> = self
                .cookies
                .split("; ")
                .filter(|c| !c.is_empty() && !c.starts_with(&format!("{name}=")))
                .collect();
            if !pair.ends_with('=') {
                kept.push(pair);
            }
            self.cookies = kept.join("; ");
        }
        let location = response
            .headers()
            .get(header::LOCATION)
            .map(|l| l.to_str().expect("ascii").to_string())
            .unwrap_or_default();
        (response.status(), location, response.text().await.unwrap())
    }

    async fn get(&mut self, url: &str) -> (StatusCode, String, String) {
        let url = if url.starts_with("http") {
            url.to_string()
        } else {
            format!("{}{url}", self.base)
        };
        let request = self.http.get(url);
        self.send(request).await
    }
}

/// `location` on Sigil, as the path and query the test browser takes.
fn on_sigil<'l>(app: &TestApp, location: &'l str) -> &'l str {
    location
        .strip_prefix(app.sigil.config.issuer.as_str())
        .unwrap_or_else(|| panic!("{location} is not on Sigil"))
}

async fn the_example_app_signs_a_user_in_and_out_with_openidconnect(app: TestApp) {
    app.user("alice").await;
    let client = app
        .client_from(NewClient {
            id: "login-example".into(),
            grant_types: vec![GrantType::AuthorizationCode, GrantType::RefreshToken],
            scopes: Scopes::parse("openid profile email").expect("scopes"),
            // Loopback: the example's port, whatever it is, matches.
            redirect_uris: vec!["http://127.0.0.1/callback".into()],
            post_logout_redirect_uris: vec!["http://127.0.0.1/".into()],
            ..NewClient::default()
        })
        .await;
    let mut example = Example::start(&app, &client).await;
    let mut browser = Browser::new(&app);

    let (status, _, home) = example.get("/").await;
    assert_eq!(status, StatusCode::OK);
    assert!(home.contains("id=\"signed-out\""), "{home}");

    // /login sends the browser to Sigil with PKCE and a nonce.
    let (status, to_sigil, _) = example.get("/login").await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let authorize = on_sigil(&app, &to_sigil);
    assert!(authorize.starts_with("/authorize?"), "{authorize}");
    for part in [
        "code_challenge_method=S256",
        "nonce=",
        "state=",
        "scope=openid",
    ] {
        assert!(authorize.contains(part), "{part} in {authorize}");
    }
    let page = browser.get(authorize).await;
    let page = browser
        .sign_in(&page, "alice", crate::helpers::PASSWORD)
        .await;
    let back = browser.consent(&page, "allow").await;
    assert_eq!(back.status, StatusCode::SEE_OTHER, "{}", back.body);
    let callback = back.location().to_string();
    assert!(
        callback.starts_with(&format!("{}/callback?", example.base)),
        "{callback}"
    );

    // The app exchanges the code, checks the ID token and reads UserInfo.
    let (status, to, body) = example.get(&callback).await;
    assert_eq!(status, StatusCode::SEE_OTHER, "{body}");
    assert_eq!(to, "/");
    let (_, _, home) = example.get("/").await;
    assert!(home.contains("id=\"username\">alice<"), "{home}");
    assert!(home.contains("alice@example.com"), "{home}");

    // The same callback again finds no sign-in in progress.
    let (status, _, body) = example.get(&callback).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(body.contains("No sign-in is in progress"), "{body}");

    // Logout: out of the app, then RP-initiated logout at Sigil, which sends
    // the browser back to the app's registered post-logout URI.
    let request = example.http.post(format!("{}/logout", example.base));
    let (status, to_sigil, _) = example.send(request).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let logout = on_sigil(&app, &to_sigil);
    assert!(
        logout.starts_with("/logout?") && logout.contains("id_token_hint="),
        "{logout}"
    );
    let bye = browser.get(logout).await;
    assert_eq!(bye.status, StatusCode::SEE_OTHER, "{}", bye.body);
    assert_eq!(bye.location(), format!("{}/", example.base));
    let (_, _, home) = example.get("/").await;
    assert!(home.contains("id=\"signed-out\""), "{home}");

    // Sigil's browser session ended too: signing in again shows the form.
    let (_, to_sigil, _) = example.get("/login").await;
    let page = browser.get(on_sigil(&app, &to_sigil)).await;
    assert!(page.is_sign_in_form(), "{}", page.body);

    // A callback whose state is not the one the app sent is refused.
    let forged = format!(
        "/callback?code=x&state=forged&iss={}",
        app.sigil.config.issuer
    );
    let (status, _, body) = example.get(&forged).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body.contains("state does not match"), "{body}");
}
