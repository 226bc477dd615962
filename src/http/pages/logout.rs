//! `end_session_endpoint`: OpenID Connect RP-Initiated Logout 1.0. With a
//! valid `id_token_hint` the browser session ends at once; without one the
//! user confirms first (§2), on a CSRF-protected form. Then back to the
//! registered `post_logout_redirect_uri` (with `state`), or a signed-out page.

use askama::Template;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::Response;

use super::super::AppState;
use super::cookies;
use super::csrf::{CsrfToken, PageForm};
use super::flow::{current_session, unavailable};
use super::render::{Chrome, error_page, page, see_other};
use crate::oauth::Params;
use crate::oauth::logout::{self, LogoutRequest};
use crate::service::{self, Ops};

#[derive(Template)]
#[template(path = "sign_out.html")]
struct ConfirmPage<'a> {
    chrome: &'a Chrome,
    csrf: String,
    request: String,
    client_id: Option<&'a str>,
}

#[derive(Template)]
#[template(path = "signed_out.html")]
struct SignedOutPage<'a> {
    chrome: &'a Chrome,
}

pub async fn logout_get(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    logout(&state, &headers, query.unwrap_or_default().as_bytes()).await
}

pub async fn logout_post(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    logout(&state, &headers, &body).await
}

async fn parse(state: &AppState, encoded: &[u8]) -> Result<LogoutRequest, Response> {
    let pairs: Vec<(String, String)> = form_urlencoded::parse(encoded).into_owned().collect();
    let params = Params::from_pairs(pairs)
        .map_err(|e| error_page(&state.chrome, StatusCode::BAD_REQUEST, e.description()))?;
    let now = state.sigil.clock.now();
    logout::parse(&state.sigil, params, now)
        .await
        .map_err(|message| error_page(&state.chrome, StatusCode::BAD_REQUEST, &message))
}

async fn logout(state: &AppState, headers: &HeaderMap, encoded: &[u8]) -> Response {
    let request = match parse(state, encoded).await {
        Ok(request) => request,
        Err(response) => return response,
    };
    if request.hint.is_some() {
        return sign_out(state, headers, &request).await;
    }
    let csrf = CsrfToken::for_page(state, headers);
    let mut carried = form_urlencoded::Serializer::new(String::new());
    for (name, value) in request.params.iter() {
        carried.append_pair(name, value);
    }
    let view = ConfirmPage {
        chrome: &state.chrome,
        csrf: csrf.token.clone(),
        request: carried.finish(),
        client_id: request.client.as_ref().map(|c| c.id.as_str()),
    };
    csrf.attach(page(StatusCode::OK, &view, request.redirect.as_deref()))
}

pub async fn logout_confirm_post(State(state): State<AppState>, form: PageForm) -> Response {
    let request = match parse(&state, form.get("request").unwrap_or_default().as_bytes()).await {
        Ok(request) => request,
        Err(response) => return response,
    };
    sign_out(&state, &form.headers, &request).await
}

/// Ends this browser's session (if it has one) and clears its cookie.
async fn sign_out(state: &AppState, headers: &HeaderMap, request: &LogoutRequest) -> Response {
    let sigil = &state.sigil;
    let now = sigil.clock.now();
    if let Ok(Some(session)) = current_session(state, headers, now).await {
        let actor = format!("user:{}", session.user.id);
        let ops = Ops::on(sigil, &actor);
        if let Err(e) = service::browser::sign_out(&ops, &session.sid, Some(&session.user.id)).await
        {
            return unavailable(&state.chrome, e);
        }
    }
    let mut response = match &request.redirect {
        Some(location) => see_other(location),
        None => page(
            StatusCode::OK,
            &SignedOutPage {
                chrome: &state.chrome,
            },
            None,
        ),
    };
    let cleared = cookies::set(&sigil.config, cookies::SESSION, "", 0);
    response.headers_mut().append(header::SET_COOKIE, cleared);
    response
}
