//! The issuer's public keys: parsing a JWK Set (RFC 7517) into keys pinned
//! to their own algorithm, and reading the cache headers that say how long
//! the set may be kept.
//!
//! A key this crate cannot use (another algorithm, a missing `kid`, a weak
//! RSA modulus) is skipped on its own; it never makes the whole set fail.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use jsonwebtoken::DecodingKey;
use serde::Deserialize;
use tokio::time::Instant;

/// The signature algorithms Sigil signs with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Algorithm {
    RS256,
    EdDSA,
}

impl Algorithm {
    pub(crate) fn from_name(name: &str) -> Option<Algorithm> {
        match name {
            "RS256" => Some(Algorithm::RS256),
            "EdDSA" => Some(Algorithm::EdDSA),
            _ => None,
        }
    }

    pub(crate) fn jsonwebtoken(self) -> jsonwebtoken::Algorithm {
        match self {
            Algorithm::RS256 => jsonwebtoken::Algorithm::RS256,
            Algorithm::EdDSA => jsonwebtoken::Algorithm::EdDSA,
        }
    }
}

/// A public key and the one algorithm it verifies.
#[derive(Clone)]
pub(crate) struct Key {
    pub alg: Algorithm,
    pub decoding: DecodingKey,
}

/// RSA moduli shorter than this are not trusted (RFC 7518 §3.3).
const MIN_RSA_BYTES: usize = 2048 / 8;

/// The JWK members this crate reads; everything else is ignored.
#[derive(Deserialize)]
struct RawJwk {
    kty: Option<String>,
    kid: Option<String>,
    alg: Option<String>,
    #[serde(rename = "use")]
    use_: Option<String>,
    key_ops: Option<Vec<String>>,
    crv: Option<String>,
    n: Option<String>,
    e: Option<String>,
    x: Option<String>,
}

#[derive(Deserialize)]
struct RawSet {
    keys: Vec<serde_json::Value>,
}

/// The usable keys of a JWK Set by `kid`, and how many were skipped.
pub(crate) fn parse(body: &[u8]) -> Result<(HashMap<String, Key>, usize), String> {
    let set: RawSet = serde_json::from_slice(body).map_err(|e| format!("not a JWK Set: {e}"))?;
    let mut keys = HashMap::with_capacity(set.keys.len());
    // Two keys under one kid cannot be told apart: trust neither.
    let mut duplicated = HashSet::new();
    let mut skipped = 0;
    for value in set.keys {
        let parsed = serde_json::from_value::<RawJwk>(value)
            .map_err(|e| e.to_string())
            .and_then(usable);
        match parsed {
            Ok((kid, _)) if duplicated.contains(&kid) => skipped += 1,
            Ok((kid, key)) => {
                if keys.remove(&kid).is_some() {
                    tracing::warn!(%kid, "the JWKS lists a kid twice; ignoring every key under it");
                    skipped += 2;
                    duplicated.insert(kid);
                } else {
                    keys.insert(kid, key);
                }
            }
            Err(why) => {
                tracing::debug!(%why, "skipping a JWK this verifier cannot use");
                skipped += 1;
            }
        }
    }
    Ok((keys, skipped))
}

fn usable(jwk: RawJwk) -> Result<(String, Key), String> {
    let kid = jwk.kid.filter(|k| !k.is_empty()).ok_or("no kid")?;
    if jwk.use_.as_deref().is_some_and(|u| u != "sig") {
        return Err(format!("{kid}: not a signing key"));
    }
    if jwk
        .key_ops
        .as_ref()
        .is_some_and(|ops| !ops.iter().any(|op| op == "verify"))
    {
        return Err(format!("{kid}: key_ops excludes verify"));
    }
    // A key without `alg` could be used with any algorithm of its type;
    // Sigil always sets it, so such a key is not trusted.
    let alg = jwk
        .alg
        .as_deref()
        .and_then(Algorithm::from_name)
        .ok_or_else(|| format!("{kid}: alg is missing or not RS256/EdDSA"))?;
    let decode = |field: &Option<String>| {
        field
            .as_deref()
            .and_then(|v| B64.decode(v).ok())
            .ok_or_else(|| format!("{kid}: missing or malformed key material"))
    };
    let decoding = match (alg, jwk.kty.as_deref(), jwk.crv.as_deref()) {
        (Algorithm::RS256, Some("RSA"), _) => {
            let (n, e) = (decode(&jwk.n)?, decode(&jwk.e)?);
            let n_len = n.iter().skip_while(|b| **b == 0).count();
            if n_len < MIN_RSA_BYTES {
                return Err(format!("{kid}: RSA modulus under 2048 bits"));
            }
            DecodingKey::from_rsa_raw_components(&n, &e)
        }
        (Algorithm::EdDSA, Some("OKP"), Some("Ed25519")) => {
            let x = decode(&jwk.x)?;
            if x.len() != 32 {
                return Err(format!("{kid}: Ed25519 key is not 32 bytes"));
            }
            DecodingKey::from_ed_der(&x)
        }
        _ => return Err(format!("{kid}: kty/crv do not fit alg")),
    };
    Ok((kid, Key { alg, decoding }))
}

/// What `Cache-Control` (and `Age`) allow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Freshness {
    /// How long the response is fresh from now.
    pub max_age: Duration,
    /// How long past that it may still be used while the server errs
    /// (RFC 5861), if the server said.
    pub stale_if_error: Option<Duration>,
}

/// Used when the server sends no `max-age`.
pub(crate) const DEFAULT_MAX_AGE: Duration = Duration::from_secs(300);
/// No header can make the verifier keep a key set longer than this.
pub(crate) const MAX_MAX_AGE: Duration = Duration::from_secs(24 * 3600);

pub(crate) fn freshness(cache_control: Option<&str>, age: Option<&str>) -> Freshness {
    let mut max_age = None;
    let mut stale_if_error = None;
    let mut no_cache = false;
    for directive in cache_control.unwrap_or("").split(',') {
        let directive = directive.trim();
        let (name, value) = directive.split_once('=').unwrap_or((directive, ""));
        let seconds = || value.trim_matches('"').parse::<u64>().ok();
        match name.to_ascii_lowercase().as_str() {
            "max-age" => max_age = seconds(),
            "stale-if-error" => stale_if_error = seconds(),
            "no-cache" | "no-store" => no_cache = true,
            _ => {}
        }
    }
    let age = age.and_then(|a| a.trim().parse::<u64>().ok()).unwrap_or(0);
    let max_age = if no_cache {
        Duration::ZERO
    } else {
        max_age
            .map(|s| Duration::from_secs(s.saturating_sub(age)))
            .unwrap_or(DEFAULT_MAX_AGE)
            .min(MAX_MAX_AGE)
    };
    Freshness {
        max_age,
        stale_if_error: stale_if_error.map(|s| Duration::from_secs(s).min(MAX_MAX_AGE)),
    }
}

/// The key set in use: replaced whole, never edited, so a verification sees
/// one consistent set.
pub(crate) struct KeySet {
    pub keys: std::sync::Arc<HashMap<String, Key>>,
    /// The validator to send as `If-None-Match`.
    pub etag: Option<String>,
    /// When the set was last confirmed by the server (200 or 304).
    pub confirmed_at: Instant,
    /// How long it was fresh from then.
    pub max_age: Duration,
    /// Past this the set is stale and the fail mode applies; `None` for a
    /// static set, which never goes stale.
    pub usable_until: Option<Instant>,
}

impl KeySet {
    /// When the background task should revalidate: a little before the
    /// set goes stale, and never more often than `floor`.
    pub fn refresh_due(&self, floor: Duration) -> Instant {
        let lead = (self.max_age / 10).min(Duration::from_secs(60));
        self.confirmed_at + (self.max_age - lead).max(floor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RSA_N: &str = "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw";
    const ED_X: &str = "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo";

    #[test]
    fn keys_this_verifier_cannot_use_are_skipped_not_fatal() {
        let body = serde_json::json!({"keys": [
            {"kty": "RSA", "kid": "rsa", "alg": "RS256", "use": "sig", "n": RSA_N, "e": "AQAB"},
            {"kty": "OKP", "crv": "Ed25519", "kid": "ed", "alg": "EdDSA", "x": ED_X},
            {"kty": "EC", "crv": "P-256", "kid": "ec", "alg": "ES256", "x": "a", "y": "b"},
            {"kty": "OKP", "crv": "Ed448", "kid": "ed448", "alg": "EdDSA", "x": ED_X},
            {"kty": "RSA", "kid": "no-alg", "n": RSA_N, "e": "AQAB"},
            {"kty": "RSA", "kid": "enc", "alg": "RS256", "use": "enc", "n": RSA_N, "e": "AQAB"},
            {"kty": "RSA", "kid": "short", "alg": "RS256", "n": "AQAB", "e": "AQAB"},
            {"kty": "OKP", "crv": "Ed25519", "kid": "swapped", "alg": "RS256", "x": ED_X},
            {"kty": "RSA", "alg": "RS256", "n": RSA_N, "e": "AQAB"},
            {"something": "else entirely"},
            "not even an object"
        ]});
        let (keys, skipped) = parse(body.to_string().as_bytes()).unwrap();
        let mut kids: Vec<_> = keys.keys().cloned().collect();
        kids.sort();
        assert_eq!(kids, ["ed", "rsa"]);
        assert_eq!(skipped, 9);
        assert_eq!(keys["rsa"].alg, Algorithm::RS256);
        assert_eq!(keys["ed"].alg, Algorithm::EdDSA);
    }

    #[test]
    fn a_kid_listed_twice_is_trusted_for_neither_key() {
        let body = serde_json::json!({"keys": [
            {"kty": "OKP", "crv": "Ed25519", "kid": "k", "alg": "EdDSA", "x": ED_X},
            {"kty": "RSA", "kid": "k", "alg": "RS256", "n": RSA_N, "e": "AQAB"},
            {"kty": "OKP", "crv": "Ed25519", "kid": "k", "alg": "EdDSA", "x": ED_X},
        ]});
        let (keys, _) = parse(body.to_string().as_bytes()).unwrap();
        assert!(keys.is_empty());
    }

    #[test]
    fn a_document_that_is_not_a_key_set_is_an_error() {
        assert!(parse(b"{}").is_err());
        assert!(parse(b"[]").is_err());
    }

    #[test]
    fn cache_control_sets_the_lifetime() {
        let sigil = freshness(Some("public, max-age=900, stale-if-error=86400"), None);
        assert_eq!(sigil.max_age, Duration::from_secs(900));
        assert_eq!(sigil.stale_if_error, Some(Duration::from_secs(86400)));
        let aged = freshness(Some("max-age=900"), Some("100"));
        assert_eq!(aged.max_age, Duration::from_secs(800));
        assert_eq!(freshness(None, None).max_age, DEFAULT_MAX_AGE);
        assert_eq!(
            freshness(Some("no-cache, max-age=60"), None).max_age,
            Duration::ZERO
        );
        assert_eq!(
            freshness(Some("MAX-AGE=999999999"), None).max_age,
            MAX_MAX_AGE
        );
        // A huge stale-if-error cannot overflow an Instant later.
        assert_eq!(
            freshness(
                Some("max-age=60, stale-if-error=18446744073709551615"),
                None
            )
            .stale_if_error,
            Some(MAX_MAX_AGE)
        );
    }
}
