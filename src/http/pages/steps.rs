//! Taking a page's flow one step on: the next page of an authorization
//! request (sign-in, second factor, set-up, consent) or its redirect back,
//! and opening the browser session a sign-in earns.

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;

use super::super::AppState;
use super::cookies;
use super::flow::{Then, current_session, refused, unavailable, user_agent};
use super::render::see_other;
use super::{factor_views, views};
use crate::authn::Authn;
use crate::browser::session::LiveSession;
use crate::oauth::authorize::{self, AuthorizationRequest, Done, Next};
use crate::service::{self, Ops};
use crate::store::UserRecord;

/// Takes the request one step on: a page, or the redirect back.
pub(super) async fn proceed(
    state: &AppState,
    headers: &HeaderMap,
    request: &AuthorizationRequest,
    session: Option<&LiveSession>,
    done: Done,
    now: i64,
) -> Response {
    let then = Then::Authorize(Box::new(request.clone()));
    match authorize::next(&state.sigil, request, session, done, now).await {
        Ok(Next::Redirect(location)) => see_other(&location),
        Ok(Next::SignIn) => views::sign_in_form(state, headers, &then, None, StatusCode::OK),
        Ok(Next::StepUp { needed, factors }) => match session {
            Some(session) => {
                let voluntary = needed > request.mandatory_acr(&state.sigil);
                let ask = factor_views::Ask {
                    user: &session.user,
                    factors,
                    voluntary,
                    pending: None,
                    error: None,
                };
                factor_views::second_factor_form(state, headers, &then, &ask, done, StatusCode::OK)
            }
            None => views::sign_in_form(state, headers, &then, None, StatusCode::OK),
        },
        Ok(Next::Enrol) => factor_views::enrol_required(state, headers, &then, done),
        Ok(Next::Consent) => match session {
            Some(session) => views::consent_form(state, headers, request, session, done),
            None => views::sign_in_form(state, headers, &then, None, StatusCode::OK),
        },
        Err(e) => refused(&state.chrome, e),
    }
}

/// Goes on to `then` after a step (sign-in, second factor, enrolment).
pub(super) async fn go_on(
    state: &AppState,
    headers: &HeaderMap,
    then: &Then,
    session: Option<&LiveSession>,
    done: Done,
    now: i64,
) -> Response {
    match then {
        Then::Authorize(request) => proceed(state, headers, request, session, done, now).await,
        other => see_other(&other.location(done)),
    }
}

/// Opens a browser session for `user`, authenticated as `authn` since `at`:
/// ends the browser's previous session and opens a new one (a fresh id,
/// against session fixation). Returns the session and its cookie.
pub(super) async fn open_session(
    state: &AppState,
    headers: &HeaderMap,
    then: &Then,
    user: &UserRecord,
    authn: &Authn,
    at: i64,
) -> Result<(LiveSession, HeaderValue), Response> {
    let sigil = &state.sigil;
    let now = sigil.clock.now();
    let actor = format!("user:{}", user.id);
    let ops = Ops::on(sigil, &actor);
    if let Ok(Some(previous)) = current_session(state, headers, now).await
        && let Err(e) =
            service::browser::sign_out(&ops, &previous.sid, Some(&previous.user.id)).await
    {
        return Err(unavailable(&state.chrome, e));
    }
    let (secret, sid) =
        service::browser::sign_in(&ops, user, authn, at, user_agent(headers), then.client_id())
            .await
            .map_err(|e| unavailable(&state.chrome, e))?;
    let max_age = sigil.config.sign_in.session_absolute_ttl.as_secs();
    let cookie = cookies::set(&sigil.config, cookies::SESSION, &secret, max_age);
    let live = LiveSession {
        sid,
        user: user.clone(),
        auth_time: at.min(now),
        authn: authn.clone(),
    };
    Ok((live, cookie))
}

/// After a successful sign-in (or sign-up, or a further factor): opens the
/// session, sets its cookie, clears a half sign-in's, and goes on.
pub(super) async fn signed_in(
    state: &AppState,
    headers: &HeaderMap,
    then: &Then,
    user: &UserRecord,
    authn: &Authn,
    at: i64,
    done: Done,
) -> Response {
    let (live, cookie) = match open_session(state, headers, then, user, authn, at).await {
        Ok(opened) => opened,
        Err(response) => return response,
    };
    let now = state.sigil.clock.now();
    let mut response = go_on(state, headers, then, Some(&live), done, now).await;
    let h = response.headers_mut();
    h.append(header::SET_COOKIE, cookie);
    if cookies::read(&state.sigil.config, headers, cookies::PENDING).is_some() {
        h.append(
            header::SET_COOKIE,
            cookies::set(&state.sigil.config, cookies::PENDING, "", 0),
        );
    }
    response
}
