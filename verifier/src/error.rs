//! What can go wrong: building a verifier, and verifying one token.

use std::fmt;
use std::time::Duration;

use crate::fail_mode::FailMode;

/// Why a token was not accepted.
///
/// Every variant but [`VerifyError::Unavailable`] says the token itself is
/// not acceptable (RFC 6750 `invalid_token`, HTTP 401). `Unavailable` says
/// the verifier cannot currently tell, because Sigil has been unreachable
/// for longer than the staleness bound and the fail mode is
/// [`FailMode::Closed`] (HTTP 503).
///
/// The messages name no token content, so they are safe to send to clients
/// as an `error_description`.
///
/// ```
/// use sigil_verify::VerifyError;
/// assert_eq!(VerifyError::Expired.to_string(), "the token has expired");
/// assert!(!VerifyError::Expired.is_unavailable());
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum VerifyError {
    /// Not a compact JWS of three base64url parts, or too large.
    #[error("the token is malformed")]
    Malformed,
    /// The JOSE header is refused: wrong `typ`, an embedded or referenced
    /// key (`jwk`, `jku`, `x5u`, `x5c`), a `crit` member, no `kid`, or an
    /// algorithm that is never accepted (`none`, HMAC).
    #[error("the token header is not acceptable: {0}")]
    BadHeader(&'static str),
    /// The header's `alg` differs from the `alg` of the key its `kid` names
    /// (RFC 8725 §3.1: the key decides, never the token).
    #[error("the token's alg does not match its key")]
    AlgorithmMismatch,
    /// No published key has the token's `kid`, even after a re-fetch.
    #[error("the token was not signed by a key of this issuer")]
    UnknownKey,
    /// The signature does not verify with the key.
    #[error("the token signature is invalid")]
    BadSignature,
    /// The payload is not JSON claims with every claim RFC 9068 requires.
    #[error("the token's claims are malformed or incomplete")]
    InvalidClaims,
    /// `iss` is not the configured issuer.
    #[error("the token was issued by another issuer")]
    WrongIssuer,
    /// No `aud` is an audience this verifier accepts.
    #[error("the token is not intended for this audience")]
    WrongAudience,
    /// `exp` has passed (beyond the leeway).
    #[error("the token has expired")]
    Expired,
    /// `nbf` or `iat` is in the future (beyond the leeway).
    #[error("the token is not yet valid")]
    NotYetValid,
    /// The revocation feed lists the token, its session, its user (for
    /// tokens issued before the user's "not before"), or its key.
    #[error("the token has been revoked")]
    Revoked(RevokedBy),
    /// Sigil has been unreachable for longer than the staleness bound and
    /// the verifier fails closed.
    #[error("tokens cannot be verified right now: {0}")]
    Unavailable(Staleness),
    /// The token is bound to a DPoP key (RFC 9449): it is good only with a
    /// proof, through [`Verifier::verify_dpop`](crate::Verifier::verify_dpop)
    /// (the `DPoP` scheme), never as a bearer token.
    #[error("the token is bound to a DPoP key: present it with the DPoP scheme and a proof")]
    DpopRequired,
    /// The `DPoP` scheme with a token bound to no key.
    #[error("the token is not bound to a DPoP key: present it as a bearer token")]
    NotDpopBound,
    /// The DPoP proof is missing, malformed, by another key, for another
    /// request or token, too old, or replayed.
    #[error("the DPoP proof is not acceptable: {0}")]
    InvalidDpopProof(String),
}

impl VerifyError {
    /// True for [`VerifyError::Unavailable`]: not the token's fault, so a
    /// service answers 503 rather than 401.
    pub fn is_unavailable(&self) -> bool {
        matches!(self, VerifyError::Unavailable(_))
    }
}

/// Which revocation feed entry matched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum RevokedBy {
    /// The token's own `jti` was revoked (RFC 7009).
    Token,
    /// Its login session (`sid`) was revoked.
    Session,
    /// Its user was logged out everywhere, changed password or was
    /// disabled after the token was issued.
    User,
    /// Its signing key was removed in an emergency rotation.
    Key,
}

/// How long Sigil has been out of reach, and what was missed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Staleness {
    /// What could not be refreshed.
    pub source: StaleSource,
    /// Time since the last successful contact.
    pub since: Duration,
    /// The fail mode that applied.
    pub fail_mode: FailMode,
}

/// The part of Sigil's published state that is out of date.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum StaleSource {
    /// The revocation feed has not answered within the staleness bound.
    RevocationFeed,
    /// The JWKS is past its `max-age` plus the allowed stale period.
    Jwks,
}

impl fmt::Display for Staleness {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let what = match self.source {
            StaleSource::RevocationFeed => "the revocation feed",
            StaleSource::Jwks => "the JWKS",
        };
        let mode = match self.fail_mode {
            FailMode::Closed => "closed",
            FailMode::Open => "open",
        };
        write!(
            f,
            "{what} has been unreachable for {}s (fail mode: {mode})",
            self.since.as_secs()
        )
    }
}

/// Why [`VerifierBuilder::build`](crate::VerifierBuilder::build) failed.
/// Every message names the setting or URL at fault.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BuildError {
    /// A setting is missing or invalid.
    #[error("sigil-verify configuration: {0}")]
    Config(String),
    /// The RFC 8414 metadata could not be fetched or does not match.
    #[error("discovering Sigil at {url}: {reason}")]
    Discovery {
        /// The metadata URL.
        url: String,
        /// What went wrong.
        reason: String,
    },
    /// The JWKS could not be fetched or parsed.
    #[error("fetching the JWKS from {url}: {reason}")]
    Jwks {
        /// The JWKS URL.
        url: String,
        /// What went wrong.
        reason: String,
    },
    /// The first read of the revocation feed failed.
    #[error("reading the revocation feed at {url}: {reason}")]
    RevocationFeed {
        /// The feed URL.
        url: String,
        /// What went wrong.
        reason: String,
    },
}
