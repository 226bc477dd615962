//! The forms a request may stop at: sign-in and consent.

use askama::Template;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;

use super::super::AppState;
use super::csrf::CsrfToken;
use super::flow::{Then, carry};
use super::render::{Chrome, page_with_script_if};
use crate::browser::session::LiveSession;
use crate::oauth::authorize::{AuthorizationRequest, Done};

/// The one message every failed sign-in gets.
pub(super) const WRONG: &str = "The username or password is incorrect.";

#[derive(Template)]
#[template(path = "sign_in.html")]
struct SignInPage<'a> {
    chrome: &'a Chrome,
    csrf: String,
    request: String,
    device: String,
    client_id: Option<&'a str>,
    username: &'a str,
    error: Option<&'a str>,
    registration: bool,
    /// `/signup?…`, carrying where to go on to.
    sign_up_href: String,
    /// Passkeys work on this server (its issuer is a domain name).
    passkeys: bool,
}

/// Renders the sign-in form, to go on to `then` once signed in.
pub(super) fn sign_in_form(
    state: &AppState,
    headers: &HeaderMap,
    then: &Then,
    failed: Option<(&str, &str)>,
    status: StatusCode,
) -> Response {
    let csrf = CsrfToken::for_page(state, headers);
    let request = then.request();
    let (username, error) = match failed {
        Some((username, message)) => (username, Some(message)),
        None => (
            request
                .and_then(|r| r.login_hint.as_deref())
                .unwrap_or_default(),
            None,
        ),
    };
    let (request_field, device) = then.fields(Done::default());
    let mut query = form_urlencoded::Serializer::new(String::new());
    if !request_field.is_empty() {
        query.append_pair("request", &request_field);
    }
    if !device.is_empty() {
        query.append_pair("device", &device);
    }
    let query = query.finish();
    let view = SignInPage {
        chrome: &state.chrome,
        csrf: csrf.token.clone(),
        request: request_field,
        device,
        client_id: then.client_id(),
        username,
        error,
        registration: state.sigil.config.registration,
        sign_up_href: if query.is_empty() {
            "/signup".into()
        } else {
            format!("/signup?{query}")
        },
        passkeys: state.sigil.webauthn.is_some(),
    };
    let leads_to = request.map(|r| r.redirect_uri.as_str());
    let script = view.passkeys;
    csrf.attach(page_with_script_if(script, status, &view, leads_to))
}

#[derive(Template)]
#[template(path = "consent.html")]
struct ConsentPage<'a> {
    chrome: &'a Chrome,
    csrf: String,
    request: String,
    client_id: &'a str,
    username: &'a str,
    scopes: Vec<(String, &'static str)>,
}

/// What each well-known scope lets the client do, in the user's words.
pub(super) fn describe(scope: &str) -> &'static str {
    match scope {
        "openid" => "confirm who you are",
        "profile" => "see your username",
        "email" => "see your email address",
        "offline_access" => "stay signed in when you are away",
        _ => "",
    }
}

pub(super) fn consent_form(
    state: &AppState,
    headers: &HeaderMap,
    request: &AuthorizationRequest,
    session: &LiveSession,
    done: Done,
) -> Response {
    let csrf = CsrfToken::for_page(state, headers);
    let view = ConsentPage {
        chrome: &state.chrome,
        csrf: csrf.token.clone(),
        request: carry(request, done),
        client_id: &request.client.id,
        username: &session.user.username,
        scopes: request
            .scope
            .iter()
            .map(|s| (s.to_string(), describe(s)))
            .collect(),
    };
    csrf.attach(super::render::page(
        StatusCode::OK,
        &view,
        Some(&request.redirect_uri),
    ))
}
