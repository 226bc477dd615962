//! Signing keys: generation, encryption at rest, the lifecycle schedule, and
//! the in-memory keyring that signs tokens and renders the JWKS.
//!
//! A key's state is a pure function of its stored times and `now`
//! ([`KeyState::at`]), so every node reading the same rows agrees on which key
//! signs without any coordination beyond the database.
//!
//! Private keys are decrypted once, parsed into `ring` key pairs and kept in
//! memory; they are never written anywhere in plaintext and never logged.

mod generate;
mod jwk;
mod kek;
mod keyring;
mod lifecycle;
pub mod ops;
pub mod schedule;

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

pub use generate::{GenerateError, GeneratedKey, generate};
pub use jwk::thumbprint;
pub use kek::{Kek, KekError};
pub use keyring::{KeySet, Keyring, KeyringError, SCHEDULER_PERIOD, SigningKey, VerifyingKey};
pub use lifecycle::{LifecycleError, create_key, ensure_active_keys};

/// The JWS algorithms Sigil signs with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Alg {
    RS256,
    EdDSA,
}

impl Alg {
    pub const ALL: [Alg; 2] = [Alg::RS256, Alg::EdDSA];

    pub fn as_str(self) -> &'static str {
        match self {
            Alg::RS256 => "RS256",
            Alg::EdDSA => "EdDSA",
        }
    }
}

impl fmt::Display for Alg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Alg {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "RS256" => Ok(Alg::RS256),
            "EdDSA" => Ok(Alg::EdDSA),
            other => Err(format!(
                "unknown algorithm {other:?}: expected RS256 or EdDSA"
            )),
        }
    }
}

/// Where a key is in its life. See DESIGN.md, "Keys".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum KeyState {
    /// Published in the JWKS, not yet signing.
    Pending,
    /// Signing (the newest active key per algorithm signs).
    Active,
    /// Published so that tokens it signed still verify; no longer signing.
    Retired,
    /// Gone from the JWKS.
    Removed,
}

impl KeyState {
    /// The state of a key with these times at `now`.
    pub fn at(
        now: i64,
        activates_at: i64,
        retires_at: Option<i64>,
        removes_at: Option<i64>,
    ) -> Self {
        if removes_at.is_some_and(|t| now >= t) {
            KeyState::Removed
        } else if retires_at.is_some_and(|t| now >= t) {
            KeyState::Retired
        } else if now >= activates_at {
            KeyState::Active
        } else {
            KeyState::Pending
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            KeyState::Pending => "pending",
            KeyState::Active => "active",
            KeyState::Retired => "retired",
            KeyState::Removed => "removed",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_moves_through_its_states_with_time() {
        let state = |now| KeyState::at(now, 100, Some(200), Some(300));
        assert_eq!(state(99), KeyState::Pending);
        assert_eq!(state(100), KeyState::Active);
        assert_eq!(state(199), KeyState::Active);
        assert_eq!(state(200), KeyState::Retired);
        assert_eq!(state(300), KeyState::Removed);
        assert_eq!(KeyState::at(1_000_000, 100, None, None), KeyState::Active);
    }

    #[test]
    fn algorithms_parse_from_their_jose_names_only() {
        assert_eq!("RS256".parse::<Alg>(), Ok(Alg::RS256));
        assert_eq!("EdDSA".parse::<Alg>(), Ok(Alg::EdDSA));
        assert!("rs256".parse::<Alg>().is_err());
        assert!("HS256".parse::<Alg>().is_err());
        assert!("none".parse::<Alg>().is_err());
    }
}
