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

/// The most signing keys a client's JWKS may hold.
const MAX_KEYS: usize = 16;
/// The most keys of any kind a set may list (encryption keys, other curves).
const MAX_LISTED: usize = 64;

/// Parses and checks a client's JWKS, keeping the public keys the
/// assertions may be signed with (RSA of at least 2048 bits, EC P-256,
/// Ed25519; not `"use": "enc"`), at most 16. Other keys are ignored, as
/// RFC 7517 §5 asks (a client's set often holds encryption keys too); a
/// set with none left, or with a private key anywhere, is refused.
pub fn parse_jwks(text: &str) -> Result<JwkSet, String> {
    let value: serde_json::Value =
        serde_json::from_str(text).map_err(|e| format!("the JWKS is not JSON: {e}"))?;
    let keys = value["keys"]
        .as_array()
        .ok_or("a JWKS is an object with a \"keys\" array")?;
    if keys.len() > MAX_LISTED {
        return Err(format!("a JWKS lists at most {MAX_LISTED} keys"));
    }
    if keys.iter().any(crate::tokens::jose::has_private_parts) {
        return Err("the JWKS holds a private key: register public keys only".into());
    }
    let mut usable = Vec::new();
    let mut skipped = Vec::new();
    for key in keys {
        let signing = !matches!(key["use"].as_str(), Some(u) if u != "sig");
        match crate::tokens::jose::check_public_jwk(key) {
            Ok(()) if signing => usable.push(key.clone()),
            Ok(()) => skipped.push("an encryption key".to_string()),
            Err(why) => skipped.push(why),
        }
    }
    if usable.is_empty() {
        let why = skipped.first().map_or("it is empty", String::as_str);
        return Err(format!(
            "the JWKS has no key to verify assertions with (RSA of 2048 bits or more, EC \
             P-256 or Ed25519, for signatures): {why}"
        ));
    }
    if usable.len() > MAX_KEYS {
        return Err(format!("a JWKS holds at most {MAX_KEYS} signing keys"));
    }
    serde_json::from_value(serde_json::json!({ "keys": usable }))
        .map_err(|e| format!("the JWKS cannot be read: {e}"))
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

#[cfg(test)]
mod tests {
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use serde_json::{Value, json};

    use super::*;

    fn b64(len: usize) -> String {
        URL_SAFE_NO_PAD.encode(vec![7u8; len])
    }

    fn p256(kid: &str) -> Value {
        json!({"kty": "EC", "crv": "P-256", "kid": kid, "x": b64(32), "y": b64(32)})
    }

    #[test]
    fn keys_that_cannot_sign_assertions_are_ignored_not_fatal() {
        let set = json!({"keys": [
            {"kty": "OKP", "crv": "X25519", "use": "enc", "kid": "enc", "x": b64(32)},
            {"kty": "EC", "crv": "P-384", "kid": "p384", "x": b64(48), "y": b64(48)},
            {"kty": "EC", "crv": "P-256", "use": "enc", "kid": "p256-enc", "x": b64(32), "y": b64(32)},
            {"kty": "RSA", "kid": "small", "n": b64(128), "e": "AQAB"},
            p256("sig"),
        ]});
        let parsed = parse_jwks(&set.to_string()).expect("one usable key");
        let kids: Vec<_> = parsed
            .keys
            .iter()
            .filter_map(|k| k.common.key_id.clone())
            .collect();
        assert_eq!(kids, ["sig"]);
    }

    #[test]
    fn a_set_with_no_usable_key_or_any_private_key_is_refused() {
        let none = json!({"keys": [{"kty": "OKP", "crv": "X25519", "use": "enc", "x": b64(32)}]});
        let err = parse_jwks(&none.to_string()).unwrap_err();
        assert!(err.contains("no key to verify assertions"), "{err}");
        assert!(parse_jwks(r#"{"keys": []}"#).is_err());
        let mut private = p256("p");
        private["d"] = json!(b64(32));
        let set = json!({"keys": [p256("ok"), private]});
        assert!(
            parse_jwks(&set.to_string())
                .unwrap_err()
                .contains("private key")
        );
        let many: Vec<Value> = (0..17).map(|i| p256(&i.to_string())).collect();
        assert!(parse_jwks(&json!({"keys": many}).to_string()).is_err());
    }
}
