//! The fail mode: what a verifier does once Sigil has been unreachable for
//! too long. A leaf module, so the errors, the stats and the configuration
//! can all name it.

/// What to do when Sigil has been unreachable for longer than the
/// staleness bound, so revocations (or key removals) may have been missed.
///
/// ```
/// use sigil_verify::FailMode;
/// assert_eq!(FailMode::default(), FailMode::Closed);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum FailMode {
    /// Refuse every token with [`VerifyError::Unavailable`](crate::VerifyError::Unavailable)
    /// (HTTP 503) until Sigil answers again. The safe default.
    #[default]
    Closed,
    /// Keep accepting tokens that verify against the cached keys, logging
    /// and counting each one ([`Stats::fail_open_accepts`](crate::Stats::fail_open_accepts)).
    Open,
}
