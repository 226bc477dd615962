//! The error codes of RFC 6749 §5.2. The http layer renders them as the
//! RFC's JSON body with the matching status and headers.

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OAuthError {
    /// Missing, repeated or malformed parameter.
    #[error("invalid_request: {0}")]
    InvalidRequest(String),
    /// Client authentication failed (unknown client, no or wrong secret).
    #[error("invalid_client: {0}")]
    InvalidClient(String),
    /// The grant (credentials, refresh token) is invalid, expired or revoked.
    #[error("invalid_grant: {0}")]
    InvalidGrant(String),
    /// The client may not use this grant type.
    #[error("unauthorized_client: {0}")]
    UnauthorizedClient(String),
    #[error("unsupported_grant_type: {0}")]
    UnsupportedGrantType(String),
    #[error("unsupported_token_type: {0}")]
    UnsupportedTokenType(String),
    /// The requested scope is malformed or exceeds what is allowed.
    #[error("invalid_scope: {0}")]
    InvalidScope(String),
    /// An internal failure; the detail is logged, never sent.
    #[error("server_error: {0}")]
    ServerError(String),
    /// A dependency (the database) is down; the client may retry.
    #[error("temporarily_unavailable: {0}")]
    TemporarilyUnavailable(String),
    /// RFC 8628 §3.5: the user has not yet decided; poll again.
    #[error("authorization_pending: {0}")]
    AuthorizationPending(String),
    /// RFC 8628 §3.5: polling too fast; the interval grows by 5 seconds.
    #[error("slow_down: {0}")]
    SlowDown(String),
    /// RFC 8628 §3.5: the user declined.
    #[error("access_denied: {0}")]
    AccessDenied(String),
    /// RFC 8628 §3.5: the device code expired; start over.
    #[error("expired_token: {0}")]
    ExpiredToken(String),
    /// RFC 9449 §5: the DPoP proof is missing where required, or invalid.
    #[error("invalid_dpop_proof: {0}")]
    InvalidDpopProof(String),
    /// RFC 9449 §8: the proof must carry the nonce of `DPoP-Nonce`.
    #[error("use_dpop_nonce: {0}")]
    UseDpopNonce(String),
    /// RFC 8693 §2.2.2: the audience or resource may not be targeted.
    #[error("invalid_target: {0}")]
    InvalidTarget(String),
}

impl OAuthError {
    pub fn code(&self) -> &'static str {
        match self {
            OAuthError::InvalidRequest(_) => "invalid_request",
            OAuthError::InvalidClient(_) => "invalid_client",
            OAuthError::InvalidGrant(_) => "invalid_grant",
            OAuthError::UnauthorizedClient(_) => "unauthorized_client",
            OAuthError::UnsupportedGrantType(_) => "unsupported_grant_type",
            OAuthError::UnsupportedTokenType(_) => "unsupported_token_type",
            OAuthError::InvalidScope(_) => "invalid_scope",
            OAuthError::ServerError(_) => "server_error",
            OAuthError::TemporarilyUnavailable(_) => "temporarily_unavailable",
            OAuthError::AuthorizationPending(_) => "authorization_pending",
            OAuthError::SlowDown(_) => "slow_down",
            OAuthError::AccessDenied(_) => "access_denied",
            OAuthError::ExpiredToken(_) => "expired_token",
            OAuthError::InvalidDpopProof(_) => "invalid_dpop_proof",
            OAuthError::UseDpopNonce(_) => "use_dpop_nonce",
            OAuthError::InvalidTarget(_) => "invalid_target",
        }
    }

    /// The human-readable `error_description`, safe to send.
    pub fn description(&self) -> &str {
        match self {
            OAuthError::ServerError(_) => "the server encountered an internal error",
            OAuthError::InvalidRequest(d)
            | OAuthError::InvalidClient(d)
            | OAuthError::InvalidGrant(d)
            | OAuthError::UnauthorizedClient(d)
            | OAuthError::UnsupportedGrantType(d)
            | OAuthError::UnsupportedTokenType(d)
            | OAuthError::InvalidScope(d)
            | OAuthError::TemporarilyUnavailable(d)
            | OAuthError::AuthorizationPending(d)
            | OAuthError::SlowDown(d)
            | OAuthError::AccessDenied(d)
            | OAuthError::ExpiredToken(d)
            | OAuthError::InvalidDpopProof(d)
            | OAuthError::UseDpopNonce(d)
            | OAuthError::InvalidTarget(d) => d,
        }
    }
}

impl From<crate::store::StoreError> for OAuthError {
    fn from(e: crate::store::StoreError) -> Self {
        match e {
            crate::store::StoreError::Unavailable(detail) => {
                tracing::warn!(%detail, "database unavailable");
                OAuthError::TemporarilyUnavailable(
                    "the database is unavailable; retry shortly".into(),
                )
            }
            other => OAuthError::ServerError(other.to_string()),
        }
    }
}
