//! The checked settings a [`Verifier`](crate::Verifier) starts from: what
//! [`VerifierBuilder::build`](crate::VerifierBuilder::build) hands over
//! once every setting has passed its checks.

use std::sync::Arc;
use std::time::Duration;

use crate::clock::Clock;
use crate::fail_mode::FailMode;
use crate::feed_auth::Credentials;
use crate::token::Policy;

/// Poll interval when neither the builder nor the feed names one.
pub(crate) const DEFAULT_POLL: Duration = Duration::from_secs(5);

/// Checked settings, ready to start from.
pub(crate) struct Settings {
    pub(crate) policy: Policy,
    pub(crate) jwks_uri: Option<String>,
    pub(crate) static_jwks: Option<Vec<u8>>,
    pub(crate) feed: Option<(String, Credentials)>,
    pub(crate) poll_interval: Option<Duration>,
    pub(crate) staleness_bound: Duration,
    pub(crate) fail_mode: FailMode,
    pub(crate) refetch_cooldown: Duration,
    pub(crate) negative_cache_ttl: Duration,
    pub(crate) realm: String,
    /// Where the service is reached, for DPoP proofs' `htu` (`None`: bound
    /// tokens are refused).
    pub(crate) dpop_url: Option<String>,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) http: reqwest::Client,
}

impl Settings {
    pub(crate) fn base_url(&self) -> &str {
        self.policy.issuer.trim_end_matches('/')
    }
}
