//! What an operator sets for passwords: the policy a new password must meet
//! and the argon2id cost (the `[password]` and `[argon2]` config sections).

use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PasswordPolicy {
    /// Minimum length in characters.
    pub min_length: usize,
    /// Maximum length in characters (bounds the hashing cost an attacker can ask for).
    pub max_length: usize,
}

impl Default for PasswordPolicy {
    fn default() -> Self {
        PasswordPolicy {
            min_length: 8,
            max_length: 128,
        }
    }
}

/// argon2id cost. The defaults are OWASP's (m=19 MiB, t=2, p=1).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Argon2Config {
    pub memory_kib: u32,
    pub iterations: u32,
    pub parallelism: u32,
    /// How many hashes may run at once; 0 means one per CPU core.
    pub max_concurrent: usize,
    /// How many nice steps the hashing threads run below the process
    /// (Linux), 0-19; at most to nice 19. The default, 19, lets every other
    /// request take a core from a hash at once; under a load that keeps the
    /// cores busy with other requests, logins then slow down first. 0
    /// hashes at the priority of everything else.
    pub thread_nice: i32,
}

impl Default for Argon2Config {
    fn default() -> Self {
        Argon2Config {
            memory_kib: 19 * 1024,
            iterations: 2,
            parallelism: 1,
            max_concurrent: 0,
            thread_nice: 19,
        }
    }
}
