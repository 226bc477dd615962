//! Token revocation, RFC 7009.

use super::{OAuthError, Params};
use crate::clients::Client;
use crate::revocation;
use crate::state::Sigil;
use crate::tokens::{hash_refresh_token, is_refresh_token, verify_access_token};

// RFC 7009 §2.1: token (required), token_type_hint (optional; a hint only,
// the search extends to every type). §2.2: the answer is 200 whether or not
// the token was valid, known or already revoked. A client can revoke only
// its own tokens; for anyone else's, nothing happens.
pub async fn revoke(
    sigil: &Sigil,
    client: &Client,
    params: &Params,
    now: i64,
) -> Result<(), OAuthError> {
    let token = params.require("token")?;
    let store = sigil.store.as_ref();
    let ttl = sigil.config.access_token_ttl;

    if is_refresh_token(token) {
        if let Some((_, family)) = store.refresh_token(&hash_refresh_token(token)).await?
            && family.client_id == client.id
            && family.revoked_at.is_none()
        {
            revocation::revoke_session(store, &family.id, ttl, now).await?;
            sigil.revocations_changed(now).await;
            let detail = serde_json::json!({ "kind": "session", "sid": family.id });
            sigil.audit.record(
                now,
                &format!("client:{}", client.id),
                "token.revoked",
                Some(&family.user_id),
                detail,
            );
        }
        return Ok(());
    }

    let keys = sigil.keys.current();
    if let Ok(claims) = verify_access_token(&keys, token, &sigil.config.issuer, None, now)
        && claims.client_id == client.id
    {
        revocation::revoke_access_token(store, &claims, now).await?;
        sigil.revocations_changed(now).await;
        let detail = serde_json::json!({ "kind": "token", "jti": claims.jti });
        sigil.audit.record(
            now,
            &format!("client:{}", client.id),
            "token.revoked",
            Some(&claims.sub),
            detail,
        );
    }
    Ok(())
}
