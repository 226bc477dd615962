//! The steps every page shares: the browser's session, where a page's
//! form goes on to (an authorization request, a device code, or the
//! account page), and taking it one step on.

use axum::http::{HeaderMap, StatusCode, header};
use axum::response::Response;

use super::super::AppState;
use super::cookies;
use super::csrf::PageForm;
use super::render::{Chrome, error_page, see_other};
use crate::browser::session::{LiveSession, find_live};
use crate::oauth::Params;
use crate::oauth::authorize::{self, AuthorizationRequest, AuthorizeError, Done};

/// Where a page goes once the user has done what it asks: on with an
/// authorization request, back to the device page with a user code, or to
/// the account page. Pages carry it in hidden fields (`request`, the
/// request's parameters; `device`, the user code), re-read and re-checked
/// on every step.
#[derive(Debug, Clone)]
pub(super) enum Then {
    Authorize(Box<AuthorizationRequest>),
    Device(String),
    Account,
}

impl Then {
    pub(super) fn request(&self) -> Option<&AuthorizationRequest> {
        match self {
            Then::Authorize(request) => Some(request),
            _ => None,
        }
    }

    /// The hidden fields that carry it: `request` and `device`.
    pub(super) fn fields(&self, done: Done) -> (String, String) {
        match self {
            Then::Authorize(request) => (carry(request, done), String::new()),
            Then::Device(code) => (String::new(), code.clone()),
            Then::Account => (String::new(), String::new()),
        }
    }

    /// Where the browser goes on to by a plain GET, once `done`.
    pub(super) fn location(&self, done: Done) -> String {
        match self {
            Then::Authorize(request) => format!("/authorize?{}", carry(request, done)),
            Then::Device(code) => device_location(code),
            Then::Account => "/account".into(),
        }
    }

    /// The client the user is signing in to, if any.
    pub(super) fn client_id(&self) -> Option<&str> {
        self.request().map(|r| r.client.id.as_str())
    }
}

/// The device page's hidden `device` value when no user code was given
/// yet (an empty field means "not the device page").
pub(super) const DEVICE_WITHOUT_CODE: &str = "_";

pub(super) fn device_location(code: &str) -> String {
    if code == DEVICE_WITHOUT_CODE {
        return "/device".into();
    }
    let mut query = form_urlencoded::Serializer::new(String::new());
    query.append_pair("user_code", code);
    format!("/device?{}", query.finish())
}

/// Where the posted form goes on to (its hidden `request` or `device`).
pub(super) async fn then_of(state: &AppState, form: &PageForm, now: i64) -> Result<Then, Response> {
    then_from(state, form.get("request"), form.get("device"), now).await
}

/// [`then_of`] from the two fields' values.
pub(super) async fn then_from(
    state: &AppState,
    request: Option<&str>,
    device: Option<&str>,
    now: i64,
) -> Result<Then, Response> {
    if let Some(text) = request.filter(|t| !t.is_empty()) {
        let pairs = form_urlencoded::parse(text.as_bytes())
            .into_owned()
            .collect();
        return authorize::parse(&state.sigil, pairs, now)
            .await
            .map(|r| Then::Authorize(Box::new(r)))
            .map_err(|e| refused(&state.chrome, e));
    }
    if let Some(code) = device.filter(|c| !c.is_empty()) {
        // Only the shape is checked here; the device page looks it up.
        if code.len() > 32 {
            return Err(error_page(
                &state.chrome,
                StatusCode::BAD_REQUEST,
                "the form is malformed",
            ));
        }
        return Ok(Then::Device(code.to_string()));
    }
    Ok(Then::Account)
}

/// Re-reads a request carried by a page's hidden `request` field.
pub(super) async fn carried(
    state: &AppState,
    form: &PageForm,
    now: i64,
) -> Result<Option<AuthorizationRequest>, Response> {
    match then_from(state, form.get("request"), None, now).await? {
        Then::Authorize(request) => Ok(Some(*request)),
        _ => Ok(None),
    }
}

/// The parameters a page carries to the next step. After a sign-in on
/// this request, `prompt=login` and `max_age` are satisfied: carrying
/// them would ask again after consent. After a further factor,
/// `acr_values` is too: what the user could present, they have.
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
    if done.stepped_up {
        params = params.with("acr_values", None);
    }
    let mut query = form_urlencoded::Serializer::new(String::new());
    let mut pairs: Vec<_> = params.iter().collect();
    pairs.sort();
    for (name, value) in pairs {
        query.append_pair(name, value);
    }
    query.finish()
}

/// The browser's live session, if its cookie names one.
pub(super) async fn current_session(
    state: &AppState,
    headers: &HeaderMap,
    now: i64,
) -> Result<Option<LiveSession>, Response> {
    let sigil = &state.sigil;
    let Some(secret) = cookies::read(&sigil.config, headers, cookies::SESSION) else {
        return Ok(None);
    };
    find_live(sigil.store.as_ref(), &sigil.config.sign_in, &secret, now)
        .await
        .map_err(|e| unavailable(&state.chrome, e))
}

pub(super) fn unavailable(chrome: &Chrome, e: crate::store::StoreError) -> Response {
    let (status, message) = match e {
        crate::store::StoreError::Unavailable(_) => (
            StatusCode::SERVICE_UNAVAILABLE,
            "The service is unavailable right now. Try again in a moment.",
        ),
        other => {
            tracing::error!(error = %other, "a sign-in page failed");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                "The server could not complete this request.",
            )
        }
    };
    error_page(chrome, status, message)
}

/// An `OAuthError` from a protocol step, as a page.
pub(super) fn failed(chrome: &Chrome, e: crate::oauth::OAuthError) -> Response {
    use crate::oauth::OAuthError;
    match e {
        OAuthError::TemporarilyUnavailable(_) => unavailable(
            chrome,
            crate::store::StoreError::Unavailable("temporarily unavailable".into()),
        ),
        other => unavailable(chrome, crate::store::StoreError::Other(other.to_string())),
    }
}

pub(super) fn refused(chrome: &Chrome, e: AuthorizeError) -> Response {
    match e {
        AuthorizeError::Page(message) => error_page(chrome, StatusCode::BAD_REQUEST, &message),
        AuthorizeError::Redirect(location) => see_other(&location),
    }
}

/// The signed-in session, if it signed in within `mfa.reauth_window`;
/// otherwise why not.
pub(super) async fn recent_session(
    state: &AppState,
    headers: &HeaderMap,
    now: i64,
) -> Result<LiveSession, &'static str> {
    let Ok(Some(session)) = current_session(state, headers, now).await else {
        return Err("Sign in first.");
    };
    let window = state.sigil.config.mfa.reauth_window.as_secs() as i64;
    if now - session.auth_time > window {
        return Err("For your security, sign in again before changing how you sign in.");
    }
    Ok(session)
}

/// The browser's user agent, as the account page shows it.
pub(super) fn user_agent(headers: &HeaderMap) -> &str {
    headers
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("unknown browser")
}
