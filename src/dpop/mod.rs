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
    // A media type, so compared case-insensitively (RFC 7515 §4.1.9).
    let typ = jwt.header["typ"].as_str().unwrap_or_default();
    if !typ.eq_ignore_ascii_case("dpop+jwt") {
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
    let iat = jose::numeric_date(&claims["iat"]).ok_or_else(|| invalid("the proof has no iat"))?;
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

/// RFC 9449 §4.3 step 9: `htu` compared without query and fragment,
/// after RFC 3986 §6.2.2–6.2.3 normalisation of both.
fn same_uri(presented: &str, expected: &str) -> bool {
    normalized_uri(presented).is_some_and(|p| Some(p) == normalized_uri(expected))
}

/// An http(s) URI without query and fragment, its scheme and host
/// lowercased, default port, dot segments and percent-encoded unreserved
/// characters resolved (the url crate does all but the last).
fn normalized_uri(uri: &str) -> Option<String> {
    let bare = uri.split(['?', '#']).next().unwrap_or_default();
    // Decode only unreserved characters: `%2F` must stay a byte of a segment.
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
    fn htu_is_compared_after_rfc_3986_normalisation() {
        let token = "https://id.example.com/oauth/token";
        for same in [
            "https://id.example.com/oauth/%74oken",
            "https://id.example.com/oauth/x/../token",
            "https://id.example.com/./oauth/token",
            "HTTPS://id.example.com/oauth/%2e%2e/oauth/token",
        ] {
            assert!(same_uri(same, token), "{same}");
        }
        for other in [
            "https://id.example.com/oauth%2Ftoken",
            "https://id.example.com/oauth/token/",
            "https://id.example.com/oauth/%zztoken",
            "ftp://id.example.com/oauth/token",
            "not a uri",
        ] {
            assert!(!same_uri(other, token), "{other}");
        }
        assert!(same_uri(
            "https://id.example.com/a%2fb",
            "https://id.example.com/a%2Fb"
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
