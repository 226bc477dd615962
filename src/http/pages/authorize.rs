//! `GET`/`POST /authorize` (RFC 6749 §4.1.1, OIDC Core §3.1.2.1) and the
//! consent form's answer. The protocol decisions are `oauth::authorize`'s;
//! `flow` turns them into pages and redirects.

use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;

use super::super::AppState;
use super::csrf::PageForm;
use super::flow::{carried, current_session, refused, unavailable};
use super::render::{error_page, see_other};
use super::steps::proceed;
use crate::oauth::authorize::{self, Done};
use crate::service::{self, Ops};

#[tracing::instrument(skip_all, name = "authorize_get")]
pub async fn authorize_get(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let pairs = form_urlencoded::parse(query.unwrap_or_default().as_bytes())
        .into_owned()
        .collect();
    start(&state, &headers, pairs).await
}

/// OIDC Core §3.1.2.1: the same request as a form post.
#[tracing::instrument(skip_all, name = "authorize_post")]
pub async fn authorize_post(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let pairs = form_urlencoded::parse(&body).into_owned().collect();
    start(&state, &headers, pairs).await
}

async fn start(state: &AppState, headers: &HeaderMap, pairs: Vec<(String, String)>) -> Response {
    let now = state.sigil.clock.now();
    let request = match authorize::parse(&state.sigil, pairs, now).await {
        Ok(request) => request,
        Err(e) => return refused(&state.chrome, e),
    };
    let session = match current_session(state, headers, now).await {
        Ok(session) => session,
        Err(response) => return response,
    };
    proceed(
        state,
        headers,
        &request,
        session.as_ref(),
        Done::default(),
        now,
    )
    .await
}

/// The consent form's answer.
#[tracing::instrument(skip_all, name = "consent_post")]
pub async fn consent_post(State(state): State<AppState>, form: PageForm) -> Response {
    let now = state.sigil.clock.now();
    let request = match carried(&state, &form, now).await {
        Ok(Some(request)) => request,
        Ok(None) => {
            return error_page(
                &state.chrome,
                StatusCode::BAD_REQUEST,
                "the form is incomplete",
            );
        }
        Err(response) => return response,
    };
    let session = match current_session(&state, &form.headers, now).await {
        Ok(Some(session)) => session,
        // Signed out meanwhile (another tab, expiry): start over.
        Ok(None) => {
            return proceed(&state, &form.headers, &request, None, Done::default(), now).await;
        }
        Err(response) => return response,
    };
    if form.get("decision") != Some("allow") {
        return see_other(&authorize::denied(&state.sigil, &request));
    }
    let actor = format!("user:{}", session.user.id);
    let ops = Ops::on(&state.sigil, &actor);
    if let Err(e) =
        service::browser::grant_consent(&ops, &session.user, &request.client, &request.scope).await
    {
        return unavailable(&state.chrome, e);
    }
    let done = Done {
        consented: true,
        ..Done::default()
    };
    proceed(&state, &form.headers, &request, Some(&session), done, now).await
}
