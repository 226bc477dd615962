//! Password hashing: argon2id on a few threads of its own (`workers`), at
//! a lower priority, with a bounded queue, so that a burst of logins queues
//! here instead of starving the async workers that serve everything else.
//!
//! Unknown users are checked against a dummy hash made with the same
//! parameters, so the time of a failed login does not tell who exists.

mod hasher;
mod settings;
mod workers;

use std::sync::{Arc, Mutex};

use argon2::Params;
use argon2::password_hash::{PasswordHash, PasswordVerifier};
use secrecy::{ExposeSecret, SecretString};

use hasher::{Hasher, hash_blocking};
pub use settings::{Argon2Config, PasswordPolicy};
use workers::Workers;

/// A password that meets the policy. It cannot be printed.
pub struct Password(SecretString);

impl Password {
    pub fn parse(text: SecretString, policy: &PasswordPolicy) -> Result<Password, String> {
        let length = text.expose_secret().chars().count();
        if length < policy.min_length {
            return Err(format!("must be at least {} characters", policy.min_length));
        }
        if length > policy.max_length {
            return Err(format!("must be at most {} characters", policy.max_length));
        }
        Ok(Password(text))
    }
}

#[derive(Debug, thiserror::Error)]
pub enum PasswordError {
    #[error("password hashing failed: {0}")]
    Hash(String),
    #[error("the password hashing pool is shut down")]
    Closed,
    /// Too many hashes already queued: shed load rather than let every
    /// request wait until it times out.
    #[error("too many password checks are queued")]
    Busy,
}

/// Queue bound per hashing thread: at ~25 ms a hash, 32 queued per thread
/// is under a second of waiting.
const QUEUED_PER_THREAD: usize = 32;

pub struct Passwords {
    argon: Hasher,
    workers: Workers,
    dummy_hash: String,
    max_length: usize,
}

impl Passwords {
    pub fn new(config: &Argon2Config, policy: &PasswordPolicy) -> Result<Passwords, PasswordError> {
        let params = Params::new(
            config.memory_kib,
            config.iterations,
            config.parallelism,
            None,
        )
        .map_err(|e| PasswordError::Hash(e.to_string()))?;
        let threads = match config.max_concurrent {
            0 => std::thread::available_parallelism().map_or(2, |n| n.get()),
            n => n,
        };
        let argon = Hasher {
            params,
            memory: Arc::new(Mutex::new(Vec::new())),
            kept: threads,
        };
        let dummy = crate::tokens::random_b64::<16>();
        // Made once at start-up: its memory is not kept, so that a node
        // that has not hashed yet stays small.
        let once = Hasher {
            kept: 0,
            ..argon.clone()
        };
        let dummy_hash = hash_blocking(&once, dummy.as_bytes())?;
        Ok(Passwords {
            argon,
            workers: Workers::start(threads, config.thread_nice, threads * QUEUED_PER_THREAD)?,
            dummy_hash,
            max_length: policy.max_length,
        })
    }

    /// Hashes a new password into a PHC string.
    pub async fn hash(&self, password: &Password) -> Result<String, PasswordError> {
        let argon = self.argon.clone();
        let secret = password.0.clone();
        self.workers
            .run(move || hash_blocking(&argon, secret.expose_secret().as_bytes()))
            .await?
    }

    /// Checks `password` against `stored`, or against the dummy hash when
    /// there is no stored hash, taking the same time either way.
    pub async fn verify(
        &self,
        password: &SecretString,
        stored: Option<&str>,
    ) -> Result<bool, PasswordError> {
        let known = stored.is_some();
        let stored = stored.unwrap_or(&self.dummy_hash).to_string();
        // An over-long password cannot match (registration refuses them) but
        // still costs one normal hash, so length does not shorten the answer.
        let too_long = password.expose_secret().chars().count() > self.max_length;
        let secret = if too_long {
            SecretString::from(String::new())
        } else {
            password.clone()
        };
        let argon = self.argon.clone();
        let matched = self
            .workers
            .run(move || {
                let Ok(parsed) = PasswordHash::new(&stored) else {
                    return false;
                };
                argon
                    .verify_password(secret.expose_secret().as_bytes(), &parsed)
                    .is_ok()
            })
            .await?;
        Ok(matched && known && !too_long)
    }

    /// Hashes queued and not yet started.
    pub fn queue_depth(&self) -> usize {
        self.workers.waiting()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fast() -> Passwords {
        let config = Argon2Config {
            memory_kib: 64,
            iterations: 1,
            parallelism: 1,
            max_concurrent: 2,
            thread_nice: 19,
        };
        Passwords::new(&config, &PasswordPolicy::default()).unwrap()
    }

    #[tokio::test]
    async fn a_hashed_password_verifies_and_others_do_not() {
        let passwords = fast();
        let policy = PasswordPolicy::default();
        let good = Password::parse(SecretString::from("correct horse"), &policy).unwrap();
        let hash = passwords.hash(&good).await.unwrap();
        assert!(hash.starts_with("$argon2id$"));
        assert!(
            passwords
                .verify(&SecretString::from("correct horse"), Some(&hash))
                .await
                .unwrap()
        );
        assert!(
            !passwords
                .verify(&SecretString::from("wrong horse"), Some(&hash))
                .await
                .unwrap()
        );
        // No stored hash never matches, whatever the password.
        assert!(
            !passwords
                .verify(&SecretString::from("correct horse"), None)
                .await
                .unwrap()
        );
    }

    #[test]
    fn the_policy_bounds_password_length() {
        let policy = PasswordPolicy {
            min_length: 8,
            max_length: 12,
        };
        assert!(Password::parse(SecretString::from("short"), &policy).is_err());
        assert!(Password::parse(SecretString::from("just right"), &policy).is_ok());
        assert!(Password::parse(SecretString::from("far too long now"), &policy).is_err());
        // Length is counted in characters, not bytes.
        assert!(Password::parse(SecretString::from("ééééééééé"), &policy).is_ok());
    }
}
