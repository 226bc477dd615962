//! The steps every page shares: the browser's session, the request a page
//! carries, and taking a request on to its next page or redirect.

use axum::http::{HeaderMap, StatusCode, header};
use axum::response::Response;

use super::super::AppState;
use super::cookies;
use super::csrf::PageForm;
use super::render::{Chrome, error_page, see_other};
use super::views;
use crate::browser::session::{LiveSession, find_live};
use crate::oauth::authorize::{self, AuthorizationRequest, AuthorizeError, Done, Next};

/// Re-reads a request carried by a page's hidden `request` field.
pub(super) async fn carried(
    state: &AppState,
    form: &PageForm,
    now: i64,
) -> Result<Option<AuthorizationRequest>, Response> {
    let Some(text) = form.get("request") else {
        return Ok(None);
    };
    let pairs = form_urlencoded::parse(text.as_bytes())
        .into_owned()
        .collect();
    authorize::parse(&state.sigil, pairs, now)
        .await
        .map(Some)
        .map_err(|e| refused(&state.chrome, e))
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

pub(super) fn refused(chrome: &Chrome, e: AuthorizeError) -> Response {
    match e {
        AuthorizeError::Page(message) => error_page(chrome, StatusCode::BAD_REQUEST, &message),
        AuthorizeError::Redirect(location) => see_other(&location),
    }
}

/// Takes the request one step on: a page, or the redirect back.
pub(super) async fn proceed(
    state: &AppState,
    headers: &HeaderMap,
    request: &AuthorizationRequest,
    session: Option<&LiveSession>,
    done: Done,
    now: i64,
) -> Response {
    match authorize::next(&state.sigil, request, session, done, now).await {
        Ok(Next::Redirect(location)) => see_other(&location),
        Ok(Next::SignIn) => {
            views::sign_in_form(state, headers, Some(request), None, StatusCode::OK)
        }
        Ok(Next::Consent) => match session {
            Some(session) => views::consent_form(state, headers, request, session, done),
            None => views::sign_in_form(state, headers, Some(request), None, StatusCode::OK),
        },
        Err(e) => refused(&state.chrome, e),
    }
}

/// The browser's user agent, as the account page shows it.
pub(super) fn user_agent(headers: &HeaderMap) -> &str {
    headers
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("unknown browser")
}
