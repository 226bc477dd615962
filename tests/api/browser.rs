//! A scripted browser for the hosted pages: keeps cookies, never follows
//! redirects (tests look at each one), and reads the hidden fields of the
//! forms Sigil renders — as an automated OpenID conformance driver does.

use std::collections::HashMap;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use reqwest::{Response, StatusCode, header};
use sigil::clients::{GrantType, NewClient};
use sigil::scope::Scopes;

use crate::helpers::{PASSWORD, TestApp, TestClient};

pub const REDIRECT: &str = "https://app.example/cb";
pub const LOGOUT_REDIRECT: &str = "https://app.example/bye";

/// A code-flow client: `openid profile email`, the registered redirect URIs
/// above, refresh allowed.
pub async fn code_client(app: &TestApp, id: &str, public: bool, first_party: bool) -> TestClient {
    app.client_from(code_client_settings(id, public, first_party))
        .await
}

/// What [`code_client`] registers, for a test to change before it does.
pub fn code_client_settings(id: &str, public: bool, first_party: bool) -> NewClient {
    NewClient {
        id: id.to_string(),
        public,
        grant_types: vec![GrantType::AuthorizationCode, GrantType::RefreshToken],
        scopes: Scopes::parse("openid profile email").expect("scopes"),
        redirect_uris: vec![REDIRECT.into(), "http://127.0.0.1/native".into()],
        post_logout_redirect_uris: vec![LOGOUT_REDIRECT.into()],
        first_party,
        ..NewClient::default()
    }
}

/// A PKCE verifier and its S256 challenge.
pub fn pkce() -> (String, String) {
    let verifier = sigil::tokens::random_b64::<32>();
    let digest = ring::digest::digest(&ring::digest::SHA256, verifier.as_bytes());
    (verifier, B64.encode(digest.as_ref()))
}

pub struct Browser<'a> {
    pub app: &'a TestApp,
    http: reqwest::Client,
    pub cookies: HashMap<String, String>,
}

/// A page as the browser got it.
pub struct Page {
    pub status: StatusCode,
    pub headers: header::HeaderMap,
    pub body: String,
}

impl Page {
    /// Where a redirect points.
    pub fn location(&self) -> &str {
        self.headers
            .get(header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_else(|| panic!("no Location in a {} response: {}", self.status, self.body))
    }

    /// The query parameters of the redirect's target.
    pub fn redirect_params(&self) -> HashMap<String, String> {
        let location = self.location();
        let query = location.split_once('?').map(|(_, q)| q).unwrap_or_default();
        form_urlencoded::parse(query.as_bytes())
            .into_owned()
            .collect()
    }

    /// The value of the form field named `name` (HTML-unescaped).
    pub fn field(&self, name: &str) -> Option<String> {
        let marker = format!("name=\"{name}\" value=\"");
        let start = self.body.find(&marker)? + marker.len();
        let end = self.body[start..].find('"')? + start;
        Some(unescape(&self.body[start..end]))
    }

    pub fn is_sign_in_form(&self) -> bool {
        self.body.contains("id=\"sign-in-form\"")
    }

    pub fn is_consent_form(&self) -> bool {
        self.body.contains("id=\"consent-form\"")
    }

    pub fn is_second_factor_form(&self) -> bool {
        self.body.contains("action=\"/login/second-factor\"")
    }

    /// The `href` of the link with `id`, unescaped.
    pub fn field_href(&self, id: &str) -> Option<String> {
        let at = self.body.find(&format!("id=\"{id}\""))?;
        let tag_start = self.body[..at].rfind('<')?;
        let tag_end = self.body[at..].find('>')? + at;
        let tag = &self.body[tag_start..tag_end];
        let start = tag.find("href=\"")? + 6;
        let end = tag[start..].find('"')? + start;
        Some(unescape(&tag[start..end]))
    }

    /// The text of the element with `id` (up to its first `<`), unescaped.
    pub fn text_of(&self, id: &str) -> Option<String> {
        let marker = format!("id=\"{id}\">");
        let start = self.body.find(&marker)? + marker.len();
        let end = self.body[start..].find('<')? + start;
        Some(unescape(&self.body[start..end]))
    }
}

/// Undoes HTML escaping: named and numeric character references.
fn unescape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find('&') {
        out.push_str(&rest[..at]);
        rest = &rest[at..];
        let Some(end) = rest.find(';') else { break };
        let entity = &rest[1..end];
        let decoded = match entity {
            "amp" => Some('&'),
            "quot" => Some('"'),
            "apos" => Some('\''),
            "lt" => Some('<'),
            "gt" => Some('>'),
            _ => entity
                .strip_prefix("#x")
                .and_then(|hex| u32::from_str_radix(hex, 16).ok())
                .or_else(|| entity.strip_prefix('#').and_then(|dec| dec.parse().ok()))
                .and_then(char::from_u32),
        };
        match decoded {
            Some(c) => {
                out.push(c);
                rest = &rest[end + 1..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

impl<'a> Browser<'a> {
    pub fn new(app: &'a TestApp) -> Browser<'a> {
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .user_agent("TestBrowser/1.0")
            .build()
            .expect("client");
        Browser {
            app,
            http,
            cookies: HashMap::new(),
        }
    }

    fn cookie_header(&self) -> String {
        self.cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    async fn take(&mut self, response: Response) -> Page {
        for value in response.headers().get_all(header::SET_COOKIE) {
            let text = value.to_str().expect("ascii cookie");
            let pair = text.split(';').next().unwrap_or_default();
            let (name, value) = pair.split_once('=').expect("name=value");
            if value.is_empty() || text.contains("Max-Age=0") {
                self.cookies.remove(name);
            } else {
                self.cookies.insert(name.to_string(), value.to_string());
            }
        }
        Page {
            status: response.status(),
            headers: response.headers().clone(),
            body: response.text().await.expect("body"),
        }
    }

    pub async fn get(&mut self, path_and_query: &str) -> Page {
        let response = self
            .http
            .get(self.app.url(path_and_query))
            .header(header::COOKIE, self.cookie_header())
            .send()
            .await
            .expect("request");
        self.take(response).await
    }

    pub async fn post(&mut self, path: &str, form: &[(&str, &str)]) -> Page {
        let response = self
            .http
            .post(self.app.url(path))
            .header(header::COOKIE, self.cookie_header())
            .form(form)
            .send()
            .await
            .expect("request");
        self.take(response).await
    }

    /// `GET /authorize` with `params`.
    pub async fn authorize(&mut self, params: &[(&str, &str)]) -> Page {
        let mut query = form_urlencoded::Serializer::new(String::new());
        for (k, v) in params {
            query.append_pair(k, v);
        }
        self.get(&format!("/authorize?{}", query.finish())).await
    }

    /// Fills and submits the sign-in form `page` shows.
    pub async fn sign_in(&mut self, page: &Page, username: &str, password: &str) -> Page {
        assert!(
            page.is_sign_in_form(),
            "not the sign-in form: {}",
            page.body
        );
        let csrf = page.field("csrf").expect("csrf field");
        let request = page.field("request").unwrap_or_default();
        let device = page.field("device").unwrap_or_default();
        self.post(
            "/login",
            &[
                ("csrf", &csrf),
                ("request", &request),
                ("device", &device),
                ("username", username),
                ("password", password),
            ],
        )
        .await
    }

    /// Submits a code on the second-factor page `page` shows: a TOTP code
    /// (`code`) or a recovery code (`recovery_code`).
    pub async fn second_factor(&mut self, page: &Page, field: &str, code: &str) -> Page {
        assert!(
            page.is_second_factor_form(),
            "not the second-factor page: {}",
            page.body
        );
        let csrf = page.field("csrf").expect("csrf field");
        let request = page.field("request").unwrap_or_default();
        let device = page.field("device").unwrap_or_default();
        self.post(
            "/login/second-factor",
            &[
                ("csrf", &csrf),
                ("request", &request),
                ("device", &device),
                (field, code),
            ],
        )
        .await
    }

    /// POSTs JSON as the pages' script does, with the page's CSRF token in
    /// `X-CSRF-Token`; returns the status, the JSON answer and the page.
    pub async fn post_json(
        &mut self,
        path: &str,
        csrf: &str,
        body: &serde_json::Value,
    ) -> (StatusCode, serde_json::Value) {
        let response = self
            .http
            .post(self.app.url(path))
            .header(header::COOKIE, self.cookie_header())
            .header("x-csrf-token", csrf)
            .json(body)
            .send()
            .await
            .expect("request");
        let page = self.take(response).await;
        let json = serde_json::from_str(&page.body).unwrap_or(serde_json::Value::Null);
        (page.status, json)
    }

    /// Whether the browser holds a session cookie.
    pub fn has_session(&self) -> bool {
        self.cookies.keys().any(|k| k.ends_with("sigil_session"))
    }

    /// Answers the consent form `page` shows.
    pub async fn consent(&mut self, page: &Page, decision: &str) -> Page {
        assert!(
            page.is_consent_form(),
            "not the consent form: {}",
            page.body
        );
        let csrf = page.field("csrf").expect("csrf field");
        let request = page.field("request").expect("request field");
        self.post(
            "/consent",
            &[
                ("csrf", &csrf),
                ("request", &request),
                ("decision", decision),
            ],
        )
        .await
    }
}

/// The usual request parameters for `client` with this PKCE challenge.
pub fn request<'a>(client: &'a TestClient, challenge: &'a str) -> Vec<(&'a str, &'a str)> {
    vec![
        ("response_type", "code"),
        ("client_id", &client.id),
        ("redirect_uri", REDIRECT),
        ("scope", "openid profile email"),
        ("state", "st-123"),
        ("nonce", "n-456"),
        ("code_challenge", challenge),
        ("code_challenge_method", "S256"),
    ]
}

/// Signs `username` in through the whole flow (consenting when asked) and
/// returns the code and the PKCE verifier.
pub async fn code_for(
    browser: &mut Browser<'_>,
    client: &TestClient,
    username: &str,
) -> (String, String) {
    let (verifier, challenge) = pkce();
    let mut page = browser.authorize(&request(client, &challenge)).await;
    if page.is_sign_in_form() {
        page = browser.sign_in(&page, username, PASSWORD).await;
    }
    if page.is_consent_form() {
        page = browser.consent(&page, "allow").await;
    }
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
    let params = page.redirect_params();
    assert!(page.location().starts_with(REDIRECT), "{}", page.location());
    (params["code"].clone(), verifier)
}

/// Exchanges a code at the token endpoint.
pub async fn exchange(app: &TestApp, client: &TestClient, code: &str, verifier: &str) -> Response {
    app.token(
        client,
        &[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", REDIRECT),
            ("code_verifier", verifier),
        ],
    )
    .await
}

/// The claims of a JWT (signature checked elsewhere).
pub fn jwt_claims(token: &str) -> serde_json::Value {
    let payload = token.split('.').nth(1).expect("payload");
    let bytes = B64.decode(payload).expect("base64url");
    serde_json::from_slice(&bytes).expect("claims JSON")
}
