//! Public keys as JWKs (RFC 7517/7518/8037) and their RFC 7638 thumbprints.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use serde_json::json;

use super::Alg;

/// The public half of a key, as the components a JWK carries.
pub(crate) enum PublicComponents<'a> {
    Rsa { n: &'a [u8], e: &'a [u8] },
    Ed25519 { x: &'a [u8] },
}

/// RFC 7638 §3: SHA-256 over the required members, in lexicographic order,
/// with no whitespace, base64url-encoded.
pub fn thumbprint(canonical_members: &str) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, canonical_members.as_bytes());
    B64.encode(digest.as_ref())
}

/// The RFC 7638 thumbprint of a stored public JWK, if it is a well-formed
/// RSA or Ed25519 key.
pub(crate) fn thumbprint_of(jwk: &serde_json::Value) -> Option<String> {
    let field = |name: &str| jwk.get(name).and_then(|v| v.as_str());
    let canonical = match field("kty")? {
        "RSA" => format!(
            r#"{{"e":"{}","kty":"RSA","n":"{}"}}"#,
            field("e")?,
            field("n")?
        ),
        "OKP" => format!(
            r#"{{"crv":"{}","kty":"OKP","x":"{}"}}"#,
            field("crv")?,
            field("x")?
        ),
        _ => return None,
    };
    Some(thumbprint(&canonical))
}

/// Builds `(kid, public JWK JSON)` for a public key.
pub(crate) fn public_jwk(alg: Alg, public: PublicComponents<'_>) -> (String, serde_json::Value) {
    match public {
        PublicComponents::Rsa { n, e } => {
            let (n, e) = (B64.encode(n), B64.encode(e));
            let kid = thumbprint(&format!(r#"{{"e":"{e}","kty":"RSA","n":"{n}"}}"#));
            let jwk = json!({"kty": "RSA", "kid": kid, "use": "sig", "alg": alg.as_str(), "n": n, "e": e});
            (kid, jwk)
        }
        PublicComponents::Ed25519 { x } => {
            let x = B64.encode(x);
            let kid = thumbprint(&format!(r#"{{"crv":"Ed25519","kty":"OKP","x":"{x}"}}"#));
            let jwk = json!({"kty": "OKP", "crv": "Ed25519", "kid": kid, "use": "sig", "alg": alg.as_str(), "x": x});
            (kid, jwk)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The worked example of RFC 7638 §3.1.
    #[test]
    fn thumbprint_matches_the_rfc_7638_example() {
        let n = "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw";
        let members = format!(r#"{{"e":"AQAB","kty":"RSA","n":"{n}"}}"#);
        assert_eq!(
            thumbprint(&members),
            "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
        );
    }
}
