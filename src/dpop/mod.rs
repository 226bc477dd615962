//! DPoP proofs (RFC 9449): a JWT the client signs with a key of its own
//! for each request, which binds the access token to that key. A thief
//! who has the token but not the key cannot use it.
//!
//! [`check`] is §4.3's list, in order: one well-formed JWT; `typ`
//! `dpop+jwt`; an asymmetric `alg` Sigil accepts; a public `jwk` in the
//! header that verifies the signature; `htm` and `htu` naming this
//! request; a recent `iat`; a `jti`; the server's nonce when one is
//! required; and at a resource, `ath` the hash of the access token. The
//! `jti`'s single use and the binding to a token's `cnf.jkt` are the
//! caller's (they need the store and the token).

pub mod settings;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;

pub use settings::DpopConfig;

use crate::clock::CLOCK_SKEW_LEEWAY;
use crate::tokens::jose;

/// The `alg`s a proof may use (`dpop_signing_alg_values_supported`).
pub const ALGORITHMS: [&str; 4] = jose::ALGORITHMS;

/// How long a server nonce is good for: the window it was issued in and
/// the next.
const NONCE_WINDOW: i64 = 300;

/// A proof that passed [`check`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Proof {
    /// The RFC 7638 thumbprint of the proof's key: what `cnf.jkt` binds.
    pub jkt: String,
    pub jti: String,
    pub iat: i64,
}

/// Why a proof was refused: `invalid_dpop_proof`, or `use_dpop_nonce`
/// when only the server's nonce is missing or stale (RFC 9449 §8).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DpopError {
    #[error("{0}")]
    Invalid(String),
    #[error("a DPoP proof with the server's nonce is required")]
    UseNonce,
}

fn invalid(why: impl Into<String>) -> DpopError {
    DpopError::Invalid(why.into())
}

/// What the request a proof comes with is.
pub struct Expected<'a> {
    /// The HTTP method (`htm`).
    pub method: &'a str,
    /// The request's URI without query and fragment (`htu`), as Sigil's
    /// issuer names it.
    pub uri: &'a str,
    /// At a resource: the access token the proof must name (`ath`).
    pub access_token: Option<&'a str>,
    /// The nonce a fresh proof must carry, when nonces are required.
    pub nonces: Option<&'a Nonces>,
}

/// Checks a proof (RFC 9449 §4.3) at `now`.
pub fn check(
    proof: &str,
    expected: &Expected<'_>,
    config: &DpopConfig,
    now: i64,
) -> Result<Proof, DpopError> {
    let jwt = jose::decode(proof).map_err(|e| invalid(e.to_string()))?;
    if jwt.header["typ"].as_str() != Some("dpop+jwt") {
        return Err(invalid("the proof's typ must be dpop+jwt"));
    }
    jwt.algorithm().map_err(|e| invalid(e.to_string()))?;
    let key = &jwt.header["jwk"];
    if !key.is_object() {
        return Err(invalid("the proof's header has no jwk"));
    }
    if jose::has_private_parts(key) {
        return Err(invalid("the proof's jwk holds a private key"));
    }
    jwt.verify(key)
        .map_err(|e| invalid(format!("the proof: {e}")))?;
    let claims = &jwt.claims;
    let htm = claims["htm"].as_str().unwrap_or_default();
    if htm != expected.method {
        return Err(invalid(format!("htm must be {}", expected.method)));
    }
    let htu = claims["htu"].as_str().unwrap_or_default();
    if !same_uri(htu, expected.uri) {
        return Err(invalid(format!("htu must be {}", expected.uri)));
    }
    let iat = claims["iat"]
        .as_i64()
        .ok_or_else(|| invalid("the proof has no iat"))?;
    let max_age = config.proof_max_age.as_secs() as i64;
    if iat > now + CLOCK_SKEW_LEEWAY || now - iat > max_age {
        return Err(invalid(
            "the proof's iat is too far from the server's clock",
        ));
    }
    let jti = claims["jti"]
        .as_str()
        .filter(|j| (1..=256).contains(&j.len()))
        .ok_or_else(|| invalid("the proof needs a jti of 1 to 256 characters"))?;
    if let Some(token) = expected.access_token {
        let digest = ring::digest::digest(&ring::digest::SHA256, token.as_bytes());
        if claims["ath"].as_str() != Some(B64.encode(digest.as_ref()).as_str()) {
            return Err(invalid("ath does not match the access token"));
        }
    }
    if let Some(nonces) = expected.nonces {
        let fresh = claims["nonce"]
            .as_str()
            .is_some_and(|n| nonces.is_valid(n, now));
        if !fresh {
            return Err(DpopError::UseNonce);
        }
    }
    let jkt = jose::thumbprint(key).map_err(invalid)?;
    Ok(Proof {
        jkt,
        jti: jti.to_string(),
        iat,
    })
}

/// RFC 9449 §4.3 step 9: `htu` compared without query and fragment, the
/// scheme and host case-insensitively.
fn same_uri(presented: &str, expected: &str) -> bool {
    let strip = |u: &str| -> String {
        let u = u.split(['?', '#']).next().unwrap_or_default();
        match u.split_once("://") {
            Some((scheme, rest)) => {
                let (host, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
                let host = host.to_ascii_lowercase();
                let host = match scheme.to_ascii_lowercase().as_str() {
                    "https" => host.strip_suffix(":443").unwrap_or(&host).to_string(),
                    "http" => host.strip_suffix(":80").unwrap_or(&host).to_string(),
                    _ => host,
                };
                let path = if path.is_empty() { "/" } else { path };
                format!("{}://{host}{path}", scheme.to_ascii_lowercase())
            }
            None => u.to_string(),
        }
    };
    strip(presented) == strip(expected)
}

/// Server nonces (RFC 9449 §8) without state: a nonce is a time window
/// and a MAC of it under a key derived from the KEK, so every node issues
/// and accepts the same ones. Good for its window and the next (5 to 10
/// minutes).
pub struct Nonces {
    key: ring::hmac::Key,
}

impl Nonces {
    pub fn new(key: ring::hmac::Key) -> Nonces {
        Nonces { key }
    }

    fn for_window(&self, window: i64) -> String {
        let tag = ring::hmac::sign(&self.key, &window.to_be_bytes());
        let mut bytes = window.to_be_bytes().to_vec();
        bytes.extend_from_slice(&tag.as_ref()[..16]);
        B64.encode(bytes)
    }

    /// The nonce to hand out now.
    pub fn current(&self, now: i64) -> String {
        self.for_window(now.div_euclid(NONCE_WINDOW))
    }

    /// Whether `nonce` is this window's or the previous one's.
    pub fn is_valid(&self, nonce: &str, now: i64) -> bool {
        let window = now.div_euclid(NONCE_WINDOW);
        [window, window - 1].iter().any(|w| {
            bool::from(subtle::ConstantTimeEq::ct_eq(
                self.for_window(*w).as_bytes(),
                nonce.as_bytes(),
            ))
        })
    }
}

/// A `dpop_jkt` authorization request parameter (§10): a thumbprint.
pub fn parse_jkt(text: &str) -> Option<String> {
    (text.len() == 43 && B64.decode(text).is_ok_and(|d| d.len() == 32)).then(|| text.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn htu_ignores_query_fragment_case_and_default_ports() {
        assert!(same_uri(
            "https://ID.example.com:443/oauth/token?x=1#f",
            "https://id.example.com/oauth/token"
        ));
        assert!(same_uri(
            "http://localhost:8080/userinfo",
            "http://localhost:8080/userinfo"
        ));
        assert!(!same_uri(
            "https://id.example.com/oauth/token2",
            "https://id.example.com/oauth/token"
        ));
        assert!(!same_uri(
            "http://id.example.com/oauth/token",
            "https://id.example.com/oauth/token"
        ));
        assert!(!same_uri(
            "https://evil.example/oauth/token",
            "https://id.example.com/oauth/token"
        ));
    }

    #[test]
    fn nonces_hold_for_their_window_and_the_next() {
        let nonces = Nonces::new(ring::hmac::Key::new(ring::hmac::HMAC_SHA256, b"k"));
        let nonce = nonces.current(1_000_000);
        assert!(nonces.is_valid(&nonce, 1_000_000));
        assert!(nonces.is_valid(&nonce, 1_000_000 + NONCE_WINDOW));
        assert!(!nonces.is_valid(&nonce, 1_000_000 + 2 * NONCE_WINDOW));
        let other = Nonces::new(ring::hmac::Key::new(ring::hmac::HMAC_SHA256, b"other"));
        assert!(!other.is_valid(&nonce, 1_000_000));
        assert!(!nonces.is_valid("garbage", 1_000_000));
    }
}
