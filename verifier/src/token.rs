//! One compact JWS access token, taken apart and checked without I/O.
//!
//! The header is decoded into a stack buffer and read with borrowed
//! strings, so a token signed by a cached key costs no allocation beyond
//! the claims it returns. Nothing here reads a clock: `now` comes in.

use std::borrow::Cow;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use serde::Deserialize;
use serde::de::IgnoredAny;

use crate::claims::Claims;
use crate::error::VerifyError;
use crate::jwks::Algorithm;

/// Longer tokens are refused before any parsing (Sigil's are under 1 KiB).
pub(crate) const MAX_TOKEN_LEN: usize = 8 * 1024;
/// Longest header accepted, decoded.
const MAX_HEADER_LEN: usize = 1024;
/// Longest `kid` accepted; also bounds what the negative cache stores.
pub(crate) const MAX_KID_LEN: usize = 256;

/// The three parts of a compact JWS.
pub(crate) struct Parts<'t> {
    pub header: &'t str,
    pub payload: &'t str,
    pub signature: &'t str,
    /// `header.payload`, the JWS signing input.
    pub signing_input: &'t str,
}

pub(crate) fn split(token: &str) -> Result<Parts<'_>, VerifyError> {
    if token.len() > MAX_TOKEN_LEN {
        return Err(VerifyError::Malformed);
    }
    let (signing_input, signature) = token.rsplit_once('.').ok_or(VerifyError::Malformed)?;
    let (header, payload) = signing_input
        .split_once('.')
        .ok_or(VerifyError::Malformed)?;
    // Exactly three parts: a JWE (five) or anything else is refused.
    if header.is_empty() || payload.is_empty() || signature.is_empty() || payload.contains('.') {
        return Err(VerifyError::Malformed);
    }
    Ok(Parts {
        header,
        payload,
        signature,
        signing_input,
    })
}

/// The JOSE header members that matter, borrowed from the decoded bytes.
/// Members whose mere presence is refused are read as `IgnoredAny`.
#[derive(Deserialize)]
struct RawHeader<'a> {
    #[serde(borrow)]
    alg: Cow<'a, str>,
    #[serde(borrow, default)]
    kid: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    typ: Option<Cow<'a, str>>,
    #[serde(default)]
    jwk: Option<IgnoredAny>,
    #[serde(default)]
    jku: Option<IgnoredAny>,
    #[serde(default)]
    x5u: Option<IgnoredAny>,
    #[serde(default)]
    x5c: Option<IgnoredAny>,
    #[serde(default)]
    crit: Option<IgnoredAny>,
}

/// A header that passed every check that needs no key.
pub(crate) struct Header<'a> {
    pub alg: Algorithm,
    pub kid: Cow<'a, str>,
}

/// A stack buffer for the decoded header.
pub(crate) type HeaderBuf = [u8; MAX_HEADER_LEN];

pub(crate) fn new_header_buf() -> HeaderBuf {
    [0; MAX_HEADER_LEN]
}

/// Decodes and checks the header (RFC 8725 §3.1, RFC 9068 §4).
pub(crate) fn parse_header<'b>(
    encoded: &str,
    buf: &'b mut HeaderBuf,
) -> Result<Header<'b>, VerifyError> {
    if encoded.len() > MAX_HEADER_LEN * 4 / 3 {
        return Err(VerifyError::Malformed);
    }
    let len = B64
        .decode_slice(encoded, buf)
        .map_err(|_| VerifyError::Malformed)?;
    let raw: RawHeader<'b> =
        serde_json::from_slice(&buf[..len]).map_err(|_| VerifyError::Malformed)?;
    // RFC 9068 §4: `typ` is `at+jwt`; media types compare case-insensitively
    // and may carry the `application/` prefix (RFC 7515 §4.1.9).
    let typ_ok = raw.typ.as_deref().is_some_and(|t| {
        t.eq_ignore_ascii_case("at+jwt") || t.eq_ignore_ascii_case("application/at+jwt")
    });
    if !typ_ok {
        return Err(VerifyError::BadHeader("typ must be at+jwt"));
    }
    // Keys come only from the issuer's JWKS, never from the token itself.
    if raw.jwk.is_some() || raw.jku.is_some() || raw.x5u.is_some() || raw.x5c.is_some() {
        return Err(VerifyError::BadHeader(
            "embedded or referenced keys are not accepted",
        ));
    }
    // RFC 7515 §4.1.11: no extension is understood, so any `crit` is fatal.
    if raw.crit.is_some() {
        return Err(VerifyError::BadHeader(
            "no critical header extensions are understood",
        ));
    }
    let alg = match Algorithm::from_name(&raw.alg) {
        Some(alg) => alg,
        None => {
            return Err(VerifyError::BadHeader(
                "alg must be RS256 or EdDSA (none and HMAC are never accepted)",
            ));
        }
    };
    let kid = raw.kid.ok_or(VerifyError::BadHeader("kid is required"))?;
    if kid.is_empty() || kid.len() > MAX_KID_LEN {
        return Err(VerifyError::BadHeader("kid is empty or too long"));
    }
    Ok(Header { alg, kid })
}

/// Decodes the payload into claims. A buffer on the stack holds the JSON.
pub(crate) fn parse_claims(encoded: &str) -> Result<Claims, VerifyError> {
    let mut buf = [0u8; MAX_TOKEN_LEN * 3 / 4];
    let len = B64
        .decode_slice(encoded, &mut buf)
        .map_err(|_| VerifyError::Malformed)?;
    serde_json::from_slice(&buf[..len]).map_err(|_| VerifyError::InvalidClaims)
}

/// What the claims are checked against.
#[derive(Debug, Clone)]
pub(crate) struct Policy {
    pub issuer: String,
    pub audiences: Vec<String>,
    pub leeway: i64,
}

/// RFC 9068 §4 steps 3-8 (the signature and `typ` are checked elsewhere).
pub(crate) fn check_claims(claims: &Claims, policy: &Policy, now: i64) -> Result<(), VerifyError> {
    if claims.iss != policy.issuer {
        return Err(VerifyError::WrongIssuer);
    }
    let audience_ok = claims
        .aud
        .iter()
        .any(|a| policy.audiences.iter().any(|p| p == a));
    if !audience_ok {
        return Err(VerifyError::WrongAudience);
    }
    if now >= claims.exp.saturating_add(policy.leeway) {
        return Err(VerifyError::Expired);
    }
    let not_before = claims.nbf.unwrap_or(claims.iat).max(claims.iat);
    if not_before > now.saturating_add(policy.leeway) {
        return Err(VerifyError::NotYetValid);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(json: &str) -> Result<(Algorithm, String), VerifyError> {
        let mut buf = new_header_buf();
        let encoded = B64.encode(json);
        parse_header(&encoded, &mut buf).map(|h| (h.alg, h.kid.into_owned()))
    }

    #[test]
    fn a_sigil_header_is_accepted() {
        let parsed = header(r#"{"alg":"EdDSA","kid":"k1","typ":"at+jwt"}"#).unwrap();
        assert_eq!(parsed, (Algorithm::EdDSA, "k1".to_string()));
        let media = header(r#"{"alg":"RS256","kid":"k","typ":"Application/AT+JWT"}"#);
        assert!(media.is_ok());
    }

    #[test]
    fn dangerous_headers_are_refused() {
        for (json, why) in [
            (r#"{"alg":"none","kid":"k","typ":"at+jwt"}"#, "alg none"),
            (r#"{"alg":"HS256","kid":"k","typ":"at+jwt"}"#, "HMAC"),
            (
                r#"{"alg":"ES256","kid":"k","typ":"at+jwt"}"#,
                "unsupported alg",
            ),
            (r#"{"alg":"RS256","kid":"k","typ":"JWT"}"#, "typ JWT"),
            (r#"{"alg":"RS256","kid":"k"}"#, "no typ"),
            (r#"{"alg":"RS256","typ":"at+jwt"}"#, "no kid"),
            (
                r#"{"alg":"RS256","kid":"k","typ":"at+jwt","jwk":{}}"#,
                "jwk",
            ),
            (
                r#"{"alg":"RS256","kid":"k","typ":"at+jwt","jku":"x"}"#,
                "jku",
            ),
            (
                r#"{"alg":"RS256","kid":"k","typ":"at+jwt","x5u":"x"}"#,
                "x5u",
            ),
            (
                r#"{"alg":"RS256","kid":"k","typ":"at+jwt","x5c":[]}"#,
                "x5c",
            ),
            (
                r#"{"alg":"RS256","kid":"k","typ":"at+jwt","crit":["b64"],"b64":false}"#,
                "crit",
            ),
            (
                r#"{"alg":"RS256","alg":"none","kid":"k","typ":"at+jwt"}"#,
                "duplicate alg",
            ),
            ("not json", "garbage"),
        ] {
            assert!(header(json).is_err(), "{why}");
        }
    }

    #[test]
    fn tokens_must_have_exactly_three_parts() {
        assert!(split("a.b.c").is_ok());
        for bad in ["a.b", "a.b.c.d", "a..c", ".b.c", "a.b.", "abc", ""] {
            assert!(split(bad).is_err(), "{bad}");
        }
        assert!(split(&"a.b.".repeat(MAX_TOKEN_LEN)).is_err());
    }

    fn claims(exp: i64, nbf: Option<i64>) -> Claims {
        Claims {
            iss: "https://sigil".into(),
            sub: "u".into(),
            aud: vec!["api".into()],
            exp,
            iat: nbf.unwrap_or(0),
            nbf,
            jti: "j".into(),
            client_id: "c".into(),
            scope: None,
            sid: None,
            acr: None,
            amr: Vec::new(),
            cnf: None,
            act: None,
        }
    }

    #[test]
    fn time_claims_are_checked_with_the_leeway() {
        let policy = Policy {
            issuer: "https://sigil".into(),
            audiences: vec!["api".into()],
            leeway: 30,
        };
        assert_eq!(check_claims(&claims(1000, Some(100)), &policy, 500), Ok(()));
        assert_eq!(check_claims(&claims(1000, None), &policy, 1029), Ok(()));
        assert_eq!(
            check_claims(&claims(1000, None), &policy, 1030),
            Err(VerifyError::Expired)
        );
        assert_eq!(check_claims(&claims(1000, Some(530)), &policy, 500), Ok(()));
        assert_eq!(
            check_claims(&claims(1000, Some(531)), &policy, 500),
            Err(VerifyError::NotYetValid)
        );
        let mut other = claims(1000, None);
        other.aud = vec!["elsewhere".into()];
        assert_eq!(
            check_claims(&other, &policy, 0),
            Err(VerifyError::WrongAudience)
        );
        other.iss = "https://evil".into();
        assert_eq!(
            check_claims(&other, &policy, 0),
            Err(VerifyError::WrongIssuer)
        );
    }
}
