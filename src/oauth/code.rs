//! The authorization code grant at the token endpoint: RFC 6749 §4.1.3,
//! RFC 7636 §4.6 (PKCE), OIDC Core §3.1.3 (the ID token).
//!
//! ```text
//!  code ──► spend atomically (recording the family it will open)
//!     already spent ──► replay: revoke what the first exchange issued, invalid_grant
//!     unknown/expired ──► invalid_grant
//!  spent ──► same client? same redirect_uri? PKCE verifier matches (or none on either side)?
//!        ──► user still enabled, no "log out everywhere" since? ──► open the family,
//!            access token (+ refresh token) (+ ID token when scope has openid)
//! ```

use super::refresh::{Opening, start_session_as};
use super::{Context, Grant, OAuthError, Params, TokenResponse, issue_access_token};
use crate::authn::Authn;
use crate::clients::Client;
use crate::keys::Alg;
use crate::revocation;
use crate::scope::Scopes;
use crate::state::Sigil;
use crate::store::{AuthCodeRecord, CodeSpend, UserRecord};
use crate::tokens::{IdClaims, at_hash, hash_secret, sign_id_token};

fn invalid(why: &str) -> OAuthError {
    OAuthError::InvalidGrant(format!("the authorization code is {why}"))
}

pub async fn code_grant(
    sigil: &Sigil,
    client: &Client,
    params: &Params,
    ctx: Context<'_>,
) -> Result<TokenResponse, OAuthError> {
    let now = ctx.now;
    let code = params.require("code")?;
    let redirect_uri = params.require("redirect_uri")?;
    let verifier = params.get("code_verifier");
    if code.len() > 128 {
        return Err(invalid("invalid"));
    }
    let family_id = uuid::Uuid::new_v4().to_string();
    let record = match sigil
        .store
        .spend_authorization_code(&hash_secret(code), &family_id, now)
        .await?
    {
        CodeSpend::Spent(record) => record,
        CodeSpend::NotFound => return Err(invalid("invalid or expired")),
        CodeSpend::AlreadySpent(record) => return Err(replayed(sigil, client, &record, now).await),
    };
    // Checked after spending, so a code tried with the wrong client,
    // redirect URI or verifier is burnt, never left for a second guess.
    if record.client_id != client.id {
        return Err(invalid("invalid"));
    }
    if record.redirect_uri != redirect_uri {
        return Err(OAuthError::InvalidGrant(
            "redirect_uri differs from the one in the authorization request".into(),
        ));
    }
    match (&record.code_challenge, verifier) {
        (Some(challenge), Some(verifier)) if super::pkce::verifies(challenge, verifier) => {}
        (Some(_), Some(_)) => {
            return Err(OAuthError::InvalidGrant(
                "code_verifier does not match the code_challenge".into(),
            ));
        }
        (Some(_), None) => {
            return Err(OAuthError::InvalidGrant("code_verifier is required".into()));
        }
        // RFC 9700 §2.1.1: a verifier for a code issued without a
        // challenge is a downgrade attempt.
        (None, Some(_)) => {
            return Err(OAuthError::InvalidGrant(
                "code_verifier sent for a code issued without code_challenge".into(),
            ));
        }
        (None, None) => {}
    }
    // RFC 9449 §10: a code bound to a DPoP key (`dpop_jkt`) is exchanged
    // only with a proof by that key.
    if let Some(bound) = &record.dpop_jkt
        && ctx.jkt() != Some(bound.as_str())
    {
        return Err(OAuthError::InvalidGrant(
            "the authorization code is bound to a DPoP key this request did not prove".into(),
        ));
    }
    let user = sigil
        .store
        .user_by_id(&record.user_id)
        .await?
        .filter(|u| {
            !u.disabled
                && u.sessions_revoked_at
                    .is_none_or(|at| record.created_at > at)
        })
        .ok_or_else(|| invalid("no longer valid: the user's sessions were ended"))?;
    let scope = Scopes::parse(&record.scope).map_err(|e| OAuthError::ServerError(e.to_string()))?;

    let authn = Authn::stored(&record.amr, &record.acr);
    let opening = Opening {
        id: family_id,
        ..Opening::new(&user, client, &scope, &authn, ctx.jkt())
    };
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
            auth_time: record.auth_time,
            nonce: record.nonce.as_deref(),
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

/// RFC 6749 §4.1.2: a code used twice means it leaked; what its first
/// exchange issued is revoked (the refresh family and, through its `sid`,
/// the access tokens).
async fn replayed(sigil: &Sigil, client: &Client, record: &AuthCodeRecord, now: i64) -> OAuthError {
    if let Some(family) = &record.family_id {
        let ttl = sigil.config.access_token_ttl;
        if let Err(e) = revocation::revoke_session(sigil.store.as_ref(), family, ttl, now).await {
            return e.into();
        }
        sigil.revocations_changed(now).await;
    }
    sigil.audit.record(
        now,
        &format!("client:{}", client.id),
        "code.reuse_detected",
        Some(&record.user_id),
        serde_json::json!({ "sid": record.family_id, "code_client_id": record.client_id }),
    );
    invalid("already used; the tokens issued for it are revoked")
}

/// What an ID token says of the sign-in behind it.
pub struct IdFacts<'a> {
    pub user: &'a UserRecord,
    /// The granted scope (which profile claims to include).
    pub scope: &'a Scopes,
    pub auth_time: i64,
    pub nonce: Option<&'a str>,
    /// The browser session it happened in.
    pub sid: Option<&'a str>,
    pub authn: &'a Authn,
}

/// OIDC Core §2 and §3.1.3.6. RS256 unless the client chose an algorithm.
pub fn id_token(
    sigil: &Sigil,
    client: &Client,
    facts: &IdFacts<'_>,
    access_token: &str,
    now: i64,
) -> Result<String, OAuthError> {
    let alg = client.alg.unwrap_or(Alg::RS256);
    let keys = sigil.keys.current();
    let key = keys.signing_key(alg).ok_or_else(|| {
        OAuthError::TemporarilyUnavailable(format!("no active {alg} signing key yet"))
    })?;
    let ttl = client
        .access_token_ttl(sigil.config.access_token_ttl)
        .as_secs() as i64;
    let claims = IdClaims {
        iss: sigil.config.issuer.clone(),
        sub: facts.user.id.clone(),
        aud: client.id.clone(),
        exp: now + ttl,
        iat: now,
        auth_time: facts.auth_time,
        nonce: facts.nonce.map(str::to_string),
        azp: client.id.clone(),
        sid: facts.sid.map(str::to_string),
        at_hash: Some(at_hash(alg, access_token)),
        acr: Some(facts.authn.acr.as_str().to_string()),
        amr: Some(facts.authn.amr.clone()),
        preferred_username: facts
            .scope
            .contains("profile")
            .then(|| facts.user.username.clone()),
        email: facts
            .scope
            .contains("email")
            .then(|| facts.user.email.clone()),
        // Sigil does not verify addresses (as UserInfo says).
        email_verified: facts.scope.contains("email").then_some(false),
    };
    sign_id_token(key, &claims).map_err(|e| OAuthError::ServerError(e.to_string()))
}
