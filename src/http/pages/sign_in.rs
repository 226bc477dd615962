//! The sign-in page: `GET /login` (for the account page) and the form
//! every authorization request without a session is shown, posted to
//! `POST /login`. The password goes through `oauth::check_password`, with
//! the password grant's throttling, lockout, timing and audit.

use axum::Extension;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::Response;
use secrecy::SecretString;

use super::super::AppState;
use super::super::observe::ClientAddr;
use super::cookies;
use super::csrf::PageForm;
use super::flow::{carried, current_session, proceed, unavailable, user_agent};
use super::render::see_other;
use super::views::{self, WRONG};
use crate::browser::session::LiveSession;
use crate::oauth::authorize::{AuthorizationRequest, Done};
use crate::oauth::{OAuthError, check_password};
use crate::service::{self, Ops};
use crate::store::UserRecord;

pub async fn login_get(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let now = state.sigil.clock.now();
    match current_session(&state, &headers, now).await {
        Ok(Some(_)) => see_other("/account"),
        Ok(None) => views::sign_in_form(&state, &headers, None, None, StatusCode::OK),
        Err(response) => response,
    }
}

#[tracing::instrument(skip_all, name = "login_post")]
pub async fn login_post(
    State(state): State<AppState>,
    client_addr: Option<Extension<ClientAddr>>,
    form: PageForm,
) -> Response {
    let sigil = &state.sigil;
    let now = sigil.clock.now();
    let request = match carried(&state, &form, now).await {
        Ok(request) => request,
        Err(response) => return response,
    };
    let username = form.get("username").unwrap_or_default().to_string();
    let password = SecretString::from(form.get("password").unwrap_or_default().to_string());
    let from = client_addr.map(|Extension(ClientAddr(ip))| ip);
    let client_id = request.as_ref().map_or("account", |r| r.client.id.as_str());
    let user = match check_password(sigil, &username, &password, client_id, from, now).await {
        Ok(user) => user,
        Err(e) => {
            let (status, message) = match e {
                OAuthError::InvalidGrant(_) => {
                    metrics::counter!(crate::metrics::LOGIN_FAILURES, "reason" => "invalid_grant", "grant" => "sign_in_page").increment(1);
                    let detail = serde_json::json!({
                        "client_id": client_id,
                        "client_addr": from.map(|ip| ip.to_string()),
                        "via": "sign_in_page",
                    });
                    sigil
                        .audit
                        .record(now, "anonymous", "login.failed", Some(&username), detail);
                    (StatusCode::OK, WRONG)
                }
                OAuthError::TemporarilyUnavailable(_) => (
                    StatusCode::SERVICE_UNAVAILABLE,
                    "Too many sign-ins are in progress. Try again in a moment.",
                ),
                other => {
                    tracing::error!(error = %other, "sign-in failed");
                    (
                        StatusCode::INTERNAL_SERVER_ERROR,
                        "The server could not sign you in.",
                    )
                }
            };
            return form_again(&state, &form, request.as_ref(), &username, message, status);
        }
    };
    signed_in(&state, &form.headers, request.as_ref(), &user, now).await
}

fn form_again(
    state: &AppState,
    form: &PageForm,
    request: Option<&AuthorizationRequest>,
    username: &str,
    message: &str,
    status: StatusCode,
) -> Response {
    views::sign_in_form(
        state,
        &form.headers,
        request,
        Some((username, message)),
        status,
    )
}

/// After a successful sign-in (or sign-up): ends the browser's previous
/// session, opens a new one (a fresh id, against session fixation), sets
/// its cookie, and goes on with the request (or to the account page).
pub(super) async fn signed_in(
    state: &AppState,
    headers: &HeaderMap,
    request: Option<&AuthorizationRequest>,
    user: &UserRecord,
    now: i64,
) -> Response {
    let sigil = &state.sigil;
    let actor = format!("user:{}", user.id);
    let ops = Ops::on(sigil, &actor);
    if let Ok(Some(previous)) = current_session(state, headers, now).await
        && let Err(e) =
            service::browser::sign_out(&ops, &previous.sid, Some(&previous.user.id)).await
    {
        return unavailable(&state.chrome, e);
    }
    let client_id = request.map(|r| r.client.id.as_str());
    let (secret, sid) =
        match service::browser::sign_in(&ops, user, user_agent(headers), client_id).await {
            Ok(opened) => opened,
            Err(e) => return unavailable(&state.chrome, e),
        };
    let max_age = sigil.config.sign_in.session_absolute_ttl.as_secs();
    let cookie = cookies::set(&sigil.config, cookies::SESSION, &secret, max_age);
    let live = LiveSession {
        sid,
        user: user.clone(),
        auth_time: now,
    };
    let mut response = match request {
        Some(request) => {
            let done = Done {
                signed_in: true,
                consented: false,
            };
            proceed(state, headers, request, Some(&live), done, now).await
        }
        None => see_other("/account"),
    };
    response.headers_mut().append(header::SET_COOKIE, cookie);
    response
}
