//! The device page (RFC 8628 §3.3): a signed-in user enters the code a
//! device shows (or arrives with it from `verification_uri_complete`),
//! checks that the page names the same code and app as the device, and
//! approves or denies it. Wrong codes are throttled per address and user
//! (§5.1); a client that requires a second factor gets it here too.

use askama::Template;
use axum::Extension;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;

use super::super::AppState;
use super::super::observe::ClientAddr;
use super::csrf::{CsrfToken, PageForm};
use super::flow::{DEVICE_WITHOUT_CODE, Then, current_session, failed, unavailable};
use super::render::{Chrome, error_page, page};
use super::{factor_views, views};
use crate::browser::session::LiveSession;
use crate::oauth::authorize::{Done, Next, mandatory_acr, step_up_to};
use crate::oauth::device;
use crate::scope::Scopes;
use crate::service::{self, Ops};

#[derive(Template)]
#[template(path = "device.html")]
struct EntryPage<'a> {
    chrome: &'a Chrome,
    csrf: String,
    user_code: &'a str,
    error: Option<&'a str>,
}

#[derive(Template)]
#[template(path = "device_confirm.html")]
struct ConfirmPage<'a> {
    chrome: &'a Chrome,
    csrf: String,
    user_code: &'a str,
    client_id: &'a str,
    username: &'a str,
    scopes: Vec<(String, &'static str)>,
}

#[derive(Template)]
#[template(path = "device_done.html")]
struct DonePage<'a> {
    chrome: &'a Chrome,
    approved: bool,
    client_id: &'a str,
}

fn entry(
    state: &AppState,
    headers: &HeaderMap,
    user_code: &str,
    error: Option<&str>,
    status: StatusCode,
) -> Response {
    let csrf = CsrfToken::for_page(state, headers);
    let view = EntryPage {
        chrome: &state.chrome,
        csrf: csrf.token.clone(),
        user_code,
        error,
    };
    csrf.attach(page(status, &view, None))
}

#[derive(serde::Deserialize)]
pub struct DeviceQuery {
    user_code: Option<String>,
}

// RFC 8628 §3.3: the verification URI, and §3.3.1 its complete form.
pub async fn device_get(
    State(state): State<AppState>,
    client_addr: Option<Extension<ClientAddr>>,
    headers: HeaderMap,
    Query(query): Query<DeviceQuery>,
) -> Response {
    let now = state.sigil.clock.now();
    let code = query.user_code.unwrap_or_default();
    let session = match current_session(&state, &headers, now).await {
        Ok(Some(session)) => session,
        Ok(None) => {
            let carried = if code.is_empty() || code.len() > 32 {
                DEVICE_WITHOUT_CODE.to_string()
            } else {
                code
            };
            let then = Then::Device(carried);
            return views::sign_in_form(&state, &headers, &then, None, StatusCode::OK);
        }
        Err(response) => return response,
    };
    if code.is_empty() || code == DEVICE_WITHOUT_CODE {
        return entry(&state, &headers, "", None, StatusCode::OK);
    }
    let from = client_addr.map(|Extension(ClientAddr(ip))| ip);
    look_up(&state, &headers, &session, &code, from, now).await
}

/// The code typed into the entry form.
pub async fn device_post(
    State(state): State<AppState>,
    client_addr: Option<Extension<ClientAddr>>,
    form: PageForm,
) -> Response {
    let now = state.sigil.clock.now();
    let code = form.get("user_code").unwrap_or_default().to_string();
    let session = match current_session(&state, &form.headers, now).await {
        Ok(Some(session)) => session,
        Ok(None) => {
            let then = Then::Device(DEVICE_WITHOUT_CODE.into());
            return views::sign_in_form(&state, &form.headers, &then, None, StatusCode::OK);
        }
        Err(response) => return response,
    };
    let from = client_addr.map(|Extension(ClientAddr(ip))| ip);
    look_up(&state, &form.headers, &session, &code, from, now).await
}

/// Finds the pending request the code names (throttled), and shows what
/// it asks for, once the session meets what the client requires.
async fn look_up(
    state: &AppState,
    headers: &HeaderMap,
    session: &LiveSession,
    code: &str,
    from: Option<std::net::IpAddr>,
    now: i64,
) -> Response {
    let sigil = &state.sigil;
    let store = sigil.store.as_ref();
    let mut attempt = sigil.throttle.device_attempt(from, &session.user.id);
    let lockout = match sigil.throttle.lockout(store, &mut attempt, now).await {
        Ok(lockout) => lockout,
        Err(e) => return unavailable(&state.chrome, e),
    };
    let found = if lockout.is_none() {
        match device::pending(sigil, code, now).await {
            Ok(found) => found,
            Err(e) => return failed(&state.chrome, e),
        }
    } else {
        None
    };
    let Some((record, client)) = found else {
        let delay = match sigil.throttle.failed(store, &attempt, now).await {
            Ok(delay) => delay,
            Err(e) => return unavailable(&state.chrome, e),
        };
        tokio::time::sleep(delay).await;
        let message = if lockout.is_some() {
            "Too many wrong codes. Wait a few minutes and try again."
        } else {
            "That code is not valid, or it has expired. Check the code on your device."
        };
        return entry(state, headers, code, Some(message), StatusCode::OK);
    };
    if let Err(e) = sigil.throttle.succeeded(store, &attempt).await {
        return unavailable(&state.chrome, e);
    }
    let then = Then::Device(code.to_string());
    match step_up_to(sigil, mandatory_acr(sigil, &client), None, session).await {
        Ok(None) => {}
        Ok(Some(Next::StepUp { factors, .. })) => {
            let ask = factor_views::Ask {
                user: &session.user,
                factors,
                voluntary: false,
                pending: None,
                error: None,
            };
            return factor_views::second_factor_form(
                state,
                headers,
                &then,
                &ask,
                Done::default(),
                StatusCode::OK,
            );
        }
        Ok(Some(_)) => return factor_views::enrol_required(state, headers, &then, Done::default()),
        Err(e) => return failed(&state.chrome, e),
    }
    let scopes = Scopes::parse(&record.scope).unwrap_or_default();
    let csrf = CsrfToken::for_page(state, headers);
    let shown = device::normalise_user_code(code).unwrap_or_default();
    let shown = format!(
        "{}-{}",
        &shown[..4.min(shown.len())],
        &shown[4.min(shown.len())..]
    );
    let view = ConfirmPage {
        chrome: &state.chrome,
        csrf: csrf.token.clone(),
        user_code: &shown,
        client_id: &client.id,
        username: &session.user.username,
        scopes: scopes
            .iter()
            .map(|s| (s.to_string(), views::describe(s)))
            .collect(),
    };
    csrf.attach(page(StatusCode::OK, &view, None))
}

/// Approve or deny (RFC 8628 §3.3).
#[tracing::instrument(skip_all, name = "device_decision_post")]
pub async fn device_decision_post(State(state): State<AppState>, form: PageForm) -> Response {
    let sigil = &state.sigil;
    let now = sigil.clock.now();
    let session = match current_session(&state, &form.headers, now).await {
        Ok(Some(session)) => session,
        Ok(None) => {
            let then = Then::Device(DEVICE_WITHOUT_CODE.into());
            return views::sign_in_form(&state, &form.headers, &then, None, StatusCode::OK);
        }
        Err(response) => return response,
    };
    let code = form.get("user_code").unwrap_or_default();
    let (record, client) = match device::pending(sigil, code, now).await {
        Ok(Some(found)) => found,
        Ok(None) => {
            let message =
                "That request has expired or was already answered. Start again on your device.";
            return entry(&state, &form.headers, "", Some(message), StatusCode::OK);
        }
        Err(e) => return failed(&state.chrome, e),
    };
    let approve = form.get("decision") == Some("allow");
    // What the client requires is checked again: the form could be old.
    if approve {
        match step_up_to(sigil, mandatory_acr(sigil, &client), None, &session).await {
            Ok(None) => {}
            Ok(Some(_)) => {
                return error_page(
                    &state.chrome,
                    StatusCode::FORBIDDEN,
                    "This app requires a second step when you sign in. Reload the device page.",
                );
            }
            Err(e) => return failed(&state.chrome, e),
        }
    }
    let scope = Scopes::parse(&record.scope).unwrap_or_default();
    let actor = format!("user:{}", session.user.id);
    let ops = Ops::on(sigil, &actor);
    match service::device::decide(&ops, &session, &client, code, &scope, approve).await {
        Ok(true) => {
            let view = DonePage {
                chrome: &state.chrome,
                approved: approve,
                client_id: &client.id,
            };
            page(StatusCode::OK, &view, None)
        }
        Ok(false) => {
            let message =
                "That request has expired or was already answered. Start again on your device.";
            entry(&state, &form.headers, "", Some(message), StatusCode::OK)
        }
        Err(e) => unavailable(&state.chrome, e),
    }
}
