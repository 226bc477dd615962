//! Browser sessions: what the SSO cookie names.
//!
//! The cookie holds 256 random bits; the store keeps only their SHA-256,
//! so a database leak signs no one in. A session is live while it has not
//! been ended (sign-out, the account page), is within its idle and
//! absolute lifetimes, and its user is enabled and has not revoked all
//! sessions since it began ("log out everywhere", a password change, an
//! admin revocation or disable all set `sessions_revoked_at`).

use crate::authn::Authn;
use crate::store::{BrowserSessionRecord, Store, StoreResult, UserRecord};
use crate::tokens::{hash_secret, random_b64};

use super::SignInConfig;

/// Activity is written back at most this often (seconds), so that a busy
/// session does not cost a write per request.
const TOUCH_EVERY: i64 = 60;

/// A session that is live now, with its user.
#[derive(Debug, Clone)]
pub struct LiveSession {
    pub sid: String,
    pub user: UserRecord,
    /// When the user last authenticated (OIDC `auth_time`).
    pub auth_time: i64,
    /// How they authenticated then.
    pub authn: Authn,
}

/// A new session's cookie secret and the record to store for it. `at` is
/// when the user began authenticating (a password checked before a second
/// factor): the session's `auth_time`.
pub fn mint(
    user: &UserRecord,
    user_agent: &str,
    authn: &Authn,
    at: i64,
    config: &SignInConfig,
    now: i64,
) -> (String, BrowserSessionRecord) {
    let secret = random_b64::<32>();
    let record = BrowserSessionRecord {
        id_hash: hash_secret(&secret),
        sid: random_b64::<16>(),
        user_id: user.id.clone(),
        auth_time: at.min(now),
        created_at: now,
        last_seen_at: now,
        expires_at: now + config.session_absolute_ttl.as_secs() as i64,
        ended_at: None,
        user_agent: user_agent.chars().take(200).collect(),
        amr: authn.amr_text(),
        acr: authn.acr.as_str().to_string(),
    };
    (secret, record)
}

/// The live session the cookie secret names, if any.
pub async fn find_live(
    store: &dyn Store,
    config: &SignInConfig,
    secret: &str,
    now: i64,
) -> StoreResult<Option<LiveSession>> {
    if secret.len() > 64 {
        return Ok(None);
    }
    let hash = hash_secret(secret);
    let Some(session) = store.browser_session(&hash).await? else {
        return Ok(None);
    };
    let idle = config.session_idle_ttl.as_secs() as i64;
    if session.ended_at.is_some() || now >= session.expires_at || now >= session.last_seen_at + idle
    {
        return Ok(None);
    }
    let Some(user) = store.user_by_id(&session.user_id).await? else {
        return Ok(None);
    };
    if !is_live_for(&user, &session) {
        return Ok(None);
    }
    if now - session.last_seen_at >= TOUCH_EVERY {
        store.touch_browser_session(&hash, now).await?;
    }
    Ok(Some(LiveSession {
        authn: Authn::stored(&session.amr, &session.acr),
        sid: session.sid,
        user,
        auth_time: session.auth_time,
    }))
}

/// Whether the user still allows this session: enabled, and no revocation
/// of all their sessions at or after it began. (A revocation in the same
/// second as a sign-in ends that session too: the safe side.)
pub fn is_live_for(user: &UserRecord, session: &BrowserSessionRecord) -> bool {
    !user.disabled
        && user
            .sessions_revoked_at
            .is_none_or(|revoked| session.created_at > revoked)
}
