//! The passkey endpoints the pages' script calls (JSON, CSRF in a
//! header): sign in with a passkey (the button, and conditional UI),
//! register one from the account page, sign up with one. The ceremonies
//! are `oauth::passkey`'s; these parse, call, and answer where the browser
//! goes next (`location`), with the session cookie when one opened.
//!
//! Renaming and removing passkeys are plain forms on the account page
//! (`account`), which work without the script.

use axum::Extension;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;

use super::super::AppState;
use super::super::observe::ClientAddr;
use super::cookies;
use super::csrf::{PageJson, json_refusal};
use super::flow::{Then, recent_session, then_from};
use super::steps::open_session;
use crate::authn::{Authn, Factor};
use crate::mfa::passkeys::{PublicKeyCredential, RegisterPublicKeyCredential};
use crate::oauth::authorize::Done;
use crate::oauth::passkey::{self, PasskeyError, SignUp};
use crate::service::factors::FactorError;
use crate::service::{self, Ops};
use crate::store::StoreError;

fn store_failure(e: StoreError) -> Response {
    match e {
        StoreError::Unavailable(_) => json_refusal(
            StatusCode::SERVICE_UNAVAILABLE,
            "The service is unavailable right now. Try again in a moment.",
        ),
        other => {
            tracing::error!(error = %other, "a passkey request failed");
            json_refusal(
                StatusCode::INTERNAL_SERVER_ERROR,
                "The server could not complete this request.",
            )
        }
    }
}

fn passkey_failure(e: PasskeyError) -> Response {
    match e {
        PasskeyError::Refused(why) => json_refusal(StatusCode::BAD_REQUEST, &why),
        PasskeyError::Store(e) => store_failure(e),
    }
}

fn factor_failure(e: FactorError) -> Response {
    match e {
        FactorError::Invalid(why) => json_refusal(StatusCode::BAD_REQUEST, &why),
        FactorError::Store(e) => store_failure(e),
    }
}

/// `{location}`, and the cookies to set.
fn go(location: &str, cookies: &[HeaderValue]) -> Response {
    let mut response = axum::Json(json!({ "location": location })).into_response();
    let h = response.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    for cookie in cookies {
        h.append(header::SET_COOKIE, cookie.clone());
    }
    response
}

/// `{ceremony, options}`: the id to finish with, and what the browser's
/// WebAuthn call takes.
fn started(ceremony: String, options: impl serde::Serialize) -> Response {
    let mut response =
        axum::Json(json!({ "ceremony": ceremony, "options": options })).into_response();
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

#[derive(Deserialize)]
pub struct Empty {}

// WebAuthn §5.1.4 (get): options for any of the user's passkeys of this
// site, for the button and for conditional UI alike.
pub async fn sign_in_start_post(State(state): State<AppState>, _json: PageJson<Empty>) -> Response {
    let now = state.sigil.clock.now();
    match passkey::start_sign_in(&state.sigil, now).await {
        Ok((ceremony, options)) => started(ceremony, options),
        Err(e) => passkey_failure(e),
    }
}

#[derive(Deserialize)]
pub struct SignInFinish {
    ceremony: String,
    credential: PublicKeyCredential,
    #[serde(default)]
    request: String,
    #[serde(default)]
    device: String,
}

async fn then_or_refusal(
    state: &AppState,
    request: &str,
    device: &str,
    now: i64,
) -> Result<Then, Response> {
    then_from(state, Some(request), Some(device), now)
        .await
        .map_err(|_| {
            json_refusal(
                StatusCode::BAD_REQUEST,
                "the request to continue is not valid",
            )
        })
}

/// A passkey sign-in: a whole authentication by itself (possession and
/// user verification), so it opens a session at `phr`/`phrh`.
#[tracing::instrument(skip_all, name = "passkey_sign_in_finish_post")]
pub async fn sign_in_finish_post(
    State(state): State<AppState>,
    json: PageJson<SignInFinish>,
) -> Response {
    let sigil = &state.sigil;
    let now = sigil.clock.now();
    let finish = json.body;
    let then = match then_or_refusal(&state, &finish.request, &finish.device, now).await {
        Ok(then) => then,
        Err(response) => return response,
    };
    let (user, factor) = match passkey::finish_sign_in(
        sigil,
        &finish.ceremony,
        &finish.credential,
        now,
    )
    .await
    {
        Ok(found) => found,
        Err(e) => {
            metrics::counter!(crate::metrics::LOGIN_FAILURES, "reason" => "invalid_grant", "grant" => "passkey").increment(1);
            return passkey_failure(e);
        }
    };
    let authn = Authn::with(factor);
    signed_in_json(&state, &json.headers, &then, &user, &authn, now).await
}

async fn signed_in_json(
    state: &AppState,
    headers: &axum::http::HeaderMap,
    then: &Then,
    user: &crate::store::UserRecord,
    authn: &Authn,
    now: i64,
) -> Response {
    let (_, cookie) = match open_session(state, headers, then, user, authn, now).await {
        Ok(opened) => opened,
        Err(_) => {
            return store_failure(StoreError::Unavailable("opening the session failed".into()));
        }
    };
    let done = Done {
        signed_in: true,
        consented: false,
        stepped_up: true,
    };
    let mut set = vec![cookie];
    if cookies::read(&state.sigil.config, headers, cookies::PENDING).is_some() {
        set.push(cookies::set(&state.sigil.config, cookies::PENDING, "", 0));
    }
    go(&then.location(done), &set)
}

// WebAuthn §5.1.3 (create), for the signed-in user, after a recent sign-in.
pub async fn register_start_post(State(state): State<AppState>, json: PageJson<Empty>) -> Response {
    let now = state.sigil.clock.now();
    let session = match recent_session(&state, &json.headers, now).await {
        Ok(session) => session,
        Err(why) => return json_refusal(StatusCode::FORBIDDEN, why),
    };
    match passkey::start_registration(&state.sigil, &session.user, now).await {
        Ok((ceremony, options)) => started(ceremony, options),
        Err(e) => passkey_failure(e),
    }
}

#[derive(Deserialize)]
pub struct RegisterFinish {
    ceremony: String,
    credential: RegisterPublicKeyCredential,
    #[serde(default)]
    name: String,
}

#[tracing::instrument(skip_all, name = "passkey_register_finish_post")]
pub async fn register_finish_post(
    State(state): State<AppState>,
    json: PageJson<RegisterFinish>,
) -> Response {
    let sigil = &state.sigil;
    let now = sigil.clock.now();
    let session = match recent_session(&state, &json.headers, now).await {
        Ok(session) => session,
        Err(why) => return json_refusal(StatusCode::FORBIDDEN, why),
    };
    let finish = json.body;
    let name = if finish.name.trim().is_empty() {
        "Passkey"
    } else {
        finish.name.as_str()
    };
    let record = match passkey::finish_registration(
        sigil,
        &session.user,
        &finish.ceremony,
        &finish.credential,
        name,
        now,
    )
    .await
    {
        Ok(record) => record,
        Err(e) => return passkey_failure(e),
    };
    let actor = format!("user:{}", session.user.id);
    let ops = Ops::on(sigil, &actor);
    if let Err(e) = service::factors::add_passkey(&ops, &session.user, &record).await {
        return factor_failure(e);
    }
    go("/account", &[])
}

#[derive(Deserialize)]
pub struct SignUpStart {
    username: String,
    email: String,
}

fn sign_up_closed(state: &AppState) -> Option<Response> {
    let config = &state.sigil.config;
    (!config.registration || !config.mfa.passkey_only_accounts).then(|| {
        json_refusal(
            StatusCode::FORBIDDEN,
            "Accounts with a passkey alone cannot be created on this server.",
        )
    })
}

// A passkey-only account, when `registration` and
// `mfa.passkey_only_accounts` allow it; counted against the address's
// registrations like any sign-up.
pub async fn sign_up_start_post(
    State(state): State<AppState>,
    client_addr: Option<Extension<ClientAddr>>,
    json: PageJson<SignUpStart>,
) -> Response {
    if let Some(closed) = sign_up_closed(&state) {
        return closed;
    }
    let sigil = &state.sigil;
    let now = sigil.clock.now();
    let from = client_addr.map(|Extension(ClientAddr(ip))| ip);
    match sigil
        .throttle
        .registration(sigil.store.as_ref(), from, now)
        .await
    {
        Ok(Ok(())) => {}
        Ok(Err(_)) => {
            return json_refusal(
                StatusCode::TOO_MANY_REQUESTS,
                "Too many accounts were created from this address. Try again later.",
            );
        }
        Err(e) => return store_failure(e),
    }
    let input = SignUp {
        username: json.body.username,
        email: json.body.email,
    };
    match passkey::start_sign_up(sigil, input, now).await {
        Ok((ceremony, options)) => started(ceremony, options),
        Err(e) => passkey_failure(e),
    }
}

#[derive(Deserialize)]
pub struct SignUpFinish {
    ceremony: String,
    credential: RegisterPublicKeyCredential,
    #[serde(default)]
    request: String,
    #[serde(default)]
    device: String,
}

#[tracing::instrument(skip_all, name = "passkey_sign_up_finish_post")]
pub async fn sign_up_finish_post(
    State(state): State<AppState>,
    json: PageJson<SignUpFinish>,
) -> Response {
    if let Some(closed) = sign_up_closed(&state) {
        return closed;
    }
    let sigil = &state.sigil;
    let now = sigil.clock.now();
    let finish = json.body;
    let then = match then_or_refusal(&state, &finish.request, &finish.device, now).await {
        Ok(then) => then,
        Err(response) => return response,
    };
    let (user, record) =
        match passkey::finish_sign_up(sigil, &finish.ceremony, &finish.credential, now).await {
            Ok(made) => made,
            Err(e) => return passkey_failure(e),
        };
    let ops = Ops::on(sigil, service::ANONYMOUS);
    if let Err(e) = service::factors::sign_up_with_passkey(&ops, &user, &record).await {
        return factor_failure(e);
    }
    let authn = Authn::with(Factor::Passkey {
        synced: record.backup_eligible,
    });
    signed_in_json(&state, &json.headers, &then, &user, &authn, now).await
}
