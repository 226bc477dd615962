//! JWT access tokens per RFC 9068: header `{alg, kid, typ: "at+jwt"}`, claims
//! `iss sub aud exp iat nbf jti client_id scope`, and for a user's token
//! `sid`, `acr` and `amr` (RFC 9068 §2.2.1).
//!
//! Signing assembles the compact JWS directly with a pre-parsed key (no key
//! parsing per token). Verification pins each `kid` to its own algorithm and
//! never trusts the header's choice (RFC 8725 §3.1); time is checked against
//! the `now` passed in, not the system clock.

use std::collections::HashSet;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use jsonwebtoken::{Algorithm, Validation};
use serde::{Deserialize, Serialize};

use crate::clock::CLOCK_SKEW_LEEWAY;
use crate::keys::{Alg, KeySet, SigningKey};

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessClaims {
    pub iss: String,
    pub sub: String,
    pub aud: String,
    pub exp: i64,
    pub iat: i64,
    pub nbf: i64,
    pub jti: String,
    pub client_id: String,
    /// Space-separated; absent when the token carries no scope.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    /// The login session (refresh-token family) the token was issued in, so
    /// revoking the session revokes its access tokens too.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sid: Option<String>,
    /// How the user authenticated (OIDC `acr`), for a user's token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acr: Option<String>,
    /// RFC 8176 authentication methods, for a user's token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub amr: Option<Vec<String>>,
    /// RFC 9449 §6: the DPoP key the token is bound to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cnf: Option<Cnf>,
    /// RFC 8693 §4.1: who acts on the subject's behalf (a token exchange
    /// with an actor), nesting earlier actors.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub act: Option<serde_json::Value>,
}

/// RFC 7800 confirmation: the key a token is bound to.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cnf {
    /// RFC 9449 §6.1: the RFC 7638 SHA-256 thumbprint of the DPoP key.
    pub jkt: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("the token is malformed")]
    Malformed,
    #[error("the token header is not acceptable: {0}")]
    BadHeader(&'static str),
    #[error("the token was not signed by a key of this issuer")]
    UnknownKey,
    #[error("the token signature is invalid")]
    BadSignature,
    #[error("the token has expired")]
    Expired,
    #[error("the token is not yet valid")]
    NotYetValid,
    #[error("the token was issued by another issuer")]
    WrongIssuer,
    #[error("the token was issued for another audience")]
    WrongAudience,
    #[error("the token has been revoked")]
    Revoked,
    #[error("the token's subject is not an active user")]
    InactiveSubject,
    #[error("the token is bound to a DPoP key: present it with the DPoP scheme and a proof")]
    DpopBound,
    #[error("the token is not bound to a DPoP key: present it as a bearer token")]
    NotDpopBound,
    #[error("signing failed")]
    Signing,
}

/// Produces the compact JWS `header.payload.signature`.
pub fn sign_access_token(key: &SigningKey, claims: &AccessClaims) -> Result<String, TokenError> {
    sign_jws(key, key.header_b64(), claims)
}

/// Signs `claims` under a precomputed protected header of `key`.
pub(super) fn sign_jws(
    key: &SigningKey,
    header_b64: &str,
    claims: &impl Serialize,
) -> Result<String, TokenError> {
    let payload = serde_json::to_vec(claims).map_err(|_| TokenError::Signing)?;
    let mut token = String::with_capacity(header_b64.len() + payload.len() * 4 / 3 + 360);
    token.push_str(header_b64);
    token.push('.');
    B64.encode_string(&payload, &mut token);
    let signature = key
        .sign(token.as_bytes())
        .map_err(|_| TokenError::Signing)?;
    token.push('.');
    B64.encode_string(&signature, &mut token);
    Ok(token)
}

/// Verifies a token against the keyring. `audiences` lists the `aud` values
/// the caller accepts (`None`: any, for introspection on behalf of any
/// resource service).
pub fn verify_access_token(
    keys: &KeySet,
    token: &str,
    issuer: &str,
    audiences: Option<&[&str]>,
    now: i64,
) -> Result<AccessClaims, TokenError> {
    if token.len() > 8 * 1024 || token.split('.').count() != 3 {
        return Err(TokenError::Malformed);
    }
    let header = jsonwebtoken::decode_header(token).map_err(|_| TokenError::Malformed)?;
    // RFC 9068 §4: typ must be at+jwt (the media type form is allowed too).
    let typ_ok = matches!(
        header.typ.as_deref(),
        Some("at+jwt") | Some("application/at+jwt")
    );
    if !typ_ok {
        return Err(TokenError::BadHeader("typ must be at+jwt"));
    }
    // Keys are only ever Sigil's own: refuse header-embedded or remote keys.
    if header.jwk.is_some() || header.jku.is_some() || header.x5u.is_some() || header.x5c.is_some()
    {
        return Err(TokenError::BadHeader(
            "embedded or referenced keys are not accepted",
        ));
    }
    if header.crit.is_some() {
        return Err(TokenError::BadHeader(
            "no critical header extensions are understood",
        ));
    }
    let kid = header.kid.as_deref().ok_or(TokenError::UnknownKey)?;
    let key = keys.verifying_key(kid).ok_or(TokenError::UnknownKey)?;
    let expected = match key.alg {
        Alg::RS256 => Algorithm::RS256,
        Alg::EdDSA => Algorithm::EdDSA,
    };
    if header.alg != expected {
        return Err(TokenError::BadHeader("alg does not match the key"));
    }

    let mut validation = Validation::new(expected);
    validation.validate_exp = false;
    validation.validate_nbf = false;
    validation.validate_aud = false;
    validation.required_spec_claims = HashSet::new();
    let data = jsonwebtoken::decode::<AccessClaims>(token, &key.decoding, &validation).map_err(
        |e| match e.kind() {
            jsonwebtoken::errors::ErrorKind::InvalidSignature => TokenError::BadSignature,
            _ => TokenError::Malformed,
        },
    )?;
    let claims = data.claims;
    if claims.iss != issuer {
        return Err(TokenError::WrongIssuer);
    }
    if !audiences.is_none_or(|list| list.contains(&claims.aud.as_str())) {
        return Err(TokenError::WrongAudience);
    }
    if now >= claims.exp {
        return Err(TokenError::Expired);
    }
    if claims.nbf > now + CLOCK_SKEW_LEEWAY {
        return Err(TokenError::NotYetValid);
    }
    Ok(claims)
}
