//! How a client proves who it is (RFC 6749 §2.3): no credential (a public
//! client), a shared secret, or a JWT signed with one of its own keys
//! (`private_key_jwt`, RFC 7523 §2.2, OIDC Core §9), for which Sigil
//! keeps only public keys: a JWKS given inline or a `jwks_uri` it fetches.

use jsonwebtoken::jwk::JwkSet;

/// A client's authentication method.
#[derive(Debug, Clone)]
pub enum AuthMethod {
    /// A public client: `client_id` alone.
    None,
    /// A shared secret, by HTTP Basic or in the form.
    Secret,
    /// A signed assertion, verified with these keys.
    PrivateKeyJwt(ClientKeys),
}

impl AuthMethod {
    /// The `token_endpoint_auth_method` name (RFC 7591 §2). A secret
    /// client may use `client_secret_post` too.
    pub fn as_str(&self) -> &'static str {
        match self {
            AuthMethod::None => "none",
            AuthMethod::Secret => "client_secret_basic",
            AuthMethod::PrivateKeyJwt(_) => "private_key_jwt",
        }
    }
}

/// Where a `private_key_jwt` client's public keys are.
#[derive(Debug, Clone)]
pub enum ClientKeys {
    /// Registered with the client (`--jwks-file`).
    Inline(JwkSet),
    /// Fetched from the client's `jwks_uri` and cached (`jwks_cache`).
    Uri(String),
}

/// The most keys an inline JWKS may hold.
const MAX_KEYS: usize = 16;

/// Parses and checks a client's JWKS: public keys of the kinds the
/// assertions may be signed with (RSA of at least 2048 bits, EC P-256,
/// Ed25519), none private, at most 16.
pub fn parse_jwks(text: &str) -> Result<JwkSet, String> {
    let value: serde_json::Value =
        serde_json::from_str(text).map_err(|e| format!("the JWKS is not JSON: {e}"))?;
    let keys = value["keys"]
        .as_array()
        .ok_or("a JWKS is an object with a \"keys\" array")?;
    if keys.is_empty() || keys.len() > MAX_KEYS {
        return Err(format!("a JWKS holds 1 to {MAX_KEYS} keys"));
    }
    for key in keys {
        if crate::tokens::jose::has_private_parts(key) {
            return Err("the JWKS holds a private key: register public keys only".into());
        }
        crate::tokens::jose::check_public_jwk(key)?;
    }
    serde_json::from_value(value).map_err(|e| format!("the JWKS cannot be read: {e}"))
}

/// A `jwks_uri`: https (or http on a loopback address, for development).
pub fn parse_jwks_uri(text: &str) -> Result<String, String> {
    let ok = text.starts_with("https://")
        || text.starts_with("http://127.0.0.1")
        || text.starts_with("http://[::1]")
        || text.starts_with("http://localhost");
    if !ok || text.len() > 2048 || text.contains(char::is_whitespace) {
        return Err("jwks_uri must be an https URL (http only on a loopback address)".into());
    }
    Ok(text.to_string())
}
