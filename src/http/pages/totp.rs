//! Setting up an authenticator app (RFC 6238) from the account page, or
//! when a client requires a second factor of a user who has none: the
//! secret as a QR code (rendered here, no external service) and as text,
//! confirmed by a first code; then recovery codes, shown once. Also
//! removing the app and drawing new recovery codes.

use askama::Template;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::Response;

use super::super::AppState;
use super::csrf::{CsrfToken, PageForm};
use super::factor_views::reauth_page;
use super::flow::{Then, recent_session, then_of, unavailable};
use super::render::{Chrome, error_page, page, see_other};
use super::steps::open_session;
use crate::authn::Factor;
use crate::browser::session::LiveSession;
use crate::mfa::totp;
use crate::oauth::authorize::Done;
use crate::service::factors::FactorError;
use crate::service::{self, Ops};

#[derive(Template)]
#[template(path = "totp_setup.html")]
struct SetupPage<'a> {
    chrome: &'a Chrome,
    csrf: String,
    request: String,
    device: String,
    qr_svg: String,
    secret: String,
    error: Option<&'a str>,
}

fn setup_page(
    state: &AppState,
    headers: &HeaderMap,
    then: &Then,
    session: &LiveSession,
    secret: &[u8],
    error: Option<&str>,
) -> Response {
    let config = &state.sigil.config;
    let issuer = config
        .mfa
        .totp_issuer
        .as_deref()
        .unwrap_or(&config.branding.product_name);
    let uri = totp::otpauth_uri(issuer, &session.user.username, secret);
    let qr_svg = totp::qr_svg(&uri)
        .map(|svg| match svg.find("<svg") {
            // Inline in the page: without the XML declaration.
            Some(at) => svg[at..].to_string(),
            None => svg,
        })
        .unwrap_or_default();
    let csrf = CsrfToken::for_page(state, headers);
    let (request, device) = then.fields(Done::default());
    let view = SetupPage {
        chrome: &state.chrome,
        csrf: csrf.token.clone(),
        request,
        device,
        qr_svg,
        secret: totp::secret_text(secret),
        error,
    };
    let status = if error.is_some() {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::OK
    };
    csrf.attach(page(status, &view, None))
}

fn factor_failure(state: &AppState, e: FactorError) -> Response {
    match e {
        FactorError::Invalid(why) => error_page(&state.chrome, StatusCode::BAD_REQUEST, &why),
        FactorError::Store(e) => unavailable(&state.chrome, e),
    }
}

/// Begins the set-up (again): a new secret, shown.
pub async fn totp_start_post(State(state): State<AppState>, form: PageForm) -> Response {
    let sigil = &state.sigil;
    let now = sigil.clock.now();
    let then = match then_of(&state, &form, now).await {
        Ok(then) => then,
        Err(response) => return response,
    };
    let session = match recent_session(&state, &form.headers, now).await {
        Ok(session) => session,
        Err(_) => return reauth_page(&state, &form.headers, &then),
    };
    let actor = format!("user:{}", session.user.id);
    let ops = Ops::on(sigil, &actor);
    match service::factors::start_totp(&ops, sigil.keys.kek(), &session.user).await {
        Ok(enrolment) => setup_page(
            &state,
            &form.headers,
            &then,
            &session,
            &enrolment.secret,
            None,
        ),
        Err(e) => factor_failure(&state, e),
    }
}

#[derive(Template)]
#[template(path = "recovery_codes.html")]
struct CodesPage<'a> {
    chrome: &'a Chrome,
    codes: Vec<String>,
    continue_to: String,
}

/// The first code confirms the set-up: recovery codes are shown once, and
/// a sign-in that needed the second factor goes on with it.
pub async fn totp_confirm_post(State(state): State<AppState>, form: PageForm) -> Response {
    let sigil = &state.sigil;
    let now = sigil.clock.now();
    let then = match then_of(&state, &form, now).await {
        Ok(then) => then,
        Err(response) => return response,
    };
    let session = match recent_session(&state, &form.headers, now).await {
        Ok(session) => session,
        Err(_) => return reauth_page(&state, &form.headers, &then),
    };
    let actor = format!("user:{}", session.user.id);
    let ops = Ops::on(sigil, &actor);
    let kek = sigil.keys.kek();
    let code = form.get("code").unwrap_or_default();
    let codes = match service::factors::confirm_totp(&ops, kek, &session.user, code).await {
        Ok(codes) => codes,
        Err(FactorError::Invalid(why)) => {
            return match service::factors::pending_totp_secret(&ops, kek, &session.user).await {
                Ok(Some(secret)) => {
                    setup_page(&state, &form.headers, &then, &session, &secret, Some(&why))
                }
                Ok(None) => error_page(&state.chrome, StatusCode::BAD_REQUEST, &why),
                Err(e) => factor_failure(&state, e),
            };
        }
        Err(e) => return factor_failure(&state, e),
    };
    let done = Done {
        signed_in: true,
        consented: false,
        stepped_up: true,
    };
    let view = CodesPage {
        chrome: &state.chrome,
        codes,
        continue_to: then.location(done),
    };
    let mut response = page(StatusCode::OK, &view, None);
    // The code just typed proves the authenticator: a sign-in waiting for
    // a second factor has it now.
    if !matches!(then, Then::Account) {
        let authn = session.authn.and(Factor::OneTimeCode);
        match open_session(&state, &form.headers, &then, &session.user, &authn, now).await {
            Ok((_, cookie)) => {
                response.headers_mut().append(header::SET_COOKIE, cookie);
            }
            Err(response) => return response,
        }
    }
    response
}

pub async fn totp_remove_post(State(state): State<AppState>, form: PageForm) -> Response {
    let sigil = &state.sigil;
    let now = sigil.clock.now();
    let session = match recent_session(&state, &form.headers, now).await {
        Ok(session) => session,
        Err(_) => return reauth_page(&state, &form.headers, &Then::Account),
    };
    let actor = format!("user:{}", session.user.id);
    let ops = Ops::on(sigil, &actor);
    match service::factors::remove_totp(&ops, &session.user).await {
        Ok(_) => see_other("/account"),
        Err(e) => factor_failure(&state, e),
    }
}

pub async fn recovery_codes_post(State(state): State<AppState>, form: PageForm) -> Response {
    let sigil = &state.sigil;
    let now = sigil.clock.now();
    let session = match recent_session(&state, &form.headers, now).await {
        Ok(session) => session,
        Err(_) => return reauth_page(&state, &form.headers, &Then::Account),
    };
    let actor = format!("user:{}", session.user.id);
    let ops = Ops::on(sigil, &actor);
    match service::factors::new_recovery_codes(&ops, &session.user).await {
        Ok(codes) => {
            let view = CodesPage {
                chrome: &state.chrome,
                codes,
                continue_to: "/account".into(),
            };
            page(StatusCode::OK, &view, None)
        }
        Err(e) => factor_failure(&state, e),
    }
}
