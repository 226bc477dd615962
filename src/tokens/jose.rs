//! JWTs signed by others with keys they hold: DPoP proofs (a key in the
//! header, RFC 9449) and client assertions (a key the client registered,
//! RFC 7523). Only asymmetric algorithms, each pinned to its key type
//! (RFC 8725 §3.1): ES256 with an EC P-256 key, EdDSA with Ed25519, RS256
//! and PS256 with RSA of at least 2048 bits. Time and replay are the
//! caller's checks; this module answers "did this key sign these bytes".

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use jsonwebtoken::Algorithm;
use ring::signature::{self, RsaPublicKeyComponents, UnparsedPublicKey};
use serde_json::Value;

/// The algorithms a foreign JWT may use, as JWA names.
pub const ALGORITHMS: [&str; 4] = ["ES256", "EdDSA", "RS256", "PS256"];

/// Why a foreign JWT was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JoseError {
    #[error("not a well-formed JWT")]
    Malformed,
    #[error("{0}")]
    Header(String),
    #[error("the signature does not verify")]
    BadSignature,
}

/// A JWT split and decoded, not yet verified.
pub struct Unverified<'a> {
    pub header: Value,
    pub claims: Value,
    token: &'a str,
}

/// Splits a compact JWS and decodes its header and claims (JSON objects).
pub fn decode(token: &str) -> Result<Unverified<'_>, JoseError> {
    if token.len() > 8 * 1024 {
        return Err(JoseError::Malformed);
    }
    let mut parts = token.split('.');
    let (Some(header), Some(claims), Some(_), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(JoseError::Malformed);
    };
    let object = |part: &str| -> Result<Value, JoseError> {
        let bytes = B64.decode(part).map_err(|_| JoseError::Malformed)?;
        let value: Value = serde_json::from_slice(&bytes).map_err(|_| JoseError::Malformed)?;
        value
            .is_object()
            .then_some(value)
            .ok_or(JoseError::Malformed)
    };
    Ok(Unverified {
        header: object(header)?,
        claims: object(claims)?,
        token,
    })
}

impl Unverified<'_> {
    /// The header's `alg`, if it is one of [`ALGORITHMS`].
    pub fn algorithm(&self) -> Result<Algorithm, JoseError> {
        match self.header["alg"].as_str() {
            Some("ES256") => Ok(Algorithm::ES256),
            Some("EdDSA") => Ok(Algorithm::EdDSA),
            Some("RS256") => Ok(Algorithm::RS256),
            Some("PS256") => Ok(Algorithm::PS256),
            Some(other) => Err(JoseError::Header(format!(
                "alg {other:?} is not accepted (only {})",
                ALGORITHMS.join(", ")
            ))),
            None => Err(JoseError::Header("the header names no alg".into())),
        }
    }

    /// Verifies the signature with `key` (a public JWK), which must be of
    /// the type the header's `alg` needs.
    pub fn verify(&self, key: &Value) -> Result<(), JoseError> {
        let alg = self.algorithm()?;
        check_public_jwk(key).map_err(JoseError::Header)?;
        let fits = matches!(
            (alg, key["kty"].as_str(), key["crv"].as_str()),
            (Algorithm::ES256, Some("EC"), Some("P-256"))
                | (Algorithm::EdDSA, Some("OKP"), Some("Ed25519"))
                | (Algorithm::RS256 | Algorithm::PS256, Some("RSA"), _)
        );
        if !fits {
            return Err(JoseError::Header(
                "the key does not fit the header's alg".into(),
            ));
        }
        // Straight with ring: the header and claims were parsed once, in
        // `decode`, and a JWT library would parse them again.
        let (input, signature) = self.token.rsplit_once('.').ok_or(JoseError::Malformed)?;
        let signature = B64.decode(signature).map_err(|_| JoseError::Malformed)?;
        // check_public_jwk has made sure of every member read here.
        let member = |name: &str| {
            key[name]
                .as_str()
                .and_then(|v| B64.decode(v).ok())
                .unwrap_or_default()
        };
        let input = input.as_bytes();
        let verified = match alg {
            Algorithm::ES256 => {
                let point = [&[4u8][..], &member("x"), &member("y")].concat();
                UnparsedPublicKey::new(&signature::ECDSA_P256_SHA256_FIXED, point)
                    .verify(input, &signature)
            }
            Algorithm::EdDSA => {
                UnparsedPublicKey::new(&signature::ED25519, member("x")).verify(input, &signature)
            }
            Algorithm::RS256 | Algorithm::PS256 => {
                let params = if alg == Algorithm::RS256 {
                    &signature::RSA_PKCS1_2048_8192_SHA256
                } else {
                    &signature::RSA_PSS_2048_8192_SHA256
                };
                RsaPublicKeyComponents {
                    n: member("n"),
                    e: member("e"),
                }
                .verify(params, input, &signature)
            }
            _ => return Err(JoseError::Header("the alg is not accepted".into())),
        };
        verified.map_err(|_| JoseError::BadSignature)
    }
}

/// An RFC 7519 §2 NumericDate: seconds since the epoch, which may have a
/// fraction (`time.time()` in Python makes one), rounded down.
pub fn numeric_date(value: &Value) -> Option<i64> {
    value.as_i64().or_else(|| {
        value
            .as_f64()
            .filter(|f| f.is_finite() && f.abs() < 1e15)
            .map(|f| f.floor() as i64)
    })
}

/// Whether a JWK carries private key material (RFC 7518 §6.2.2, §6.3.2,
/// RFC 8037 §2) or a symmetric key.
pub fn has_private_parts(jwk: &Value) -> bool {
    ["d", "p", "q", "dp", "dq", "qi", "oth", "k"]
        .iter()
        .any(|m| jwk.get(m).is_some())
}

/// Checks a public JWK is of a kind Sigil accepts: RSA of at least 2048
/// bits, EC on P-256, or Ed25519.
pub fn check_public_jwk(jwk: &Value) -> Result<(), String> {
    if has_private_parts(jwk) {
        return Err("the key holds private parts".into());
    }
    let member = |name: &str| {
        jwk[name]
            .as_str()
            .and_then(|v| B64.decode(v).ok())
            .ok_or_else(|| format!("the key lacks a base64url {name}"))
    };
    match (jwk["kty"].as_str(), jwk["crv"].as_str()) {
        (Some("RSA"), _) => {
            let n = member("n")?;
            member("e")?;
            let bits = n.len() * 8 - n.first().map_or(8, |b| b.leading_zeros() as usize);
            if bits < 2048 {
                return Err("RSA keys must have at least 2048 bits".into());
            }
        }
        (Some("EC"), Some("P-256")) => {
            if member("x")?.len() != 32 || member("y")?.len() != 32 {
                return Err("a P-256 key has 32-byte x and y".into());
            }
        }
        (Some("OKP"), Some("Ed25519")) => {
            if member("x")?.len() != 32 {
                return Err("an Ed25519 key has a 32-byte x".into());
            }
        }
        _ => return Err("keys must be RSA, EC P-256 or Ed25519".into()),
    }
    Ok(())
}

/// The RFC 7638 SHA-256 thumbprint of a public JWK, base64url: the
/// required members only, in lexicographic order, no whitespace.
pub fn thumbprint(jwk: &Value) -> Result<String, String> {
    let members: &[&str] = match jwk["kty"].as_str() {
        Some("RSA") => &["e", "kty", "n"],
        Some("EC") => &["crv", "kty", "x", "y"],
        Some("OKP") => &["crv", "kty", "x"],
        _ => return Err("unknown key type".into()),
    };
    let mut canonical = String::from("{");
    for (i, name) in members.iter().enumerate() {
        let value = jwk[*name]
            .as_str()
            .ok_or_else(|| format!("the key lacks {name}"))?;
        if i > 0 {
            canonical.push(',');
        }
        canonical.push_str(&format!("{:?}:{}", name, Value::from(value)));
    }
    canonical.push('}');
    let digest = ring::digest::digest(&ring::digest::SHA256, canonical.as_bytes());
    Ok(B64.encode(digest.as_ref()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_thumbprint_is_rfc_7638s() {
        // RFC 7638 §3.1.
        let key = serde_json::json!({
            "kty": "RSA",
            "n": "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw",
            "e": "AQAB",
            "alg": "RS256",
            "kid": "2011-04-29"
        });
        assert_eq!(
            thumbprint(&key).unwrap(),
            "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
        );
    }

    #[test]
    fn private_and_weak_keys_are_refused() {
        let ed = serde_json::json!({"kty": "OKP", "crv": "Ed25519", "x": B64.encode([7u8; 32])});
        assert!(check_public_jwk(&ed).is_ok());
        let mut private = ed.clone();
        private["d"] = serde_json::json!(B64.encode([1u8; 32]));
        assert!(has_private_parts(&private));
        assert!(check_public_jwk(&private).is_err());
        let hmac = serde_json::json!({"kty": "oct", "k": "c2VjcmV0"});
        assert!(check_public_jwk(&hmac).is_err());
        let small = serde_json::json!({"kty": "RSA", "n": B64.encode([0xffu8; 128]), "e": "AQAB"});
        assert!(check_public_jwk(&small).unwrap_err().contains("2048"));
        let p384 = serde_json::json!({"kty": "EC", "crv": "P-384", "x": B64.encode([1u8; 48]), "y": B64.encode([1u8; 48])});
        assert!(check_public_jwk(&p384).is_err());
    }

    #[test]
    fn a_jwt_must_have_three_parts_of_json_objects() {
        assert!(decode("a.b").is_err());
        assert!(decode("a.b.c.d").is_err());
        let header = B64.encode(br#"{"alg":"ES256"}"#);
        let claims = B64.encode(b"[1]");
        assert!(decode(&format!("{header}.{claims}.sig")).is_err());
        let claims = B64.encode(br#"{"jti":"x"}"#);
        let text = format!("{header}.{claims}.sig");
        let jwt = decode(&text).unwrap();
        assert_eq!(jwt.algorithm().unwrap(), Algorithm::ES256);
        let none = B64.encode(br#"{"alg":"none"}"#);
        assert!(
            decode(&format!("{none}.{claims}."))
                .unwrap()
                .algorithm()
                .is_err()
        );
        let hs = B64.encode(br#"{"alg":"HS256"}"#);
        assert!(
            decode(&format!("{hs}.{claims}.x"))
                .unwrap()
                .algorithm()
                .is_err()
        );
    }
}
