//! CSRF protection for every form: a random secret in a cookie, and in the
//! form a MAC of it under a key derived from the KEK. A cross-site page
//! can neither read the cookie nor compute the MAC; a cookie planted by a
//! sibling host (where `__Host-` is not available, plain http) still lacks
//! a matching form token. `SameSite=Lax` is a second, independent wall.

use std::collections::HashMap;

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;

use super::super::AppState;
use super::cookies;
use super::render::error_page;
use crate::tokens::random_b64;

/// How long the CSRF cookie lasts: longer than any page is left open.
const CSRF_COOKIE_SECONDS: u64 = 24 * 3600;
const MAX_FIELDS: usize = 16;

/// The form token for the page about to be rendered, and the cookie to
/// set when the browser has none yet.
pub struct CsrfToken {
    pub token: String,
    pub set_cookie: Option<HeaderValue>,
}

impl CsrfToken {
    pub fn for_page(state: &AppState, headers: &HeaderMap) -> CsrfToken {
        let config = &state.sigil.config;
        let (secret, set_cookie) = match cookies::read(config, headers, cookies::CSRF) {
            Some(secret) if secret.len() <= 64 => (secret, None),
            _ => {
                let secret = random_b64::<32>();
                let cookie = cookies::set(config, cookies::CSRF, &secret, CSRF_COOKIE_SECONDS);
                (secret, Some(cookie))
            }
        };
        CsrfToken {
            token: mac(state, &secret),
            set_cookie,
        }
    }

    /// Adds the cookie (if new) to a rendered page.
    pub fn attach(self, mut response: Response) -> Response {
        if let Some(cookie) = self.set_cookie {
            response.headers_mut().append(header::SET_COOKIE, cookie);
        }
        response
    }
}

fn mac(state: &AppState, secret: &str) -> String {
    let tag = ring::hmac::sign(state.sigil.keys.kek().csrf_mac(), secret.as_bytes());
    B64.encode(tag.as_ref())
}

/// A form posted from one of Sigil's own pages: its fields (each at most
/// once), after the CSRF check. Anything else is answered with the error
/// page, never reaching the handler.
pub struct PageForm {
    fields: HashMap<String, String>,
    /// The request's headers (cookies, user agent), for the handler.
    pub headers: HeaderMap,
}

impl PageForm {
    pub fn get(&self, name: &str) -> Option<&str> {
        self.fields
            .get(name)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }
}

/// Whether `sent` is the form token of the request's CSRF cookie.
fn token_matches(state: &AppState, headers: &HeaderMap, sent: Option<&str>) -> bool {
    let expected = cookies::read(&state.sigil.config, headers, cookies::CSRF)
        .map(|secret| mac(state, &secret));
    match (expected, sent) {
        (Some(expected), Some(sent)) => bool::from(subtle::ConstantTimeEq::ct_eq(
            expected.as_bytes(),
            sent.as_bytes(),
        )),
        _ => false,
    }
}

/// A JSON body posted by Sigil's own script from one of its pages: the
/// page's CSRF token comes in the `X-CSRF-Token` header. Refusals are JSON
/// (`{error, error_description}`) for the script to show.
pub struct PageJson<T> {
    pub body: T,
    /// The request's headers (cookies, user agent), for the handler.
    pub headers: HeaderMap,
}

/// A refusal the page's script shows: `error_description` in words.
pub fn json_refusal(status: StatusCode, description: &str) -> Response {
    use axum::response::IntoResponse;
    let body = serde_json::json!({
        "error": if status.is_server_error() { "server_error" } else { "invalid_request" },
        "error_description": description,
    });
    let mut response = (status, axum::Json(body)).into_response();
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

impl<T: serde::de::DeserializeOwned> FromRequest<AppState> for PageJson<T> {
    type Rejection = Response;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        let headers = req.headers().clone();
        let sent = headers.get("x-csrf-token").and_then(|v| v.to_str().ok());
        if !token_matches(state, &headers, sent) {
            return Err(json_refusal(
                StatusCode::FORBIDDEN,
                "This page has expired. Reload it and try again.",
            ));
        }
        let body = Bytes::from_request(req, state)
            .await
            .map_err(|_| json_refusal(StatusCode::BAD_REQUEST, "the request could not be read"))?;
        let body = serde_json::from_slice(&body)
            .map_err(|_| json_refusal(StatusCode::BAD_REQUEST, "the request is malformed"))?;
        Ok(PageJson { body, headers })
    }
}

impl FromRequest<AppState> for PageForm {
    type Rejection = Response;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        let refuse = |status, message: &str| error_page(&state.chrome, status, message);
        let headers = req.headers().clone();
        let body = Bytes::from_request(req, state)
            .await
            .map_err(|_| refuse(StatusCode::BAD_REQUEST, "the form could not be read"))?;
        let mut fields = HashMap::new();
        for (name, value) in form_urlencoded::parse(&body).into_owned() {
            if fields.len() >= MAX_FIELDS || fields.insert(name, value).is_some() {
                return Err(refuse(StatusCode::BAD_REQUEST, "the form is malformed"));
            }
        }
        if !token_matches(state, &headers, fields.get("csrf").map(String::as_str)) {
            return Err(refuse(
                StatusCode::FORBIDDEN,
                "This form has expired or did not come from this site. Go back, reload the page and try again.",
            ));
        }
        Ok(PageForm { fields, headers })
    }
}
