//! What an operator sets for login throttling.

use std::time::Duration;

use serde::Deserialize;

/// Login throttling (the `[throttle]` config section). Failures are counted per
/// address-and-account pair and per account, over `window`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ThrottleConfig {
    /// Off only for benchmarks and tests of other things.
    pub enabled: bool,
    /// Failures from one address against one account answered without
    /// delay; each further one waits twice as long as the last (from
    /// 250 ms, at most `max_delay`).
    pub pair_free_failures: u32,
    /// Failures from one address against one account that lock that pair
    /// out for `lockout`.
    pub pair_limit: u32,
    /// Failures against one account from every address that lock the
    /// account out for `lockout`: high, so that locking a victim out takes
    /// many addresses, and short-lived.
    pub account_limit: u32,
    #[serde(with = "humantime_serde")]
    pub window: Duration,
    #[serde(with = "humantime_serde")]
    pub lockout: Duration,
    #[serde(with = "humantime_serde")]
    pub max_delay: Duration,
    /// Registrations per client address per `window` (0: unlimited).
    pub registrations_per_address: u32,
}

impl Default for ThrottleConfig {
    fn default() -> Self {
        ThrottleConfig {
            enabled: true,
            pair_free_failures: 3,
            pair_limit: 10,
            account_limit: 100,
            window: Duration::from_secs(15 * 60),
            lockout: Duration::from_secs(5 * 60),
            max_delay: Duration::from_secs(2),
            registrations_per_address: 20,
        }
    }
}
