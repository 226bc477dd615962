//! OpenID Connect ID tokens (OIDC Core §2, §3.1.3.6): header `{alg, kid,
//! typ: "JWT"}`, claims `iss sub aud exp iat auth_time nonce azp sid
//! at_hash acr amr`, and the scopes' profile claims. Signed by the same keyring as access tokens; their `typ`
//! keeps them from ever passing as one (see `access::verify_access_token`).

use std::collections::HashSet;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use jsonwebtoken::{Algorithm, Validation};
use serde::{Deserialize, Serialize};

use super::TokenError;
use super::access::sign_jws;
use crate::keys::{Alg, KeySet, SigningKey};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdClaims {
    pub iss: String,
    pub sub: String,
    /// The client id (a single audience, so a string).
    pub aud: String,
    pub exp: i64,
    pub iat: i64,
    pub auth_time: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nonce: Option<String>,
    pub azp: String,
    /// The browser session (for RP-initiated logout).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sid: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at_hash: Option<String>,
    /// OIDC Core §2: the authentication context class the sign-in met.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acr: Option<String>,
    /// OIDC Core §2, RFC 8176: how the user authenticated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub amr: Option<Vec<String>>,
    /// OIDC Core §5.4: with the `profile` scope, as UserInfo has it (an
    /// app without a UserInfo call, a device among them, still has a name
    /// to show).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preferred_username: Option<String>,
    /// With the `email` scope.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email_verified: Option<bool>,
}

pub fn sign_id_token(key: &SigningKey, claims: &IdClaims) -> Result<String, TokenError> {
    sign_jws(key, key.id_header_b64(), claims)
}

/// OIDC Core §3.1.3.6 `at_hash`: the left half of the hash of the access
/// token's ASCII, base64url. The hash is the one of the ID token's `alg`:
/// SHA-256 for RS256, SHA-512 for EdDSA over Ed25519 (the OpenID errata's
/// reading, which the certified libraries follow).
pub fn at_hash(alg: Alg, access_token: &str) -> String {
    let digest = match alg {
        Alg::RS256 => ring::digest::digest(&ring::digest::SHA256, access_token.as_bytes()),
        Alg::EdDSA => ring::digest::digest(&ring::digest::SHA512, access_token.as_bytes()),
    };
    let bytes = digest.as_ref();
    B64.encode(&bytes[..bytes.len() / 2])
}

/// Checks an `id_token_hint` (RP-Initiated Logout 1.0 §2): one of this
/// issuer's ID tokens, by its signature and `iss`. Expiry is not checked:
/// the spec asks providers to accept an expired hint, since a user may sign
/// out long after signing in.
pub fn verify_id_token_hint(
    keys: &KeySet,
    token: &str,
    issuer: &str,
) -> Result<IdClaims, TokenError> {
    if token.len() > 8 * 1024 || token.split('.').count() != 3 {
        return Err(TokenError::Malformed);
    }
    let header = jsonwebtoken::decode_header(token).map_err(|_| TokenError::Malformed)?;
    if header.typ.as_deref() != Some("JWT") {
        return Err(TokenError::BadHeader("typ must be JWT"));
    }
    if header.jwk.is_some() || header.jku.is_some() || header.x5u.is_some() || header.x5c.is_some()
    {
        return Err(TokenError::BadHeader(
            "embedded or referenced keys are not accepted",
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
    let claims = jsonwebtoken::decode::<IdClaims>(token, &key.decoding, &validation)
        .map_err(|e| match e.kind() {
            jsonwebtoken::errors::ErrorKind::InvalidSignature => TokenError::BadSignature,
            _ => TokenError::Malformed,
        })?
        .claims;
    if claims.iss != issuer {
        return Err(TokenError::WrongIssuer);
    }
    Ok(claims)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn at_hash_matches_the_oidc_core_example() {
        // OIDC Core appendix A.3/A.4: this access token's at_hash under RS256.
        assert_eq!(
            at_hash(Alg::RS256, "jHkWEdUXMU1BwAsC4vtUsZwnNvTIxEl0z9K3vx5KF0Y"),
            "77QmUPtjPfzWtF2AnpK9RQ"
        );
    }
}
