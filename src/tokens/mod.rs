//! Tokens Sigil hands out: JWT access tokens (RFC 9068) and OpenID Connect
//! ID tokens signed by the keyring, and opaque rotating refresh tokens.

mod access;
mod id;
pub mod jose;
mod refresh;

pub use access::{AccessClaims, Cnf, TokenError, sign_access_token, verify_access_token};
pub use id::{IdClaims, at_hash, sign_id_token, verify_id_token_hint};
pub use refresh::{
    REFRESH_PREFIX, hash_refresh_token, is_refresh_token, mint_refresh_token,
    successor_refresh_token,
};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use ring::rand::{SecureRandom, SystemRandom};

/// `N` random bytes, base64url-encoded: token ids and secrets.
pub fn random_b64<const N: usize>() -> String {
    let mut bytes = [0u8; N];
    fill_random(&mut bytes);
    B64.encode(bytes)
}

/// Fills `bytes` from the operating system's generator.
#[allow(clippy::panic)]
pub fn fill_random(bytes: &mut [u8]) {
    // SystemRandom reads the OS generator; it fails only if the OS has none,
    // in which case no secret could be made at all.
    if SystemRandom::new().fill(bytes).is_err() {
        panic!("the operating system's random number generator is unavailable");
    }
}

/// SHA-256 of a secret handed to a browser or client (authorization codes,
/// session cookies): what the store keeps instead of the secret.
pub fn hash_secret(secret: &str) -> Vec<u8> {
    ring::digest::digest(&ring::digest::SHA256, secret.as_bytes())
        .as_ref()
        .to_vec()
}
