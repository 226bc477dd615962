//! Refresh tokens: opaque, 256 random bits, base64url, with a fixed prefix
//! that secret scanners can match. Only their SHA-256 is ever stored.
//!
//! A token's successor is derived, not random: `HMAC(K, token)` with `K`
//! derived from the key-encryption key. A retried or concurrent refresh of the
//! same token therefore computes the same successor without Sigil storing any
//! token in a recoverable form, and without the client being logged out.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;

use super::random_b64;

pub const REFRESH_PREFIX: &str = "sigil_rt_";
/// Prefix plus 43 base64url characters (32 bytes).
const REFRESH_LEN: usize = REFRESH_PREFIX.len() + 43;

/// A fresh refresh token for a new login.
pub fn mint_refresh_token() -> String {
    format!("{REFRESH_PREFIX}{}", random_b64::<32>())
}

/// The successor of `presented`, the same every time it is asked for.
pub fn successor_refresh_token(key: &ring::hmac::Key, presented: &str) -> String {
    let tag = ring::hmac::sign(key, presented.as_bytes());
    format!("{REFRESH_PREFIX}{}", B64.encode(tag.as_ref()))
}

/// The stored form of a refresh token.
pub fn hash_refresh_token(token: &str) -> Vec<u8> {
    ring::digest::digest(&ring::digest::SHA256, token.as_bytes())
        .as_ref()
        .to_vec()
}

/// Whether `token` has the shape of a Sigil refresh token.
pub fn is_refresh_token(token: &str) -> bool {
    token.len() == REFRESH_LEN
        && token.starts_with(REFRESH_PREFIX)
        && token[REFRESH_PREFIX.len()..]
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minted_and_derived_tokens_have_the_refresh_shape() {
        let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, b"k");
        let token = mint_refresh_token();
        assert!(is_refresh_token(&token), "{token}");
        let next = successor_refresh_token(&key, &token);
        assert!(is_refresh_token(&next));
        assert_ne!(next, token);
        assert!(!is_refresh_token("eyJhbGciOi.x.y"));
    }

    #[test]
    fn a_successor_is_stable_per_token_and_key() {
        let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, b"k");
        let other = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, b"other");
        let token = mint_refresh_token();
        assert_eq!(
            successor_refresh_token(&key, &token),
            successor_refresh_token(&key, &token)
        );
        assert_ne!(
            successor_refresh_token(&key, &token),
            successor_refresh_token(&other, &token)
        );
        assert_eq!(hash_refresh_token(&token).len(), 32);
    }
}
