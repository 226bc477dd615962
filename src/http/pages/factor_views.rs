//! The pages that ask more of a signed-in (or half signed-in) user: a
//! second factor, setting one up when a client requires it, and signing in
//! again before sign-in methods change.

use askama::Template;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::Response;

use super::super::AppState;
use super::cookies;
use super::csrf::CsrfToken;
use super::flow::Then;
use super::render::{Chrome, page, page_with_script_if};
use crate::browser::pending;
use crate::oauth::authorize::Done;
use crate::oauth::mfa::Factors;
use crate::store::UserRecord;

/// What the page asks of whom.
pub(super) struct Ask<'a> {
    pub user: &'a UserRecord,
    pub factors: Factors,
    /// Only `acr_values` asks (the client may take less): the user may go
    /// on without.
    pub voluntary: bool,
    /// The half sign-in's cookie value, when there is no session yet.
    pub pending: Option<String>,
    pub error: Option<&'a str>,
}

#[derive(Template)]
#[template(path = "second_factor.html")]
struct SecondFactorPage<'a> {
    chrome: &'a Chrome,
    csrf: String,
    request: String,
    device: String,
    username: &'a str,
    totp: bool,
    recovery_codes: bool,
    passkeys: bool,
    voluntary: bool,
    error: Option<&'a str>,
}

pub(super) fn second_factor_form(
    state: &AppState,
    headers: &HeaderMap,
    then: &Then,
    ask: &Ask<'_>,
    done: Done,
    status: StatusCode,
) -> Response {
    let csrf = CsrfToken::for_page(state, headers);
    let (request, device) = then.fields(done);
    let view = SecondFactorPage {
        chrome: &state.chrome,
        csrf: csrf.token.clone(),
        request,
        device,
        username: &ask.user.username,
        totp: ask.factors.totp,
        recovery_codes: ask.factors.recovery_codes > 0,
        passkeys: ask.factors.passkeys > 0 && state.sigil.webauthn.is_some(),
        voluntary: ask.voluntary,
        error: ask.error,
    };
    let leads_to = then.request().map(|r| r.redirect_uri.as_str());
    let script = view.passkeys;
    let mut response = csrf.attach(page_with_script_if(script, status, &view, leads_to));
    if let Some(value) = &ask.pending {
        let cookie = cookies::set(
            &state.sigil.config,
            cookies::PENDING,
            value,
            pending::PENDING_TTL as u64,
        );
        response.headers_mut().append(header::SET_COOKIE, cookie);
    }
    response
}

/// The password was right and the user has an authenticator app: ask for
/// a code, holding the half sign-in in its cookie.
pub(super) fn after_password(
    state: &AppState,
    headers: &HeaderMap,
    then: &Then,
    user: &UserRecord,
    factors: Factors,
    now: i64,
) -> Response {
    let value = pending::seal(state.sigil.keys.kek().pending_mac(), user, now);
    let ask = Ask {
        user,
        factors,
        voluntary: false,
        pending: Some(value),
        error: None,
    };
    let done = Done {
        signed_in: true,
        ..Done::default()
    };
    second_factor_form(state, headers, then, &ask, done, StatusCode::OK)
}

#[derive(Template)]
#[template(path = "enrol_required.html")]
struct EnrolRequiredPage<'a> {
    chrome: &'a Chrome,
    csrf: String,
    request: String,
    device: String,
    client_id: Option<&'a str>,
}

/// The client (or the server) requires a second factor and the user has
/// none: offer to set up an authenticator app, then go on.
pub(super) fn enrol_required(
    state: &AppState,
    headers: &HeaderMap,
    then: &Then,
    done: Done,
) -> Response {
    let csrf = CsrfToken::for_page(state, headers);
    let (request, device) = then.fields(done);
    let view = EnrolRequiredPage {
        chrome: &state.chrome,
        csrf: csrf.token.clone(),
        request,
        device,
        client_id: then.client_id(),
    };
    csrf.attach(page(StatusCode::OK, &view, None))
}

#[derive(Template)]
#[template(path = "reauth.html")]
struct ReauthPage<'a> {
    chrome: &'a Chrome,
    href: String,
}

/// "Sign in again", leading back to where the user was going.
pub(super) fn reauth_page(state: &AppState, _headers: &HeaderMap, then: &Then) -> Response {
    let href = match then {
        Then::Authorize(request) => {
            let params = request.params.with("prompt", Some("login"));
            let mut query = form_urlencoded::Serializer::new(String::new());
            for (k, v) in params.iter() {
                query.append_pair(k, v);
            }
            format!("/authorize?{}", query.finish())
        }
        Then::Device(code) => {
            let mut query = form_urlencoded::Serializer::new(String::new());
            query.append_pair("reauth", "1");
            query.append_pair("device", code);
            format!("/login?{}", query.finish())
        }
        Then::Account => "/login?reauth=1".into(),
    };
    let view = ReauthPage {
        chrome: &state.chrome,
        href,
    };
    page(StatusCode::FORBIDDEN, &view, None)
}
