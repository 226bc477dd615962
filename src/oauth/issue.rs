//! Minting an access token for a subject, client and scope, and the token
//! response that carries it.

use serde_json::Value;

use super::{OAuthError, TokenResponse};
use crate::authn::Authn;
use crate::clients::Client;
use crate::scope::Scopes;
use crate::state::Sigil;
use crate::tokens::{AccessClaims, Cnf, random_b64, sign_access_token};

/// What an access token is issued for: its subject, scope, and for a
/// user's token the session and how the user authenticated; the DPoP key
/// it is bound to; and, for a token exchange, who acts, for whom, until
/// when.
pub struct Grant<'a> {
    pub subject: &'a str,
    pub scope: &'a Scopes,
    pub session: Option<&'a str>,
    pub authn: Option<&'a Authn>,
    /// RFC 9449: the thumbprint of the DPoP key the token is bound to.
    pub jkt: Option<&'a str>,
    /// RFC 8693 §4.1: the actor (`act`), for a delegated token.
    pub act: Option<Value>,
    /// The `aud` instead of the client's (a token exchange's target).
    pub audience: Option<&'a str>,
    /// The latest the token may expire (a token exchange's subject token's
    /// `exp`: a derived token never outlives what it came from).
    pub expires_by: Option<i64>,
}

impl<'a> Grant<'a> {
    /// A token for `subject` with `scope`, and nothing else said.
    pub fn new(subject: &'a str, scope: &'a Scopes) -> Grant<'a> {
        Grant {
            subject,
            scope,
            session: None,
            authn: None,
            jkt: None,
            act: None,
            audience: None,
            expires_by: None,
        }
    }
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
        jkt,
        act,
        audience,
        expires_by,
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
    let exp = expires_by.map_or(now + ttl, |by| by.min(now + ttl));
    let claims = AccessClaims {
        iss: sigil.config.issuer.clone(),
        sub: subject.to_string(),
        aud: audience.map(str::to_string).unwrap_or_else(|| {
            client
                .audience
                .clone()
                .unwrap_or_else(|| sigil.config.audience().to_string())
        }),
        exp,
        iat: now,
        nbf: now,
        jti: random_b64::<16>(),
        client_id: client.id.clone(),
        scope: (!scope.is_empty()).then(|| scope.to_string()),
        sid: session.map(str::to_string),
        acr: authn.map(|a| a.acr.as_str().to_string()),
        amr: authn.map(|a| a.amr.clone()),
        cnf: jkt.map(|jkt| Cnf {
            jkt: jkt.to_string(),
        }),
        act,
    };
    let token =
        sign_access_token(key, &claims).map_err(|e| OAuthError::ServerError(e.to_string()))?;
    Ok((token, claims))
}

impl TokenResponse {
    /// RFC 6749 §5.1 for an access token: `token_type` `DPoP` when it is
    /// bound to a key (RFC 9449 §5), else `Bearer`.
    pub fn new(access_token: String, claims: AccessClaims, now: i64) -> TokenResponse {
        TokenResponse {
            token_type: if claims.cnf.is_some() {
                "DPoP"
            } else {
                "Bearer"
            },
            expires_in: (claims.exp - now).max(0) as u64,
            scope: claims.scope.clone(),
            access_token,
            refresh_token: None,
            id_token: None,
            issued_token_type: None,
            claims,
        }
    }
}
