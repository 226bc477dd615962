//! `[dpop]` in the configuration.

use std::time::Duration;

use serde::Deserialize;

/// Sender-constrained tokens (RFC 9449).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DpopConfig {
    /// Every DPoP proof must carry a nonce Sigil issued (§8): a proof
    /// without one is answered `use_dpop_nonce` with a fresh nonce in the
    /// `DPoP-Nonce` header. Shortens how long a proof made in advance
    /// (by malware on the client, say) stays usable.
    pub require_nonce: bool,
    /// How far a proof's `iat` may be from Sigil's clock (§11.1); a proof
    /// older than this is refused, and its `jti` is remembered this long.
    #[serde(with = "humantime_serde")]
    pub proof_max_age: Duration,
}

impl Default for DpopConfig {
    fn default() -> Self {
        DpopConfig {
            require_nonce: false,
            proof_max_age: Duration::from_secs(60),
        }
    }
}
