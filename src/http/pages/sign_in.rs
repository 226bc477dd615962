//! The sign-in page: `GET /login` (for the account and device pages) and
//! the form every authorization request without a session is shown,
//! posted to `POST /login`. The password goes through
//! `oauth::check_password`, with the password grant's throttling, lockout,
//! timing and audit. A user with an authenticator app is asked for a code
//! next (`second_factor`), before any session exists.

use axum::Extension;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use secrecy::SecretString;

use super::super::AppState;
use super::super::observe::ClientAddr;
use super::csrf::PageForm;
use super::factor_views;
use super::flow::{current_session, failed, then_from, then_of};
use super::render::see_other;
use super::steps::signed_in;
use super::views::{self, WRONG};
use crate::authn::{Authn, Factor};
use crate::oauth::authorize::Done;
use crate::oauth::mfa::factors;
use crate::oauth::{OAuthError, check_password};

#[derive(serde::Deserialize)]
pub struct LoginQuery {
    /// Sign in again even with a session (the account page asks for a
    /// recent sign-in before sign-in methods change).
    reauth: Option<String>,
    /// A device page's user code to go back to.
    device: Option<String>,
}

pub async fn login_get(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(query): Query<LoginQuery>,
) -> Response {
    let now = state.sigil.clock.now();
    let then = match then_from(&state, None, query.device.as_deref(), now).await {
        Ok(then) => then,
        Err(response) => return response,
    };
    if query.reauth.is_none() {
        match current_session(&state, &headers, now).await {
            Ok(Some(_)) => return see_other(&then.location(Done::default())),
            Ok(None) => {}
            Err(response) => return response,
        }
    }
    views::sign_in_form(&state, &headers, &then, None, StatusCode::OK)
}

#[tracing::instrument(skip_all, name = "login_post")]
pub async fn login_post(
    State(state): State<AppState>,
    client_addr: Option<Extension<ClientAddr>>,
    form: PageForm,
) -> Response {
    let sigil = &state.sigil;
    let now = sigil.clock.now();
    let then = match then_of(&state, &form, now).await {
        Ok(then) => then,
        Err(response) => return response,
    };
    let username = form.get("username").unwrap_or_default().to_string();
    let password = SecretString::from(form.get("password").unwrap_or_default().to_string());
    let from = client_addr.map(|Extension(ClientAddr(ip))| ip);
    let client_id = then.client_id().unwrap_or("account");
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
            let failed = Some((username.as_str(), message));
            return views::sign_in_form(&state, &form.headers, &then, failed, status);
        }
    };
    // RFC 6238 as a second step: a user with an authenticator app gives a
    // code before any session opens (the half sign-in is a signed cookie).
    let enrolled = match factors(sigil, &user.id).await {
        Ok(f) => f,
        Err(e) => return failed(&state.chrome, e),
    };
    if enrolled.totp {
        return factor_views::after_password(&state, &form.headers, &then, &user, enrolled, now);
    }
    let authn = Authn::with(Factor::Password);
    let done = Done {
        signed_in: true,
        ..Done::default()
    };
    signed_in(&state, &form.headers, &then, &user, &authn, now, done).await
}
