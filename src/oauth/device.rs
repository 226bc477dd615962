//! The device authorization grant, RFC 8628.
//!
//! ```text
//!  device ── POST /oauth/device_authorization (client_id, scope) ──► authorize()
//!         ◄── device_code, user_code, verification_uri(_complete), expires_in, interval
//!  user's browser ── /device (signed in) ── enters or confirms the user code ──► pending()
//!         approve / deny ──► service::device::decide
//!  device ── POST /oauth/token grant_type=urn:…:device_code, device_code ──► device_grant()
//!         pending: authorization_pending, or slow_down (polled before the interval; +5 s)
//!         denied: access_denied   expired: expired_token   approved: tokens, once
//! ```
//!
//! Both codes are stored as SHA-256 digests only. The user code is short
//! (eight letters of an alphabet without vowels or look-alikes, §6.1) and
//! lives ten minutes; guessing it is throttled per address and per user.

use serde::Serialize;

use super::code::{IdFacts, id_token};
use super::refresh::{Opening, start_session_as};
use super::{
    Context, Grant, OAuthError, Params, TokenResponse, issue_access_token, requested_scope,
};
use crate::authn::Authn;
use crate::clients::Client;
use crate::state::Sigil;
use crate::store::{DeviceCodeRecord, DeviceStatus, StoreError};
use crate::tokens::{hash_secret, random_b64};

/// How long a device code lives (§3.2 `expires_in`).
pub const DEVICE_CODE_TTL: i64 = 600;
/// The least interval between polls a device is told (§3.2 `interval`).
pub const POLL_INTERVAL: i64 = 5;
/// RFC 8628 §6.1's example alphabet: consonants only, so no code spells a
/// word, and no 0/O or 1/I to confuse.
const ALPHABET: &[u8] = b"BCDFGHJKLMNPQRSTVWXZ";
const USER_CODE_LEN: usize = 8;

/// The device authorization response (§3.2).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct DeviceAuthorization {
    pub device_code: String,
    /// Eight letters, shown as `BCDF-GHJK`.
    pub user_code: String,
    pub verification_uri: String,
    pub verification_uri_complete: String,
    pub expires_in: i64,
    pub interval: i64,
}

// RFC 8628 §3.1-3.2: the client (authenticated as at the token endpoint)
// asks for a device code; the scope is checked as for any grant.
pub async fn authorize(
    sigil: &Sigil,
    client: &Client,
    params: &Params,
    now: i64,
) -> Result<DeviceAuthorization, OAuthError> {
    if !client.allows(crate::clients::GrantType::DeviceCode) {
        return Err(OAuthError::UnauthorizedClient(
            "this client may not use the device authorization grant".into(),
        ));
    }
    let scope = requested_scope(client, params)?;
    let device_code = random_b64::<32>();
    // A user code still held by a live request is drawn again (20^8
    // codes: a collision is rare; three in a row, a broken generator).
    for _ in 0..3 {
        let user_code = new_user_code();
        let record = DeviceCodeRecord {
            device_code_hash: hash_secret(&device_code),
            user_code_hash: user_code_digest(&user_code),
            client_id: client.id.clone(),
            scope: scope.to_string(),
            created_at: now,
            expires_at: now + DEVICE_CODE_TTL,
            poll_interval: POLL_INTERVAL,
            // §3.5: the interval is between polls; the first may come at
            // once (client libraries poll as soon as they show the code).
            next_poll_at: now,
            polled_too_soon: false,
            status: DeviceStatus::Pending,
            user_id: None,
            auth_time: None,
            amr: None,
            acr: None,
            sid: None,
            decided_at: None,
            spent_at: None,
        };
        match sigil.store.insert_device_code(&record).await {
            Ok(()) => {
                let shown = display(&user_code);
                let base = sigil.config.base_url();
                return Ok(DeviceAuthorization {
                    verification_uri: format!("{base}/device"),
                    verification_uri_complete: format!("{base}/device?user_code={shown}"),
                    device_code,
                    user_code: shown,
                    expires_in: DEVICE_CODE_TTL,
                    interval: POLL_INTERVAL,
                });
            }
            Err(StoreError::Conflict(_)) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(OAuthError::ServerError(
        "could not draw a free user code".into(),
    ))
}

fn new_user_code() -> String {
    // Rejection sampling keeps every letter equally likely.
    let mut code = String::with_capacity(USER_CODE_LEN);
    while code.len() < USER_CODE_LEN {
        let mut byte = [0u8; 1];
        crate::tokens::fill_random(&mut byte);
        let limit = (256 / ALPHABET.len() * ALPHABET.len()) as u8;
        if byte[0] < limit {
            code.push(ALPHABET[byte[0] as usize % ALPHABET.len()] as char);
        }
    }
    code
}

/// `BCDF-GHJK`.
fn display(code: &str) -> String {
    format!("{}-{}", &code[..4], &code[4..])
}

/// RFC 8628 §6.1: what the user typed, case and separators ignored;
/// `None` when it cannot be a user code.
pub fn normalise_user_code(text: &str) -> Option<String> {
    let code: String = text
        .chars()
        .filter(|c| !matches!(c, '-' | ' '))
        .map(|c| c.to_ascii_uppercase())
        .collect();
    let ok = code.len() == USER_CODE_LEN && code.bytes().all(|b| ALPHABET.contains(&b));
    ok.then_some(code)
}

/// The digest a normalised user code is stored by.
pub fn user_code_digest(normalised: &str) -> Vec<u8> {
    hash_secret(normalised)
}

/// The pending request a user code names, for the `/device` page.
pub async fn pending(
    sigil: &Sigil,
    user_code: &str,
    now: i64,
) -> Result<Option<(DeviceCodeRecord, std::sync::Arc<Client>)>, OAuthError> {
    let Some(code) = normalise_user_code(user_code) else {
        return Ok(None);
    };
    let Some(record) = sigil
        .store
        .pending_device_code(&user_code_digest(&code), now)
        .await?
    else {
        return Ok(None);
    };
    let client = sigil
        .clients
        .get(sigil.store.as_ref(), &record.client_id, now)
        .await?
        .filter(|c| !c.disabled);
    Ok(client.map(|c| (record, c)))
}

fn invalid() -> OAuthError {
    OAuthError::InvalidGrant("the device code is invalid".into())
}

// RFC 8628 §3.4-3.5: the device polls with its device code.
pub async fn device_grant(
    sigil: &Sigil,
    client: &Client,
    params: &Params,
    ctx: Context<'_>,
) -> Result<TokenResponse, OAuthError> {
    let now = ctx.now;
    let device_code = params.require("device_code")?;
    if device_code.len() > 128 {
        return Err(invalid());
    }
    let hash = hash_secret(device_code);
    let store = sigil.store.as_ref();
    let record = store.device_code(&hash).await?.ok_or_else(invalid)?;
    // Bound to the client it was issued to (§3.4): another client learns
    // nothing about it.
    if record.client_id != client.id {
        return Err(invalid());
    }
    if record.spent_at.is_some() {
        return Err(OAuthError::InvalidGrant(
            "the device code was already used".into(),
        ));
    }
    if now >= record.expires_at {
        return Err(OAuthError::ExpiredToken(
            "the device code has expired; start again".into(),
        ));
    }
    match record.status {
        DeviceStatus::Denied => Err(OAuthError::AccessDenied(
            "the user declined the request".into(),
        )),
        DeviceStatus::Pending => {
            let polled = store.poll_device_code(&hash, now).await?;
            match polled {
                Some(p) if p.polled_too_soon => Err(OAuthError::SlowDown(format!(
                    "polling too often; wait at least {} seconds between requests",
                    p.poll_interval
                ))),
                Some(_) => Err(OAuthError::AuthorizationPending(
                    "the user has not yet approved the request".into(),
                )),
                // Decided between the read and the poll: look again.
                None => Box::pin(device_grant(sigil, client, params, ctx)).await,
            }
        }
        DeviceStatus::Approved => {
            let spent = store.spend_device_code(&hash, now).await?.ok_or_else(|| {
                OAuthError::InvalidGrant("the device code was already used".into())
            })?;
            issue(sigil, client, &spent, ctx).await
        }
    }
}

/// The tokens for an approved request: a login session of the approving
/// user, with how they authenticated in the browser.
async fn issue(
    sigil: &Sigil,
    client: &Client,
    record: &DeviceCodeRecord,
    ctx: Context<'_>,
) -> Result<TokenResponse, OAuthError> {
    let now = ctx.now;
    let broken = || OAuthError::ServerError("an approved device code lacks its approval".into());
    let user_id = record.user_id.as_deref().ok_or_else(broken)?;
    let user = sigil
        .store
        .user_by_id(user_id)
        .await?
        .filter(|u| {
            !u.disabled
                && u.sessions_revoked_at
                    .is_none_or(|at| record.decided_at.is_some_and(|d| d > at))
        })
        .ok_or_else(|| {
            OAuthError::InvalidGrant("the user's sessions were ended since the approval".into())
        })?;
    let authn = Authn::stored(
        record.amr.as_deref().unwrap_or_default(),
        record.acr.as_deref().unwrap_or_default(),
    );
    let scope = crate::scope::Scopes::parse(&record.scope)
        .map_err(|e| OAuthError::ServerError(e.to_string()))?;
    let opening = Opening::new(&user, client, &scope, &authn, ctx.jkt());
    let session = start_session_as(sigil, opening, now, None).await?;
    let grant = Grant {
        session: Some(&session.id),
        authn: Some(&authn),
        jkt: ctx.jkt(),
        ..Grant::new(&user.id, &scope)
    };
    let (access_token, claims) = issue_access_token(sigil, client, grant, session.started)?;
    let id_token = if scope.contains("openid") {
        let facts = IdFacts {
            user: &user,
            scope: &scope,
            auth_time: record.auth_time.unwrap_or(session.started),
            nonce: None,
            sid: record.sid.as_deref(),
            authn: &authn,
        };
        Some(id_token(
            sigil,
            client,
            &facts,
            &access_token,
            session.started,
        )?)
    } else {
        None
    };
    let mut response = TokenResponse::new(access_token, claims, now);
    response.refresh_token = session.refresh_token;
    response.id_token = id_token;
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_codes_are_read_however_typed() {
        let code = new_user_code();
        assert_eq!(code.len(), 8);
        assert!(code.bytes().all(|b| ALPHABET.contains(&b)));
        let shown = display(&code);
        assert_eq!(normalise_user_code(&shown).as_deref(), Some(code.as_str()));
        let typed = shown.to_ascii_lowercase().replace('-', " ");
        assert_eq!(normalise_user_code(&typed).as_deref(), Some(code.as_str()));
        assert_eq!(normalise_user_code("BCDF-GHJ"), None);
        assert_eq!(
            normalise_user_code("AEIO-UBCD"),
            None,
            "vowels are not in the alphabet"
        );
    }
}
