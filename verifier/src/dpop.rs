//! DPoP proofs at a resource service (RFC 9449 §4.3 and §7): a token bound
//! to a key (`cnf.jkt`) is good only with a fresh proof, signed by that
//! key, naming this request (`htm`, `htu`) and this token (`ath`). Each
//! proof's `jti` is accepted once (a bounded in-memory cache per verifier:
//! a service's replicas each keep their own, which is what RFC 9449 §11.1
//! asks of a resource server).

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

use aws_lc_rs::signature::{self, RsaPublicKeyComponents, UnparsedPublicKey};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use serde_json::Value;

/// How old a proof may be (its `iat`), and how long its `jti` is kept.
pub(crate) const PROOF_MAX_AGE: i64 = 60;
/// Most proof identifiers remembered at once.
const CAPACITY: usize = 100_000;

/// Why a proof was refused (rendered as `invalid_dpop_proof`).
pub(crate) fn check(
    proof: &str,
    method: &str,
    htu: &str,
    token: &str,
    jkt: &str,
    now: i64,
    leeway: i64,
) -> Result<(String, i64), String> {
    if proof.len() > 8 * 1024 {
        return Err("the proof is too long".into());
    }
    let mut parts = proof.split('.');
    let (Some(h), Some(c), Some(s), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err("the proof is not a JWT".into());
    };
    let object = |part: &str| -> Result<Value, String> {
        B64.decode(part)
            .ok()
            .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
            .filter(Value::is_object)
            .ok_or_else(|| "the proof is not a JWT".to_string())
    };
    let (header, claims) = (object(h)?, object(c)?);
    // A media type, so compared case-insensitively (RFC 7515 §4.1.9).
    if !header["typ"]
        .as_str()
        .is_some_and(|t| t.eq_ignore_ascii_case("dpop+jwt"))
    {
        return Err("typ must be dpop+jwt".into());
    }
    let alg = header["alg"].as_str().unwrap_or_default();
    let key = &header["jwk"];
    if !key.is_object()
        || ["d", "p", "q", "dp", "dq", "qi", "oth", "k"]
            .iter()
            .any(|m| key.get(m).is_some())
    {
        return Err("the header needs a public jwk".into());
    }
    if !["ES256", "EdDSA", "RS256", "PS256"].contains(&alg) {
        return Err("alg must be ES256, EdDSA, RS256 or PS256".into());
    }
    // The proof's key is the token's key: compared before any signature
    // work, so a proof by another key costs little.
    if thumbprint(key)? != jkt {
        return Err("the proof is not made with the token's key".into());
    }
    let signing_input = &proof[..h.len() + 1 + c.len()];
    let signature = B64
        .decode(s)
        .map_err(|_| "the proof's signature is not base64url")?;
    verify_signature(alg, key, signing_input.as_bytes(), &signature)?;
    if claims["htm"].as_str() != Some(method) {
        return Err(format!("htm must be {method}"));
    }
    let htu_ok = claims["htu"]
        .as_str()
        .and_then(normalized_uri)
        .is_some_and(|presented| Some(presented) == normalized_uri(htu));
    if !htu_ok {
        return Err(format!("htu must be {htu}"));
    }
    // An RFC 7519 NumericDate may have a fraction.
    let iat = claims["iat"]
        .as_i64()
        .or_else(|| {
            claims["iat"]
                .as_f64()
                .filter(|f| f.is_finite())
                .map(|f| f.floor() as i64)
        })
        .ok_or("the proof needs iat")?;
    if iat > now + leeway || now - iat > PROOF_MAX_AGE {
        return Err("the proof's iat is too far from now".into());
    }
    let digest = sha256(token.as_bytes());
    if claims["ath"].as_str() != Some(B64.encode(digest).as_str()) {
        return Err("ath does not match the access token".into());
    }
    let jti = claims["jti"]
        .as_str()
        .filter(|j| (1..=256).contains(&j.len()))
        .ok_or("the proof needs a jti")?;
    Ok((format!("{jkt}\u{0}{jti}"), iat))
}

/// Verifies a JWS signature with the header's own key, the `alg` pinned to
/// the key's type (RFC 7518 §3), straight with aws-lc-rs: the header and
/// claims are parsed once, above, not again by a JWT library.
fn verify_signature(alg: &str, jwk: &Value, input: &[u8], signature: &[u8]) -> Result<(), String> {
    let member = |name: &str| {
        jwk[name]
            .as_str()
            .and_then(|v| B64.decode(v).ok())
            .ok_or_else(|| format!("the jwk lacks a base64url {name}"))
    };
    let verified = match (alg, jwk["kty"].as_str(), jwk["crv"].as_str()) {
        ("ES256", Some("EC"), Some("P-256")) => {
            let (x, y) = (member("x")?, member("y")?);
            if x.len() != 32 || y.len() != 32 {
                return Err("a P-256 jwk has 32-byte x and y".into());
            }
            let point = [&[4u8][..], &x, &y].concat();
            UnparsedPublicKey::new(&signature::ECDSA_P256_SHA256_FIXED, point)
                .verify(input, signature)
        }
        ("EdDSA", Some("OKP"), Some("Ed25519")) => {
            UnparsedPublicKey::new(&signature::ED25519, member("x")?).verify(input, signature)
        }
        ("RS256" | "PS256", Some("RSA"), _) => {
            let params = if alg == "RS256" {
                &signature::RSA_PKCS1_2048_8192_SHA256
            } else {
                &signature::RSA_PSS_2048_8192_SHA256
            };
            RsaPublicKeyComponents {
                n: member("n")?,
                e: member("e")?,
            }
            .verify(params, input, signature)
        }
        _ => return Err("the jwk does not fit the alg".into()),
    };
    verified.map_err(|_| "the proof's signature does not verify".into())
}

fn sha256(data: &[u8]) -> Vec<u8> {
    aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, data)
        .as_ref()
        .to_vec()
}

/// RFC 7638 SHA-256 thumbprint of a public JWK, base64url.
pub(crate) fn thumbprint(key: &Value) -> Result<String, String> {
    let members: &[&str] = match key["kty"].as_str() {
        Some("RSA") => &["e", "kty", "n"],
        Some("EC") => &["crv", "kty", "x", "y"],
        Some("OKP") => &["crv", "kty", "x"],
        _ => return Err("unknown key type".into()),
    };
    let mut canonical = serde_json::Map::new();
    for name in members {
        let value = key[*name]
            .as_str()
            .ok_or_else(|| format!("the jwk lacks {name}"))?;
        canonical.insert((*name).to_string(), Value::from(value));
    }
    // serde_json's map keeps keys sorted: the canonical order.
    let text = Value::Object(canonical).to_string();
    Ok(B64.encode(sha256(text.as_bytes())))
}

/// Proof identifiers seen, each until its proof would be too old anyway.
#[derive(Default)]
pub(crate) struct SeenProofs {
    inner: Mutex<Seen>,
}

#[derive(Default)]
struct Seen {
    until: HashMap<String, i64>,
    order: VecDeque<(String, i64)>,
}

impl SeenProofs {
    /// Whether `key` is new; remembers it until `until`.
    pub(crate) fn first_use(&self, key: String, until: i64, now: i64) -> bool {
        let mut seen = self
            .inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        while let Some((old, expires)) = seen.order.front().cloned() {
            if expires > now && seen.order.len() < CAPACITY {
                break;
            }
            seen.order.pop_front();
            if seen.until.get(&old) == Some(&expires) {
                seen.until.remove(&old);
            }
        }
        if seen.until.get(&key).is_some_and(|t| *t > now) {
            return false;
        }
        seen.until.insert(key.clone(), until);
        seen.order.push_back((key, until));
        true
    }
}

/// An http(s) URI as RFC 9449 §4.3 compares `htu`: without query and
/// fragment, normalised as RFC 3986 §6.2.2–6.2.3 says (scheme and host
/// case, default port, dot segments by the url crate; percent-encoded
/// unreserved characters decoded here, other escapes uppercased).
fn normalized_uri(uri: &str) -> Option<String> {
    let bare = uri.split(['?', '#']).next().unwrap_or_default();
    let mut text = String::with_capacity(bare.len());
    let mut rest = bare;
    while let Some(at) = rest.find('%') {
        text.push_str(&rest[..at]);
        let hex = rest
            .get(at + 1..at + 3)
            .filter(|h| h.bytes().all(|b| b.is_ascii_hexdigit()))?;
        match u8::from_str_radix(hex, 16).ok()? {
            c if c.is_ascii_alphanumeric() || b"-._~".contains(&c) => text.push(c as char),
            _ => text.push_str(&rest[at..at + 3].to_ascii_uppercase()),
        }
        rest = &rest[at + 3..];
    }
    text.push_str(rest);
    let url = reqwest::Url::parse(&text).ok()?;
    matches!(url.scheme(), "http" | "https").then(|| url.as_str().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn htu_is_compared_after_normalisation() {
        let url = "https://notes.example.com/notes/1";
        for same in [
            "https://NOTES.example.com:443/notes/1?x=1",
            "https://notes.example.com/notes/%31",
            "https://notes.example.com/notes/x/../1",
        ] {
            assert_eq!(normalized_uri(same), normalized_uri(url), "{same}");
        }
        for other in [
            "https://notes.example.com/notes%2F1",
            "http://notes.example.com/notes/1",
            "https://notes.example.com/notes/%zz",
        ] {
            assert_ne!(normalized_uri(other), normalized_uri(url), "{other}");
        }
    }

    #[test]
    fn the_alg_is_pinned_to_the_key_type() {
        let ed = serde_json::json!({"kty": "OKP", "crv": "Ed25519", "x": B64.encode([1u8; 32])});
        let ec = serde_json::json!({"kty": "EC", "crv": "P-256",
            "x": B64.encode([1u8; 32]), "y": B64.encode([2u8; 32])});
        for (alg, key) in [
            ("ES256", &ed),
            ("EdDSA", &ec),
            ("RS256", &ec),
            ("none", &ed),
        ] {
            let refused = verify_signature(alg, key, b"input", &[0u8; 64]).unwrap_err();
            assert!(refused.contains("does not fit"), "{alg}: {refused}");
        }
        let refused = verify_signature("EdDSA", &ed, b"input", &[0u8; 64]).unwrap_err();
        assert!(refused.contains("does not verify"), "{refused}");
    }

    #[test]
    fn the_thumbprint_is_rfc_7638s() {
        let key = serde_json::json!({
            "kty": "RSA",
            "n": "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw",
            "e": "AQAB",
            "alg": "RS256",
        });
        assert_eq!(
            thumbprint(&key).unwrap(),
            "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
        );
    }

    #[test]
    fn a_proof_id_is_new_once_until_it_expires() {
        let seen = SeenProofs::default();
        assert!(seen.first_use("a".into(), 100, 10));
        assert!(!seen.first_use("a".into(), 100, 50));
        assert!(seen.first_use("b".into(), 100, 50));
        assert!(seen.first_use("a".into(), 200, 150), "expired, forgotten");
    }
}
