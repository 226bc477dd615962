//! The account page: a signed-in user sees the browsers signed in as them,
//! the apps they allowed and how they sign in (authenticator app, recovery
//! codes, passkeys), and changes them. Changing how one signs in needs a
//! recent sign-in (`mfa.reauth_window`).

use askama::Template;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::Response;

use super::super::AppState;
use super::cookies;
use super::csrf::{CsrfToken, PageForm};
use super::factor_views::reauth_page;
use super::flow::{Then, current_session, failed, recent_session, unavailable};
use super::render::{Chrome, error_page, page_with_script_if, see_other};
use crate::browser::session::{LiveSession, is_live_for};
use crate::oauth::mfa::factors;
use crate::service::factors::FactorError;
use crate::service::{self, Ops};

struct SessionRow {
    sid: String,
    user_agent: String,
    since: String,
    current: bool,
}

struct ConsentRow {
    client_id: String,
    scope: String,
}

struct PasskeyRow {
    id: String,
    name: String,
    added: String,
    last_used: String,
    synced: bool,
}

#[derive(Template)]
#[template(path = "account.html")]
struct AccountPage<'a> {
    chrome: &'a Chrome,
    csrf: String,
    username: &'a str,
    sessions: Vec<SessionRow>,
    consents: Vec<ConsentRow>,
    totp: bool,
    recovery_codes: i64,
    passkeys: Vec<PasskeyRow>,
    /// Signed in recently enough to change how they sign in.
    recent: bool,
    /// How this session signed in (`amr`).
    signed_in_with: String,
    /// Passkeys work on this server (its issuer is a domain name).
    passkeys_on: bool,
}

/// The signed-in session, or a redirect to the sign-in page.
async fn signed_in(state: &AppState, headers: &HeaderMap) -> Result<LiveSession, Response> {
    let now = state.sigil.clock.now();
    match current_session(state, headers, now).await? {
        Some(session) => Ok(session),
        None => Err(see_other("/login")),
    }
}

pub async fn account_get(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let session = match signed_in(&state, &headers).await {
        Ok(session) => session,
        Err(response) => return response,
    };
    let sigil = &state.sigil;
    let store = sigil.store.as_ref();
    let now = sigil.clock.now();
    let idle = sigil.config.sign_in.session_idle_ttl.as_secs() as i64;
    let (sessions, consents) = match (
        store.list_browser_sessions(&session.user.id, now).await,
        store.list_consents(&session.user.id).await,
    ) {
        (Ok(s), Ok(c)) => (s, c),
        (Err(e), _) | (_, Err(e)) => return unavailable(&state.chrome, e),
    };
    let (factors, passkeys) = match (
        factors(sigil, &session.user.id).await,
        store.passkeys(&session.user.id).await,
    ) {
        (Ok(f), Ok(p)) => (f, p),
        (Err(e), _) => return failed(&state.chrome, e),
        (_, Err(e)) => return unavailable(&state.chrome, e),
    };
    let sessions = sessions
        .into_iter()
        .filter(|s| is_live_for(&session.user, s) && now < s.last_seen_at + idle)
        .map(|s| SessionRow {
            current: s.sid == session.sid,
            since: since(now - s.created_at),
            sid: s.sid,
            user_agent: s.user_agent,
        })
        .collect();
    let consents = consents
        .into_iter()
        .map(|c| ConsentRow {
            client_id: c.client_id,
            scope: c.scope,
        })
        .collect();
    let passkeys = passkeys
        .into_iter()
        .map(|p| PasskeyRow {
            added: since(now - p.created_at),
            last_used: p
                .last_used_at
                .map_or_else(|| "never".to_string(), |at| since(now - at)),
            synced: p.backup_eligible,
            id: p.id,
            name: p.name,
        })
        .collect();
    let window = sigil.config.mfa.reauth_window.as_secs() as i64;
    let csrf = CsrfToken::for_page(&state, &headers);
    let view = AccountPage {
        chrome: &state.chrome,
        csrf: csrf.token.clone(),
        username: &session.user.username,
        sessions,
        consents,
        totp: factors.totp,
        recovery_codes: factors.recovery_codes,
        passkeys,
        recent: now - session.auth_time <= window,
        signed_in_with: session.authn.amr.join(", "),
        passkeys_on: sigil.webauthn.is_some(),
    };
    let script = view.passkeys_on;
    csrf.attach(page_with_script_if(script, StatusCode::OK, &view, None))
}

/// "3 minutes ago", roughly.
fn since(seconds: i64) -> String {
    let seconds = seconds.max(0);
    match seconds {
        0..60 => "just now".into(),
        60..3600 => format!("{} min ago", seconds / 60),
        3600..86400 => format!("{} h ago", seconds / 3600),
        _ => format!("{} days ago", seconds / 86400),
    }
}

pub async fn end_session_post(State(state): State<AppState>, form: PageForm) -> Response {
    let session = match signed_in(&state, &form.headers).await {
        Ok(session) => session,
        Err(response) => return response,
    };
    let Some(sid) = form.get("sid") else {
        return see_other("/account");
    };
    let actor = format!("user:{}", session.user.id);
    let ops = Ops::on(&state.sigil, &actor);
    if let Err(e) = service::browser::sign_out(&ops, sid, Some(&session.user.id)).await {
        return unavailable(&state.chrome, e);
    }
    if sid == session.sid {
        return cleared(&state, see_other("/login"));
    }
    see_other("/account")
}

/// "Sign out everywhere": every browser session and every app's tokens,
/// as `POST /users/me/revoke-sessions` does.
pub async fn end_all_post(State(state): State<AppState>, form: PageForm) -> Response {
    let session = match signed_in(&state, &form.headers).await {
        Ok(session) => session,
        Err(response) => return response,
    };
    let actor = format!("user:{}", session.user.id);
    let ops = Ops::on(&state.sigil, &actor);
    if let Err(e) = service::users::revoke_sessions(&ops, &session.user).await {
        return unavailable(&state.chrome, e);
    }
    cleared(&state, see_other("/login"))
}

pub async fn revoke_consent_post(State(state): State<AppState>, form: PageForm) -> Response {
    let session = match signed_in(&state, &form.headers).await {
        Ok(session) => session,
        Err(response) => return response,
    };
    if let Some(client_id) = form.get("client_id") {
        let actor = format!("user:{}", session.user.id);
        let ops = Ops::on(&state.sigil, &actor);
        if let Err(e) = service::browser::revoke_consent(&ops, &session.user, client_id).await {
            return unavailable(&state.chrome, e);
        }
    }
    see_other("/account")
}

pub async fn rename_passkey_post(State(state): State<AppState>, form: PageForm) -> Response {
    let session = match signed_in(&state, &form.headers).await {
        Ok(session) => session,
        Err(response) => return response,
    };
    let (Some(id), Some(name)) = (form.get("id"), form.get("name")) else {
        return see_other("/account");
    };
    let actor = format!("user:{}", session.user.id);
    let ops = Ops::on(&state.sigil, &actor);
    match service::factors::rename_passkey(&ops, &session.user, id, name).await {
        Ok(_) => see_other("/account"),
        Err(FactorError::Invalid(why)) => error_page(&state.chrome, StatusCode::BAD_REQUEST, &why),
        Err(FactorError::Store(e)) => unavailable(&state.chrome, e),
    }
}

pub async fn remove_passkey_post(State(state): State<AppState>, form: PageForm) -> Response {
    let now = state.sigil.clock.now();
    let session = match recent_session(&state, &form.headers, now).await {
        Ok(session) => session,
        Err(_) => return reauth_page(&state, &form.headers, &Then::Account),
    };
    let Some(id) = form.get("id") else {
        return see_other("/account");
    };
    let actor = format!("user:{}", session.user.id);
    let ops = Ops::on(&state.sigil, &actor);
    match service::factors::remove_passkey(&ops, &session.user, id).await {
        Ok(_) => see_other("/account"),
        Err(FactorError::Invalid(why)) => error_page(&state.chrome, StatusCode::BAD_REQUEST, &why),
        Err(FactorError::Store(e)) => unavailable(&state.chrome, e),
    }
}

fn cleared(state: &AppState, mut response: Response) -> Response {
    let cookie = cookies::set(&state.sigil.config, cookies::SESSION, "", 0);
    response.headers_mut().append(header::SET_COOKIE, cookie);
    response
}
