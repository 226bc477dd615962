//! A client's own token lifetimes, bounded by the server's.

use std::time::Duration;

use super::ClientError;

/// A client's own token lifetimes; `None` means the server's.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Lifetimes {
    /// Access-token lifetime: 10 s up to the server's `access_token_ttl`.
    pub access_token: Option<Duration>,
    /// How long a login's refresh tokens work (they also expire after
    /// `refresh_idle_ttl` unused): 1 min up to `refresh_absolute_ttl`.
    pub refresh_token: Option<Duration>,
}

/// The shortest lifetimes a client may choose (the same floors as the
/// server's own settings).
pub const MIN_ACCESS_TOKEN_TTL: Duration = Duration::from_secs(10);
pub const MIN_REFRESH_TOKEN_TTL: Duration = Duration::from_secs(60);

impl Lifetimes {
    /// Refuses a lifetime longer than the server's. An access token may not
    /// outlive `access_token_ttl` because key retirement and deny-list
    /// entries are timed by it: a longer-lived token would outlast its
    /// key's publication and its own revocation. A login may not outlive
    /// `refresh_absolute_ttl`, the promise operators make about sessions.
    pub fn check(&self, max: &Lifetimes) -> Result<(), ClientError> {
        let human = |d: Duration| humantime::format_duration(d).to_string();
        for own in [self.access_token, self.refresh_token]
            .into_iter()
            .flatten()
        {
            if own.subsec_nanos() != 0 {
                return Err(ClientError::Invalid(format!(
                    "token lifetimes are whole seconds; {} is not",
                    human(own)
                )));
            }
        }
        if let Some(own) = self.access_token {
            let max = max.access_token.unwrap_or(Duration::MAX);
            if own < MIN_ACCESS_TOKEN_TTL || own > max {
                return Err(ClientError::Invalid(format!(
                    "access_token_ttl must be between {} and the server's access_token_ttl ({}); {} is not",
                    human(MIN_ACCESS_TOKEN_TTL),
                    human(max),
                    human(own)
                )));
            }
        }
        if let Some(own) = self.refresh_token {
            let max = max.refresh_token.unwrap_or(Duration::MAX);
            if own < MIN_REFRESH_TOKEN_TTL || own > max {
                return Err(ClientError::Invalid(format!(
                    "refresh_token_ttl must be between {} and the server's refresh_absolute_ttl ({}); {} is not",
                    human(MIN_REFRESH_TOKEN_TTL),
                    human(max),
                    human(own)
                )));
            }
        }
        Ok(())
    }
}
