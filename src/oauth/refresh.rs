//! Refreshing an access token, RFC 6749 §6, with rotation and reuse
//! detection per RFC 9700 §4.14.2.
//!
//! ```text
//!  presented token T ──► spent? ──no──► expired? ──► spend T atomically, store T' = HMAC(K, T)
//!                          │                            └─ lost the race ─┐
//!                          └─yes──► within the grace window and T' matches? ──yes──► answer T' again (retry)
//!                                                   └─no──► reuse: revoke the whole family
//! ```

use super::{Context, Grant, OAuthError, Params, TokenResponse, issue_access_token};
use crate::authn::Authn;
use crate::clients::{Client, GrantType};
use crate::revocation;
use crate::scope::Scopes;
use crate::state::Sigil;
use crate::store::{FamilyRecord, RefreshRecord, SpendOutcome, StoreError, UserRecord};
use crate::tokens::{
    hash_refresh_token, is_refresh_token, mint_refresh_token, successor_refresh_token,
};

/// A login session just opened.
pub struct Session {
    /// The family id: the `sid` of every token issued in the session.
    pub id: String,
    /// Its first refresh token, when the client may refresh.
    pub refresh_token: Option<String>,
    /// When it started: `now`, or the user's last revocation of all
    /// sessions if that committed meanwhile (see `Store::create_family`).
    /// Tokens issued at its start are dated then.
    pub started: i64,
}

/// Opens a login session: a new refresh-token family and, when the client
/// may refresh, its first token. A client that may not refresh still gets a
/// session, short-lived like its access token, so that every token a user
/// holds names the session it belongs to (see `revocation::revoke_user`).
/// `password_hash` is the hash the login was checked against: if the
/// password changed meanwhile, no session opens.
pub async fn start_session(
    sigil: &Sigil,
    opening: Opening<'_>,
    now: i64,
    password_hash: Option<&str>,
) -> Result<Session, OAuthError> {
    start_session_as(sigil, opening, now, password_hash).await
}

/// A login session about to open: its family id (chosen by the caller, as
/// the code grant records it on the code before the family exists), whose
/// it is, how the user authenticated, and the DPoP key of the request that
/// opened it.
pub struct Opening<'a> {
    pub id: String,
    pub user: &'a UserRecord,
    pub client: &'a Client,
    pub scope: &'a Scopes,
    pub authn: &'a Authn,
    /// The thumbprint of the request's DPoP key, if it had one.
    pub jkt: Option<&'a str>,
}

impl<'a> Opening<'a> {
    /// An opening with a new family id.
    pub fn new(
        user: &'a UserRecord,
        client: &'a Client,
        scope: &'a Scopes,
        authn: &'a Authn,
        jkt: Option<&'a str>,
    ) -> Opening<'a> {
        Opening {
            id: uuid::Uuid::new_v4().to_string(),
            user,
            client,
            scope,
            authn,
            jkt,
        }
    }
}

/// [`start_session`] of an [`Opening`].
pub async fn start_session_as(
    sigil: &Sigil,
    opening: Opening<'_>,
    now: i64,
    password_hash: Option<&str>,
) -> Result<Session, OAuthError> {
    let Opening {
        id,
        user,
        client,
        scope,
        authn,
        jkt,
    } = opening;
    let config = &sigil.config;
    let refreshable = client.allows(GrantType::RefreshToken);
    let lifetime = if refreshable {
        // The client's own login lifetime, at most the server's.
        client.refresh_token_ttl(config.refresh_absolute_ttl)
    } else {
        client.access_token_ttl(config.access_token_ttl)
    };
    let family = FamilyRecord {
        id,
        user_id: user.id.clone(),
        client_id: client.id.clone(),
        scope: scope.to_string(),
        created_at: now,
        expires_at: now + lifetime.as_secs() as i64,
        revoked_at: None,
        amr: Some(authn.amr_text()),
        acr: Some(authn.acr.as_str().to_string()),
        // RFC 9449 §5: a public client's refresh tokens are bound to its
        // DPoP key (a confidential client's are bound by its credentials).
        dpop_jkt: jkt.filter(|_| client.is_public()).map(str::to_string),
    };
    let token = refreshable.then(mint_refresh_token);
    let first = token.as_ref().map(|token| RefreshRecord {
        hash: hash_refresh_token(token),
        family_id: family.id.clone(),
        scope: family.scope.clone(),
        issued_at: now,
        expires_at: idle_expiry(sigil, &family, now),
        spent_at: None,
        successor_hash: None,
    });
    match sigil
        .store
        .create_family(&family, first.as_ref(), password_hash)
        .await
    {
        Ok(started) => Ok(Session {
            id: family.id,
            refresh_token: token,
            started,
        }),
        // Disabled, deleted or given a new password since the check.
        Err(StoreError::NotFound) => Err(OAuthError::InvalidGrant(
            "the username or password is incorrect".into(),
        )),
        Err(e) => Err(e.into()),
    }
}

/// Whether a session of `user` is still live: the user is enabled and the
/// family is not revoked. A revocation of all the user's sessions marks
/// each family it covers (`Store::revoke_families`), and a family created
/// after it starts no earlier than it, so a session begun after it is live
/// even within the same second. (A family that started before the user's
/// last revocation yet escaped it could only have been left by an older
/// Sigil, which did not order the two; it is dead.)
pub fn session_is_live(user: &UserRecord, family: &FamilyRecord) -> bool {
    !user.disabled
        && family.revoked_at.is_none()
        && user
            .sessions_revoked_at
            .is_none_or(|at| family.created_at >= at)
}

fn idle_expiry(sigil: &Sigil, family: &FamilyRecord, now: i64) -> i64 {
    (now + sigil.config.refresh_idle_ttl.as_secs() as i64).min(family.expires_at)
}

fn invalid(why: &str) -> OAuthError {
    OAuthError::InvalidGrant(format!("the refresh token is {why}"))
}

// RFC 6749 §6: grant_type=refresh_token, refresh_token, optional scope
// (which may not exceed the scope originally granted).
pub async fn refresh_grant(
    sigil: &Sigil,
    client: &Client,
    params: &Params,
    ctx: Context<'_>,
) -> Result<TokenResponse, OAuthError> {
    let now = ctx.now;
    let presented = params.require("refresh_token")?;
    if !is_refresh_token(presented) {
        return Err(invalid("invalid"));
    }
    let hash = hash_refresh_token(presented);
    let Some((token, family, user)) = sigil.store.refresh_session(&hash).await? else {
        return Err(invalid("invalid"));
    };
    // RFC 6749 §6 / RFC 9700 §4.14: bound to the client it was issued to.
    // Another client's attempt spends nothing.
    if family.client_id != client.id {
        return Err(invalid("invalid"));
    }
    if family.revoked_at.is_some() {
        return Err(invalid("revoked"));
    }
    // RFC 9449 §5: a bound refresh token needs a proof by the same key;
    // checked before anything is spent.
    if let Some(bound) = &family.dpop_jkt {
        match ctx.jkt() {
            Some(jkt) if jkt == bound => {}
            Some(_) => {
                return Err(OAuthError::InvalidGrant(
                    "the refresh token is bound to another DPoP key".into(),
                ));
            }
            None => {
                return Err(OAuthError::InvalidDpopProof(
                    "the refresh token is bound to a DPoP key: send a proof made with it".into(),
                ));
            }
        }
    }
    let granted =
        Scopes::parse(&family.scope).map_err(|e| OAuthError::ServerError(e.to_string()))?;
    let scope = match params.get("scope") {
        None => granted.clone(),
        Some(text) => {
            let asked = Scopes::parse(text).map_err(|e| OAuthError::InvalidScope(e.to_string()))?;
            if !asked.is_subset_of(&granted) {
                return Err(OAuthError::InvalidScope(
                    "a refresh may narrow the granted scope, never widen it".into(),
                ));
            }
            asked
        }
    };
    if user.is_none_or(|u| !session_is_live(&u, &family)) {
        return Err(invalid("revoked"));
    }

    let successor = successor_refresh_token(sigil.keys.kek().refresh_mac(), presented);
    let successor_record = RefreshRecord {
        hash: hash_refresh_token(&successor),
        family_id: family.id.clone(),
        // RFC 6749 §6: the new refresh token's scope is the presented one's;
        // only the access token is narrowed.
        scope: token.scope.clone(),
        issued_at: now,
        expires_at: idle_expiry(sigil, &family, now),
        spent_at: None,
        successor_hash: None,
    };

    let outcome = match token.spent_at {
        Some(_) => SpendOutcome::AlreadySpent(token),
        None if now >= token.expires_at => return Err(invalid("expired")),
        None => {
            sigil
                .store
                .spend_refresh_token(&hash, &successor_record, now)
                .await?
        }
    };
    let scope = match outcome {
        SpendOutcome::Spent => scope,
        SpendOutcome::NotFound => return Err(invalid("invalid")),
        SpendOutcome::AlreadySpent(spent) => {
            let grace = sigil.config.refresh_reuse_grace.as_secs() as i64;
            let within_grace = spent.spent_at.is_some_and(|at| now - at <= grace);
            // A retry is only plausible while the successor is unused: once
            // it has been spent the client evidently got the first answer.
            let successor_unused = within_grace
                && sigil
                    .store
                    .refresh_token(&successor_record.hash)
                    .await?
                    .is_some_and(|(next, fam)| next.spent_at.is_none() && fam.revoked_at.is_none());
            if !successor_unused {
                // RFC 9700 §4.14.2: a spent token presented again means two
                // parties hold it. Revoke the family; both must log in again.
                revocation::revoke_session(
                    sigil.store.as_ref(),
                    &family.id,
                    sigil.config.access_token_ttl,
                    now,
                )
                .await?;
                sigil.revocations_changed(now).await;
                metrics::counter!(crate::metrics::REFRESH_REUSE).increment(1);
                sigil.audit.record(
                    now,
                    &format!("client:{}", client.id),
                    "refresh.reuse_detected",
                    Some(&family.user_id),
                    serde_json::json!({ "sid": family.id }),
                );
                tracing::warn!(
                    event = "refresh.reuse_detected",
                    client_id = %client.id,
                    family_id = %family.id,
                    "a spent refresh token was presented again; its family is revoked"
                );
                return Err(invalid("revoked"));
            }
            // A retry (or a concurrent twin) of the refresh that spent it:
            // the same successor again.
            scope
        }
    };

    // A family from before Sigil recorded how logins were made says nothing.
    let authn = family
        .amr
        .as_deref()
        .zip(family.acr.as_deref())
        .map(|(amr, acr)| Authn::stored(amr, acr));
    let grant = Grant {
        session: Some(&family.id),
        authn: authn.as_ref(),
        jkt: ctx.jkt(),
        ..Grant::new(&family.user_id, &scope)
    };
    let (access_token, claims) = issue_access_token(sigil, client, grant, now)?;
    let mut response = TokenResponse::new(access_token, claims, now);
    response.refresh_token = Some(successor);
    Ok(response)
}
