//! Password hashing: argon2id on the blocking pool, behind a concurrency
//! limit so that a burst of logins queues here instead of starving the async
//! workers that serve everything else.
//!
//! Unknown users are checked against a dummy hash made with the same
//! parameters, so the time of a failed login does not tell who exists.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use argon2::password_hash::{
    Decimal, Ident, Output, ParamsString, PasswordHash, PasswordHasher, PasswordVerifier, Salt,
    SaltString,
};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use secrecy::{ExposeSecret, SecretString};
use tokio::sync::Semaphore;

use crate::config::{Argon2Config, PasswordPolicy};

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

/// Queue bound per hashing slot: at ~25 ms a hash, 32 queued per slot is
/// under a second of waiting.
const QUEUED_PER_PERMIT: usize = 32;

pub struct Passwords {
    argon: Hasher,
    limit: Arc<Semaphore>,
    /// Beyond this many waiting callers, new ones are refused at once.
    max_waiting: usize,
    /// Callers waiting for a hashing permit.
    waiting: AtomicUsize,
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
        let permits = match config.max_concurrent {
            0 => std::thread::available_parallelism().map_or(2, |n| n.get()),
            n => n,
        };
        let argon = Hasher {
            params,
            memory: Arc::new(Mutex::new(Vec::new())),
            kept: permits,
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
            limit: Arc::new(Semaphore::new(permits)),
            max_waiting: permits * QUEUED_PER_PERMIT,
            waiting: AtomicUsize::new(0),
            dummy_hash,
            max_length: policy.max_length,
        })
    }

    /// Hashes a new password into a PHC string.
    pub async fn hash(&self, password: &Password) -> Result<String, PasswordError> {
        let argon = self.argon.clone();
        let secret = password.0.clone();
        self.run(move || hash_blocking(&argon, secret.expose_secret().as_bytes()))
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

    /// Hashes waiting for a permit right now.
    pub fn queue_depth(&self) -> usize {
        self.waiting.load(Ordering::Relaxed)
    }

    async fn run<T: Send + 'static>(
        &self,
        job: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, PasswordError> {
        if self.waiting.fetch_add(1, Ordering::Relaxed) >= self.max_waiting {
            self.waiting.fetch_sub(1, Ordering::Relaxed);
            return Err(PasswordError::Busy);
        }
        let permit = self.limit.acquire().await;
        self.waiting.fetch_sub(1, Ordering::Relaxed);
        let _permit = permit.map_err(|_| PasswordError::Closed)?;
        tokio::task::spawn_blocking(job)
            .await
            .map_err(|e| PasswordError::Hash(e.to_string()))
    }
}

/// argon2id (the `argon2` crate's own code) with its memory taken from a
/// pool of buffers, one per hashing slot, kept for the life of the process.
/// Allocating and freeing the memory per hash (19 MiB at the default cost)
/// makes glibc raise its mmap threshold and then hold the freed blocks in
/// fragmented heaps: a login flood grew RSS past 500 MB (scripts/load).
#[derive(Clone)]
struct Hasher {
    params: Params,
    memory: Arc<Mutex<Vec<Vec<Block>>>>,
    /// Buffers kept for reuse (one per slot that can hash at once).
    kept: usize,
}

impl Hasher {
    fn with_memory<T>(&self, blocks: usize, job: impl FnOnce(&mut [Block]) -> T) -> T {
        let reused = self.memory.lock().ok().and_then(|mut pool| {
            let at = pool.iter().position(|b| b.len() >= blocks)?;
            Some(pool.swap_remove(at))
        });
        let mut buffer = reused.unwrap_or_else(|| vec![Block::default(); blocks]);
        let result = job(&mut buffer);
        if let Ok(mut pool) = self.memory.lock() {
            if pool.len() < self.kept {
                pool.push(buffer);
            }
        }
        result
    }
}

impl PasswordHasher for Hasher {
    type Params = Params;

    fn hash_password<'a>(
        &self,
        password: &[u8],
        salt: impl Into<Salt<'a>>,
    ) -> argon2::password_hash::Result<PasswordHash<'a>> {
        let (algorithm, version) = (Algorithm::Argon2id.ident(), Version::V0x13.into());
        let params = self.params.clone();
        self.hash_password_customized(password, Some(algorithm), Some(version), params, salt)
    }

    /// As `Argon2`'s own implementation (verification calls this with the
    /// stored hash's algorithm, version and parameters), but with pooled memory.
    fn hash_password_customized<'a>(
        &self,
        password: &[u8],
        algorithm: Option<Ident<'a>>,
        version: Option<Decimal>,
        params: Params,
        salt: impl Into<Salt<'a>>,
    ) -> argon2::password_hash::Result<PasswordHash<'a>> {
        let algorithm = algorithm
            .map(Algorithm::try_from)
            .transpose()?
            .unwrap_or_default();
        let version = version
            .map(Version::try_from)
            .transpose()?
            .unwrap_or_default();
        let salt = salt.into();
        let mut salt_bytes = [0u8; 64];
        let salt_bytes = salt.decode_b64(&mut salt_bytes)?;
        let argon = Argon2::new(algorithm, version, params.clone());
        let length = params.output_len().unwrap_or(Params::DEFAULT_OUTPUT_LEN);
        let output = Output::init_with(length, |out| {
            self.with_memory(params.block_count(), |blocks| {
                argon.hash_password_into_with_memory(password, salt_bytes, out, blocks)
            })
            .map_err(Into::into)
        })?;
        Ok(PasswordHash {
            algorithm: algorithm.ident(),
            version: Some(version.into()),
            params: ParamsString::try_from(&params)?,
            salt: Some(salt),
            hash: Some(output),
        })
    }
}

fn hash_blocking(argon: &Hasher, password: &[u8]) -> Result<String, PasswordError> {
    let salt = SaltString::encode_b64(crate::tokens::random_b64::<16>().as_bytes())
        .map_err(|e| PasswordError::Hash(e.to_string()))?;
    argon
        .hash_password(password, &salt)
        .map(|h| h.to_string())
        .map_err(|e| PasswordError::Hash(e.to_string()))
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
    fn pooled_hashes_match_the_argon2_crate_both_ways() {
        let params = Params::new(64, 1, 1, None).unwrap();
        let pooled = Hasher {
            params: params.clone(),
            memory: Arc::new(Mutex::new(Vec::new())),
            kept: 1,
        };
        let plain = Argon2::new(Algorithm::Argon2id, Version::V0x13, params);
        let salt = SaltString::encode_b64(b"sixteen byte sal").unwrap();
        let ours = pooled.hash_password(b"pw", &salt).unwrap().to_string();
        let theirs = plain.hash_password(b"pw", &salt).unwrap().to_string();
        assert_eq!(ours, theirs);
        let parsed = PasswordHash::new(&theirs).unwrap();
        assert!(pooled.verify_password(b"pw", &parsed).is_ok());
        assert!(pooled.verify_password(b"other", &parsed).is_err());
        // A hash made with other parameters still verifies (they come from it).
        let other = Argon2::new(
            Algorithm::Argon2id,
            Version::V0x13,
            Params::new(128, 2, 1, None).unwrap(),
        );
        let older = other.hash_password(b"pw", &salt).unwrap().to_string();
        assert!(
            pooled
                .verify_password(b"pw", &PasswordHash::new(&older).unwrap())
                .is_ok()
        );
        assert_eq!(pooled.memory.lock().unwrap().len(), 1, "one buffer kept");
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
