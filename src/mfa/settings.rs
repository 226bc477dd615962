//! `[mfa]` in the configuration.

use std::time::Duration;

use serde::Deserialize;

/// Second factors and passkeys.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MfaConfig {
    /// Every user must sign in with a second factor: a passkey, or a TOTP
    /// code after the password (per client: `--require-mfa`). A user with
    /// none is asked to set up an authenticator at sign-in.
    pub required: bool,
    /// Whether the sign-up page offers accounts with a passkey and no
    /// password.
    pub passkey_only_accounts: bool,
    /// How recently a user must have signed in to change how they sign in
    /// (add or remove an authenticator or a passkey, new recovery codes):
    /// a stolen session cookie alone cannot add the thief's passkey.
    #[serde(with = "humantime_serde")]
    pub reauth_window: Duration,
    /// The name authenticator apps show next to the code; the branding's
    /// product name when unset.
    pub totp_issuer: Option<String>,
}

impl Default for MfaConfig {
    fn default() -> Self {
        MfaConfig {
            required: false,
            passkey_only_accounts: false,
            reauth_window: Duration::from_secs(15 * 60),
            totp_issuer: None,
        }
    }
}
