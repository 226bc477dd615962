//! Minting an access token for a subject, client and scope.

use super::OAuthError;
use crate::authn::Authn;
use crate::clients::Client;
use crate::scope::Scopes;
use crate::state::Sigil;
use crate::tokens::{AccessClaims, random_b64, sign_access_token};

/// What an access token is issued for: its subject, scope, and for a
/// user's token the session and how the user authenticated.
pub struct Grant<'a> {
    pub subject: &'a str,
    pub scope: &'a Scopes,
    pub session: Option<&'a str>,
    pub authn: Option<&'a Authn>,
}

/// Signs an access token with the client's algorithm (or the default) using
/// the active key. Returns the token and its claims.
pub fn issue_access_token(
    sigil: &Sigil,
    client: &Client,
    grant: Grant<'_>,
    now: i64,
) -> Result<(String, AccessClaims), OAuthError> {
    let Grant {
        subject,
        scope,
        session,
        authn,
    } = grant;
    let alg = client.alg.unwrap_or(sigil.config.default_alg);
    let keys = sigil.keys.current();
    let key = keys
        .signing_key(alg)
        // Only between an interrupted emergency rotation and the scheduler
        // replacing the key (seconds): worth a retry, not a 500.
        .ok_or_else(|| {
            OAuthError::TemporarilyUnavailable(format!("no active {alg} signing key yet"))
        })?;
    // The client's own lifetime, capped at the server's: key retirement and
    // deny-list entries are timed by the server's (see clients::Lifetimes).
    let ttl = client
        .access_token_ttl(sigil.config.access_token_ttl)
        .as_secs() as i64;
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
        acr: authn.map(|a| a.acr.as_str().to_string()),
        amr: authn.map(|a| a.amr.clone()),
    };
    let token =
        sign_access_token(key, &claims).map_err(|e| OAuthError::ServerError(e.to_string()))?;
    Ok((token, claims))
}
