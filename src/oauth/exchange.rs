//! Token exchange, RFC 8693: a service that received a user's access
//! token trades it for a narrower one addressed to the next service, for
//! the same user, naming itself as actor.
//!
//! ```text
//!  service A (confidential client, token-exchange grant)
//!    subject_token = the user's token, addressed to A (its aud is A's client id)
//!    actor_token   = A's own token (optional: delegation, `act`)
//!    audience      = B (one of A's exchange_audiences)   scope ⊆ the subject's
//!  ──► new token: sub = the user, aud = B, client_id = A, scope narrowed,
//!      sid/acr/amr kept, act = {sub: A, act: <earlier actors>},
//!      exp ≤ the subject token's, bound to A's DPoP key if it sent a proof
//! ```

use serde_json::json;

use super::{Context, Grant, OAuthError, Params, TokenResponse, issue_access_token};
use crate::authn::Authn;
use crate::clients::Client;
use crate::scope::Scopes;
use crate::state::Sigil;
use crate::tokens::{AccessClaims, verify_access_token};

/// RFC 8693 §3: the token type of a Sigil access token.
pub const ACCESS_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:access_token";
const JWT_TYPE: &str = "urn:ietf:params:oauth:token-type:jwt";

// RFC 8693 §2.1-2.2.
pub async fn exchange_grant(
    sigil: &Sigil,
    client: &Client,
    params: &Params,
    ctx: Context<'_>,
) -> Result<TokenResponse, OAuthError> {
    let now = ctx.now;
    if client.is_public() {
        return Err(OAuthError::UnauthorizedClient(
            "a public client cannot exchange tokens".into(),
        ));
    }
    if let Some(wanted) = params.get("requested_token_type")
        && wanted != ACCESS_TOKEN_TYPE
        && wanted != JWT_TYPE
    {
        return Err(OAuthError::InvalidRequest(format!(
            "Sigil issues access tokens only ({ACCESS_TOKEN_TYPE})"
        )));
    }
    let subject = presented(sigil, params, "subject_token", now).await?;
    // The subject token must have been meant for the client exchanging it:
    // a service exchanges what it was sent, not what it came across.
    if subject.aud != client.id {
        return Err(OAuthError::InvalidGrant(
            "the subject token is not addressed to this client (its aud must be the client id)"
                .into(),
        ));
    }
    let actor = match params.get("actor_token") {
        None if params.get("actor_token_type").is_some() => {
            return Err(OAuthError::InvalidRequest(
                "actor_token_type without actor_token".into(),
            ));
        }
        None => None,
        Some(_) => {
            let actor = presented(sigil, params, "actor_token", now).await?;
            // The actor is the client itself: its own token, not another's.
            if actor.client_id != client.id {
                return Err(OAuthError::InvalidGrant(
                    "the actor token was not issued to this client".into(),
                ));
            }
            Some(actor)
        }
    };
    let audience = target(client, params)?;
    let granted = Scopes::parse(subject.scope.as_deref().unwrap_or_default())
        .map_err(|e| OAuthError::InvalidGrant(e.to_string()))?;
    let scope = match params.get("scope") {
        None => granted,
        Some(text) => {
            let asked = Scopes::parse(text).map_err(|e| OAuthError::InvalidScope(e.to_string()))?;
            if !asked.is_subset_of(&granted) {
                return Err(OAuthError::InvalidScope(
                    "an exchange may narrow the subject token's scope, never widen it".into(),
                ));
            }
            asked
        }
    };
    // RFC 8693 §4.1: the actor, with earlier actors nested inside.
    let act = actor.as_ref().map(|a| {
        let mut act = json!({ "sub": a.sub, "client_id": a.client_id });
        if let Some(earlier) = &subject.act {
            act["act"] = earlier.clone();
        }
        act
    });
    let authn = subject
        .amr
        .as_ref()
        .zip(subject.acr.as_deref())
        .map(|(amr, acr)| Authn::stored(&amr.join(" "), acr));
    let grant = Grant {
        session: subject.sid.as_deref(),
        authn: authn.as_ref(),
        jkt: ctx.jkt(),
        act: act.clone().or_else(|| subject.act.clone()),
        audience: Some(&audience),
        // A derived token never outlives the token it came from.
        expires_by: Some(subject.exp),
        ..Grant::new(&subject.sub, &scope)
    };
    let (access_token, claims) = issue_access_token(sigil, client, grant, now)?;
    sigil.audit.record(
        now,
        &format!("client:{}", client.id),
        "token.exchanged",
        Some(&subject.sub),
        json!({
            "subject_jti": subject.jti,
            "subject_client_id": subject.client_id,
            "actor": actor.as_ref().map(|a| &a.sub),
            "audience": audience,
            "scope": claims.scope,
            "jti": claims.jti,
        }),
    );
    let mut response = TokenResponse::new(access_token, claims, now);
    response.issued_token_type = Some(ACCESS_TOKEN_TYPE);
    Ok(response)
}

/// A subject or actor token: a live Sigil access token (any audience),
/// not revoked, of the type its `…_token_type` parameter says.
async fn presented(
    sigil: &Sigil,
    params: &Params,
    name: &str,
    now: i64,
) -> Result<AccessClaims, OAuthError> {
    let token = params.require(name)?;
    let kind = params.require(&format!("{name}_type"))?;
    if kind != ACCESS_TOKEN_TYPE && kind != JWT_TYPE {
        return Err(OAuthError::InvalidRequest(format!(
            "{name}_type must be {ACCESS_TOKEN_TYPE}"
        )));
    }
    let claims = verify_access_token(
        &sigil.keys.current(),
        token,
        &sigil.config.issuer,
        None,
        now,
    )
    .map_err(|e| OAuthError::InvalidGrant(format!("the {name} is not valid: {e}")))?;
    if sigil
        .deny_list
        .is_revoked(sigil.store.as_ref(), &claims, now)
        .await?
    {
        return Err(OAuthError::InvalidGrant(format!("the {name} is revoked")));
    }
    Ok(claims)
}

/// The audience asked for (`audience`, or `resource`, RFC 8693 §2.1),
/// which must be one the client may target.
fn target(client: &Client, params: &Params) -> Result<String, OAuthError> {
    let audience = params.get("audience");
    let resource = params.get("resource");
    let wanted = match (audience, resource) {
        (Some(a), Some(r)) if a != r => {
            return Err(OAuthError::InvalidTarget(
                "audience and resource name different targets".into(),
            ));
        }
        (Some(a), _) => a,
        (None, Some(r)) => r,
        (None, None) => {
            return Err(OAuthError::InvalidRequest(
                "audience (or resource) is required: the service the new token is for".into(),
            ));
        }
    };
    if !client.exchange_audiences.iter().any(|a| a == wanted) {
        return Err(OAuthError::InvalidTarget(format!(
            "this client may not ask for tokens for {wanted:?}"
        )));
    }
    Ok(wanted.to_string())
}
