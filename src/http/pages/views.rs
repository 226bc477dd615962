//! The two forms a request may stop at: sign-in and consent.

use askama::Template;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;

use super::super::AppState;
use super::csrf::CsrfToken;
use super::render::{Chrome, page};
use crate::browser::session::LiveSession;
use crate::oauth::Params;
use crate::oauth::authorize::{AuthorizationRequest, Done};

/// The one message every failed sign-in gets.
pub(super) const WRONG: &str = "The username or password is incorrect.";

#[derive(Template)]
#[template(path = "sign_in.html")]
struct SignInPage<'a> {
    chrome: &'a Chrome,
    csrf: String,
    request: String,
    client_id: Option<&'a str>,
    username: &'a str,
    error: Option<&'a str>,
    registration: bool,
}

/// Renders the sign-in form for `request` (or for the account page).
pub(super) fn sign_in_form(
    state: &AppState,
    headers: &HeaderMap,
    request: Option<&AuthorizationRequest>,
    failed: Option<(&str, &str)>,
    status: StatusCode,
) -> Response {
    let csrf = CsrfToken::for_page(state, headers);
    let (username, error) = match failed {
        Some((username, message)) => (username, Some(message)),
        None => (
            request
                .and_then(|r| r.login_hint.as_deref())
                .unwrap_or_default(),
            None,
        ),
    };
    let view = SignInPage {
        chrome: &state.chrome,
        csrf: csrf.token.clone(),
        request: request
            .map(|r| carry(r, Done::default()))
            .unwrap_or_default(),
        client_id: request.map(|r| r.client.id.as_str()),
        username,
        error,
        registration: state.sigil.config.registration,
    };
    let leads_to = request.map(|r| r.redirect_uri.as_str());
    csrf.attach(page(status, &view, leads_to))
}

/// The parameters a page carries to the next step. After a sign-in on
/// this request, `prompt=login` and `max_age` are satisfied: carrying
/// them would ask again after consent.
pub(super) fn carry(request: &AuthorizationRequest, done: Done) -> String {
    let mut params: Params = request.params.clone();
    if done.signed_in {
        let prompt: Vec<&str> = params
            .get("prompt")
            .unwrap_or_default()
            .split(' ')
            .filter(|p| !p.is_empty() && *p != "login")
            .collect();
        let prompt = prompt.join(" ");
        params = params.with("prompt", Some(&prompt)).with("max_age", None);
    }
    let mut query = form_urlencoded::Serializer::new(String::new());
    let mut pairs: Vec<_> = params.iter().collect();
    pairs.sort();
    for (name, value) in pairs {
        query.append_pair(name, value);
    }
    query.finish()
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
fn describe(scope: &str) -> &'static str {
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
    csrf.attach(page(StatusCode::OK, &view, Some(&request.redirect_uri)))
}
