//! How a user proved who they are: the RFC 8176 `amr` values of a sign-in
//! and the authentication context class (`acr`) they add up to. Browser
//! sessions, authorization codes, device codes and refresh families record
//! both; ID tokens and access tokens carry them, so relying parties and
//! resource services see how the user authenticated.
//!
//! The classes are ordered, weakest first:
//!
//! | `acr` | what it takes | `amr` |
//! |---|---|---|
//! | `urn:sigil:acr:1fa` | a password | `pwd` |
//! | `urn:sigil:acr:mfa` | a password and a TOTP or recovery code | `pwd otp mfa` |
//! | `phr` | a synced passkey with user verification | `swk user mfa` |
//! | `phrh` | a device-bound passkey with user verification | `hwk user mfa` |
//!
//! `phr` and `phrh` are OpenID's registered values (OpenID Enterprise
//! Extensions, "phishing-resistant" and "phishing-resistant,
//! hardware-protected"). A request's `acr_values` asks for at least the
//! weakest class it names that Sigil knows; a client or the server may
//! require `urn:sigil:acr:mfa` or better.

use std::fmt;

/// An authentication context class, weakest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Acr {
    OneFactor,
    MultiFactor,
    PhishingResistant,
    PhishingResistantHardware,
}

impl Acr {
    pub const ALL: [Acr; 4] = [
        Acr::OneFactor,
        Acr::MultiFactor,
        Acr::PhishingResistant,
        Acr::PhishingResistantHardware,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Acr::OneFactor => "urn:sigil:acr:1fa",
            Acr::MultiFactor => "urn:sigil:acr:mfa",
            Acr::PhishingResistant => "phr",
            Acr::PhishingResistantHardware => "phrh",
        }
    }

    pub fn parse(text: &str) -> Option<Acr> {
        Acr::ALL.into_iter().find(|a| a.as_str() == text)
    }

    /// The class an `acr_values` request parameter asks for at least: the
    /// weakest of the values Sigil knows (OIDC Core §3.1.2.1 lists them in
    /// order of preference; any of them satisfies the request). `None` when
    /// it names none Sigil knows.
    pub fn requested(acr_values: &str) -> Option<Acr> {
        acr_values.split(' ').filter_map(Acr::parse).min()
    }
}

impl fmt::Display for Acr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What the user presented, one factor at a time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Factor {
    Password,
    /// A TOTP code, or a recovery code (also a one-time password).
    OneTimeCode,
    /// A passkey with user verification; `synced` when backup eligible.
    Passkey {
        synced: bool,
    },
}

/// How one sign-in was authenticated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authn {
    /// RFC 8176 values, in the order they were earned.
    pub amr: Vec<String>,
    pub acr: Acr,
}

impl Authn {
    /// A sign-in with `factor` alone.
    pub fn with(factor: Factor) -> Authn {
        match factor {
            Factor::Password | Factor::OneTimeCode => Authn {
                amr: vec![amr_of(factor).to_string()],
                acr: Acr::OneFactor,
            },
            Factor::Passkey { synced } => Authn {
                amr: vec![amr_of(factor).into(), "user".into(), "mfa".into()],
                acr: if synced {
                    Acr::PhishingResistant
                } else {
                    Acr::PhishingResistantHardware
                },
            },
        }
    }

    /// This sign-in with a second factor added (RFC 8176 `mfa`).
    pub fn and(&self, factor: Factor) -> Authn {
        let added = Authn::with(factor);
        if matches!(factor, Factor::Passkey { .. }) {
            return added;
        }
        let mut amr = self.amr.clone();
        let value = amr_of(factor).to_string();
        if !amr.contains(&value) {
            amr.push(value);
        }
        let distinct = amr.iter().filter(|v| *v != "mfa").count();
        if distinct >= 2 && !amr.iter().any(|v| v == "mfa") {
            amr.push("mfa".into());
        }
        let acr = if distinct >= 2 {
            self.acr.max(Acr::MultiFactor)
        } else {
            self.acr
        };
        Authn { amr, acr }
    }

    /// The `amr` values as stored (space-separated).
    pub fn amr_text(&self) -> String {
        self.amr.join(" ")
    }

    /// Reads what a session, code or family stored. An unknown `acr` (a
    /// row written by a newer Sigil) counts as the weakest class.
    pub fn stored(amr: &str, acr: &str) -> Authn {
        Authn {
            amr: amr
                .split(' ')
                .filter(|v| !v.is_empty())
                .map(String::from)
                .collect(),
            acr: Acr::parse(acr).unwrap_or(Acr::OneFactor),
        }
    }

    /// Whether this sign-in used more than one factor (or a passkey).
    pub fn is_multi_factor(&self) -> bool {
        self.acr >= Acr::MultiFactor
    }
}

fn amr_of(factor: Factor) -> &'static str {
    match factor {
        Factor::Password => "pwd",
        Factor::OneTimeCode => "otp",
        Factor::Passkey { synced: true } => "swk",
        Factor::Passkey { synced: false } => "hwk",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_password_and_a_code_make_mfa() {
        let pwd = Authn::with(Factor::Password);
        assert_eq!(pwd.amr, ["pwd"]);
        assert_eq!(pwd.acr, Acr::OneFactor);
        let both = pwd.and(Factor::OneTimeCode);
        assert_eq!(both.amr, ["pwd", "otp", "mfa"]);
        assert_eq!(both.acr, Acr::MultiFactor);
        // The same factor twice is still one factor.
        assert_eq!(pwd.and(Factor::Password), pwd);
    }

    #[test]
    fn a_passkey_is_phishing_resistant_on_its_own() {
        let synced = Authn::with(Factor::Passkey { synced: true });
        assert_eq!(synced.amr, ["swk", "user", "mfa"]);
        assert_eq!(synced.acr, Acr::PhishingResistant);
        let bound = Authn::with(Factor::Password).and(Factor::Passkey { synced: false });
        assert_eq!(bound.amr, ["hwk", "user", "mfa"]);
        assert_eq!(bound.acr, Acr::PhishingResistantHardware);
        assert!(bound.is_multi_factor());
    }

    #[test]
    fn acr_values_ask_for_the_weakest_known_class() {
        assert_eq!(
            Acr::requested("phr urn:sigil:acr:mfa"),
            Some(Acr::MultiFactor)
        );
        assert_eq!(
            Acr::requested("phrh something-else"),
            Some(Acr::PhishingResistantHardware)
        );
        assert_eq!(Acr::requested("0 1 2"), None);
        assert_eq!(Acr::requested(""), None);
    }

    #[test]
    fn stored_values_read_back() {
        let a = Authn::stored("pwd otp mfa", "urn:sigil:acr:mfa");
        assert_eq!(a, Authn::with(Factor::Password).and(Factor::OneTimeCode));
        assert_eq!(Authn::stored("pwd", "bogus").acr, Acr::OneFactor);
    }
}
