//! Sign-in beyond passwords: TOTP authenticators (RFC 6238) with recovery
//! codes, and passkeys (WebAuthn). This module holds what needs no store:
//! the algorithms, the relying party, the settings. Checking a code or
//! finishing a ceremony against a user's stored factors is `oauth::mfa`
//! and `oauth::passkey`'s; adding and removing factors is
//! `service::factors`'.

pub mod passkeys;
pub mod recovery;
pub mod settings;
pub mod totp;

pub use settings::MfaConfig;
