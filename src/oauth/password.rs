//! The resource owner password credentials grant, RFC 6749 §4.3, and the
//! password check it shares with the hosted sign-in page.

use std::net::IpAddr;

use secrecy::SecretString;

use super::refresh::Opening;
use super::refresh::start_session;
use super::{
    Context, Grant, OAuthError, Params, TokenResponse, issue_access_token, requested_scope,
};
use crate::authn::{Authn, Factor};
use crate::clients::Client;
use crate::passwords::PasswordError;
use crate::state::Sigil;
use crate::store::UserRecord;
use crate::users::Username;

// RFC 6749 §4.3.2: grant_type=password, username, password, optional scope.
// §4.3.3: a refresh token is included when the client may use the
// refresh_token grant.
pub async fn password_grant(
    sigil: &Sigil,
    client: &Client,
    params: &Params,
    ctx: Context<'_>,
) -> Result<TokenResponse, OAuthError> {
    let (from, now) = (ctx.from, ctx.now);
    if !sigil.config.password_grant {
        return Err(OAuthError::UnsupportedGrantType(
            "the password grant is switched off on this server (RFC 9700 §2.4); use the \
             authorization code flow"
                .into(),
        ));
    }
    let username = params.require("username")?;
    let password = SecretString::from(params.require("password")?.to_string());
    let scope = requested_scope(client, params)?;
    let user = check_password(sigil, username, &password, &client.id, from, now).await?;
    let authn = Authn::with(Factor::Password);
    let opening = Opening::new(&user, client, &scope, &authn, ctx.jkt());
    let session = start_session(sigil, opening, now, Some(&user.password_hash)).await?;
    let grant = Grant {
        session: Some(&session.id),
        authn: Some(&authn),
        jkt: ctx.jkt(),
        ..Grant::new(&user.id, &scope)
    };
    let (access_token, claims) = issue_access_token(sigil, client, grant, session.started)?;
    let mut response = TokenResponse::new(access_token, claims, now);
    response.refresh_token = session.refresh_token;
    Ok(response)
}

/// Checks a username and password, with the throttling, lockout and audit
/// every password sign-in gets (the password grant and the hosted sign-in
/// page alike). A wrong password, an unknown user, a disabled user and a
/// locked-out account get one answer, after one argon2id verification
/// each, so neither the answer nor its time tells them apart.
pub async fn check_password(
    sigil: &Sigil,
    username: &str,
    password: &SecretString,
    client_id: &str,
    from: Option<IpAddr>,
    now: i64,
) -> Result<UserRecord, OAuthError> {
    let store = sigil.store.as_ref();
    // A name that cannot be a username is never counted (it could not be
    // anyone's account); it still costs a hash like any other failure.
    let parsed = Username::parse(username).ok();
    let mut attempt = parsed
        .as_ref()
        .map(|name| sigil.throttle.attempt(from, name.as_str()));
    let mut lockout = match attempt.as_mut() {
        Some(attempt) => sigil.throttle.lockout(store, attempt, now).await?,
        None => None,
    };

    let user = match &parsed {
        Some(username) => store.user_by_username(username.as_str()).await?,
        None => None,
    };
    let matched = sigil
        .passwords
        // A passkey-only account has no password hash: checked like an
        // unknown user's, so its answer and time are the same.
        .verify(
            password,
            user.as_ref()
                .map(|u| u.password_hash.as_str())
                .filter(|hash| !hash.is_empty()),
        )
        .await
        .map_err(|e| match e {
            PasswordError::Busy => OAuthError::TemporarilyUnavailable(
                "too many logins in progress; retry shortly".into(),
            ),
            other => OAuthError::ServerError(other.to_string()),
        })?;
    let valid = matched && lockout.is_none() && user.as_ref().is_some_and(|u| !u.disabled);
    // Concurrent guesses all pass the first check before any of them is
    // counted: a right one is let in only if no lockout began meanwhile.
    if valid && let Some(attempt) = attempt.as_mut() {
        lockout = sigil.throttle.lockout(store, attempt, now).await?;
    }
    let user = match user {
        Some(user) if valid && lockout.is_none() => user,
        _ => {
            // A locked-out attempt goes the same way as a wrong password:
            // counted, delayed alike, answered alike (see crate::throttle).
            let delay = match &attempt {
                Some(attempt) => sigil.throttle.failed(store, attempt, now).await?,
                None => std::time::Duration::ZERO,
            };
            if let Some(lockout) = lockout {
                metrics::counter!(crate::metrics::LOGIN_THROTTLED, "scope" => lockout.as_str())
                    .increment(1);
                let detail = serde_json::json!({
                    "lockout": lockout.as_str(),
                    "client_id": client_id,
                    "client_addr": from.map(|ip| ip.to_string()),
                });
                sigil
                    .audit
                    .record(now, "anonymous", "login.blocked", Some(username), detail);
            }
            tokio::time::sleep(delay).await;
            return Err(OAuthError::InvalidGrant(
                "the username or password is incorrect".into(),
            ));
        }
    };
    if let Some(attempt) = &attempt {
        sigil.throttle.succeeded(store, attempt).await?;
    }
    Ok(user)
}
