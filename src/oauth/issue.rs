//! Minting an access token for a subject, client and scope.

use super::OAuthError;
use crate::clients::Client;
use crate::scope::Scopes;
use crate::state::Sigil;
use crate::tokens::{AccessClaims, random_b64, sign_access_token};

/// Signs an access token with the client's algorithm (or the default) using
/// the active key. Returns the token and its claims.
pub fn issue_access_token(
    sigil: &Sigil,
    subject: &str,
    client: &Client,
    scope: &Scopes,
    session: Option<&str>,
    now: i64,
) -> Result<(String, AccessClaims), OAuthError> {
    let alg = client.alg.unwrap_or(sigil.config.default_alg);
    let keys = sigil.keys.current();
    let key = keys
        .signing_key(alg)
        // Only between an interrupted emergency rotation and the scheduler
        // replacing the key (seconds): worth a retry, not a 500.
        .ok_or_else(|| {
            OAuthError::TemporarilyUnavailable(format!("no active {alg} signing key yet"))
        })?;
    let ttl = sigil.config.access_token_ttl.as_secs() as i64;
    let claims = AccessClaims {
        iss: sigil.config.issuer.clone(),
        sub: subject.to_string(),
        aud: client
            .audience
            .clone()
            .unwrap_or_else(|| sigil.config.audience().to_string()),
        exp: now + ttl,
        iat: now,
        nbf: now,
        jti: random_b64::<16>(),
        client_id: client.id.clone(),
        scope: (!scope.is_empty()).then(|| scope.to_string()),
        sid: session.map(str::to_string),
    };
    let token =
        sign_access_token(key, &claims).map_err(|e| OAuthError::ServerError(e.to_string()))?;
    Ok((token, claims))
}
