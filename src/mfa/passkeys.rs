//! Passkeys (WebAuthn Level 3) through webauthn-rs: the relying party Sigil
//! is, derived from the issuer, and what a ceremony's state looks like
//! stored between its two requests. The ceremonies themselves, which need
//! the store, are `oauth::passkey`'s.
//!
//! The relying party id is the issuer's host, the only origin accepted is
//! the issuer's own, and user verification is required: a passkey sign-in
//! is two factors by itself (possession, and a PIN or biometric).

use serde::{Deserialize, Serialize};
pub use webauthn_rs::Webauthn;
pub use webauthn_rs::prelude::{
    CreationChallengeResponse, DiscoverableAuthentication, Passkey, PasskeyRegistration,
    PublicKeyCredential, RegisterPublicKeyCredential, RequestChallengeResponse, Url, WebauthnError,
};

/// How long a page has to finish a ceremony it started.
pub const CEREMONY_TTL: i64 = 300;

/// The most passkeys one user may register.
pub const MAX_PER_USER: usize = 20;

/// The relying party for `issuer`: its host as the RP id, its origin as the
/// one allowed origin, `name` shown by the browser.
pub fn relying_party(issuer: &str, name: &str) -> Result<Webauthn, String> {
    let url = Url::parse(issuer).map_err(|e| format!("the issuer is not a URL: {e}"))?;
    let host = url.host_str().ok_or("the issuer has no host")?.to_string();
    let origin = Url::parse(&url.origin().ascii_serialization())
        .map_err(|e| format!("the issuer has no origin: {e}"))?;
    webauthn_rs::WebauthnBuilder::new(&host, &origin)
        .and_then(|b| b.rp_name(name).build())
        .map_err(|e| format!("passkeys cannot work with issuer {issuer}: {e}"))
}

/// What a ceremony in flight keeps between its start and finish.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "purpose", rename_all = "snake_case")]
pub enum Ceremony {
    /// A signed-in user adding a passkey.
    Register { state: PasskeyRegistration },
    /// Someone signing in with whichever passkey they pick.
    SignIn { state: DiscoverableAuthentication },
    /// A new account with a passkey and no password.
    SignUp {
        state: PasskeyRegistration,
        user_id: String,
        username: String,
        email: String,
    },
}

impl Ceremony {
    pub fn purpose(&self) -> &'static str {
        match self {
            Ceremony::Register { .. } => "register",
            Ceremony::SignIn { .. } => "sign_in",
            Ceremony::SignUp { .. } => "sign_up",
        }
    }
}

/// A passkey's display name: trimmed, 1 to 64 characters, no control
/// characters.
pub fn parse_name(text: &str) -> Result<String, String> {
    let name = text.trim();
    let ok = (1..=64).contains(&name.chars().count()) && !name.chars().any(char::is_control);
    if ok {
        Ok(name.to_string())
    } else {
        Err("a passkey's name is 1 to 64 characters".into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_relying_party_is_the_issuers_host() {
        assert!(relying_party("https://id.example.com", "Sigil").is_ok());
        assert!(relying_party("http://localhost:8080", "Sigil").is_ok());
        assert!(relying_party("not a url", "Sigil").is_err());
    }

    #[test]
    fn names_are_trimmed_and_bounded() {
        assert_eq!(parse_name("  Phone ").unwrap(), "Phone");
        assert!(parse_name("   ").is_err());
        assert!(parse_name(&"x".repeat(65)).is_err());
        assert!(parse_name("a\u{7}b").is_err());
    }
}
