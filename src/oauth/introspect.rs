//! Token introspection, RFC 7662.

use serde_json::{Value, json};

use super::{OAuthError, Params};
use crate::clients::Client;
use crate::state::Sigil;
use crate::tokens::{hash_refresh_token, is_refresh_token, verify_access_token};

// RFC 7662 §2.1: the caller authenticates (a confidential client: a public
// one could probe any token). §2.2: an active token's claims; for anything
// else exactly `{"active": false}`, revealing nothing about why.
pub async fn introspect(
    sigil: &Sigil,
    client: &Client,
    params: &Params,
    now: i64,
) -> Result<Value, OAuthError> {
    if client.is_public() {
        return Err(OAuthError::InvalidClient(
            "introspection requires client authentication".into(),
        ));
    }
    let token = params.require("token")?;
    let inactive = json!({ "active": false });

    if is_refresh_token(token) {
        let Some((record, family, user)) = sigil
            .store
            .refresh_session(&hash_refresh_token(token))
            .await?
        else {
            return Ok(inactive);
        };
        // Refresh tokens are bound to their client; others learn nothing.
        let active = family.client_id == client.id
            && user.is_some_and(|u| super::refresh::session_is_live(&u, &family))
            && family.revoked_at.is_none()
            && record.spent_at.is_none()
            && now < record.expires_at;
        if !active {
            return Ok(inactive);
        }
        let mut body = json!({
            "active": true,
            "token_type": "refresh_token",
            "client_id": family.client_id,
            "sub": family.user_id,
            "iat": record.issued_at,
            "exp": record.expires_at,
            "iss": sigil.config.issuer,
            "sid": family.id,
        });
        if !record.scope.is_empty() {
            body["scope"] = json!(record.scope);
        }
        if let Some(jkt) = &family.dpop_jkt {
            body["cnf"] = json!({ "jkt": jkt });
        }
        return Ok(body);
    }

    let keys = sigil.keys.current();
    let Ok(claims) = verify_access_token(&keys, token, &sigil.config.issuer, None, now) else {
        return Ok(inactive);
    };
    if sigil
        .deny_list
        .is_revoked(sigil.store.as_ref(), &claims, now)
        .await?
    {
        return Ok(inactive);
    }
    let mut body =
        serde_json::to_value(&claims).map_err(|e| OAuthError::ServerError(e.to_string()))?;
    body["active"] = json!(true);
    // RFC 9449 §6.2: a bound token says so, with its `cnf` (in the claims).
    body["token_type"] = json!(if claims.cnf.is_some() {
        "DPoP"
    } else {
        "Bearer"
    });
    Ok(body)
}
