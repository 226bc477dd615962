//! The second step of a sign-in, and step-up: a TOTP code (RFC 6238), a
//! recovery code, or a passkey (through the script, `passkeys`).
//!
//! Reached in two ways:
//! - right after the password of a user with an authenticator app: the
//!   half sign-in is a signed cookie (`browser::pending`), no session yet;
//! - inside a live session that falls short of what the request asks
//!   (`acr_values`) or the client requires (`Next::StepUp`).
//!
//! Either way a good code opens a new session whose `amr` adds `otp` and
//! `mfa`; codes go through the password's throttle and lockout.

use axum::Extension;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;

use super::super::AppState;
use super::super::observe::ClientAddr;
use super::cookies;
use super::csrf::PageForm;
use super::factor_views::{Ask, second_factor_form};
use super::flow::{current_session, failed, then_of, unavailable};
use super::render::error_page;
use super::steps::{go_on, signed_in};
use crate::authn::{Authn, Factor};
use crate::browser::pending;
use crate::oauth::OAuthError;
use crate::oauth::authorize::Done;
use crate::oauth::mfa::{SecondFactor, check_second_factor, factors};
use crate::store::UserRecord;

/// Whose second factor this is: a half sign-in's user (with when the
/// password was checked), or the signed-in user stepping up.
enum Who {
    Pending { user: UserRecord, at: i64 },
    Session(crate::browser::session::LiveSession),
}

async fn who(state: &AppState, headers: &HeaderMap, now: i64) -> Result<Option<Who>, Response> {
    let sigil = &state.sigil;
    if let Some(value) = cookies::read(&sigil.config, headers, cookies::PENDING)
        && let Some(half) = pending::open(sigil.keys.kek().pending_mac(), &value, now)
    {
        let user = sigil
            .store
            .user_by_id(&half.user_id)
            .await
            .map_err(|e| unavailable(&state.chrome, e))?;
        // A password changed (or the user disabled) meanwhile voids it.
        if let Some(user) = user.filter(|u| !u.disabled && pending::matches(&value, u)) {
            return Ok(Some(Who::Pending { user, at: half.at }));
        }
    }
    Ok(current_session(state, headers, now)
        .await?
        .map(Who::Session))
}

#[tracing::instrument(skip_all, name = "second_factor_post")]
pub async fn second_factor_post(
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
    let who = match who(&state, &form.headers, now).await {
        Ok(Some(who)) => who,
        Ok(None) => {
            // The half sign-in expired: start over.
            let message = "That took too long. Sign in again.";
            return super::views::sign_in_form(
                &state,
                &form.headers,
                &then,
                Some(("", message)),
                StatusCode::OK,
            );
        }
        Err(response) => return response,
    };
    let (user, base, at, pending_value) = match &who {
        Who::Pending { user, at } => (
            user.clone(),
            Authn::with(Factor::Password),
            *at,
            cookies::read(&sigil.config, &form.headers, cookies::PENDING),
        ),
        Who::Session(session) => (session.user.clone(), session.authn.clone(), now, None),
    };
    let stepped = Done {
        signed_in: true,
        consented: false,
        stepped_up: true,
    };
    if form.get("skip").is_some() {
        // Only a voluntary step-up may be skipped, inside a live session.
        return match &who {
            Who::Session(session) => {
                go_on(&state, &form.headers, &then, Some(session), stepped, now).await
            }
            Who::Pending { .. } => error_page(
                &state.chrome,
                StatusCode::BAD_REQUEST,
                "A code is needed to finish signing in.",
            ),
        };
    }
    let presented = match (form.get("code"), form.get("recovery_code")) {
        (Some(code), None) => SecondFactor::Totp(code),
        (None, Some(code)) => SecondFactor::RecoveryCode(code),
        _ => {
            return error_page(
                &state.chrome,
                StatusCode::BAD_REQUEST,
                "the form is incomplete",
            );
        }
    };
    let from = client_addr.map(|Extension(ClientAddr(ip))| ip);
    match check_second_factor(sigil, &user, presented, from, now).await {
        Ok(factor) => {
            let authn = base.and(factor);
            signed_in(&state, &form.headers, &then, &user, &authn, at, stepped).await
        }
        Err(OAuthError::InvalidGrant(_)) => {
            let enrolled = match factors(sigil, &user.id).await {
                Ok(f) => f,
                Err(e) => return failed(&state.chrome, e),
            };
            let ask = Ask {
                user: &user,
                factors: enrolled,
                voluntary: matches!(who, Who::Session(_)) && form.get("voluntary").is_some(),
                pending: pending_value,
                error: Some("That code is not right. Try again."),
            };
            let done = Done {
                signed_in: matches!(who, Who::Pending { .. }),
                ..Done::default()
            };
            second_factor_form(&state, &form.headers, &then, &ask, done, StatusCode::OK)
        }
        Err(e) => failed(&state.chrome, e),
    }
}
