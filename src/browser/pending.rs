//! A sign-in between its password and its second factor: who passed the
//! password, when, and against which password hash, signed under a key
//! derived from the KEK and kept in a short-lived cookie. No session
//! exists until the second factor is in, so nothing that reads sessions
//! can mistake a half sign-in for a whole one.
//!
//! The digest of the password hash ties it to the password as it was: a
//! password changed meanwhile voids it, as it voids every session.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use subtle::ConstantTimeEq;

use crate::store::UserRecord;

/// How long the second step may take.
pub const PENDING_TTL: i64 = 300;

/// A verified half sign-in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pending {
    pub user_id: String,
    /// When the password was checked (the session's `auth_time` if the
    /// second factor follows).
    pub at: i64,
}

/// The cookie value for `user`, who passed the password at `now`.
pub fn seal(key: &ring::hmac::Key, user: &UserRecord, now: i64) -> String {
    let payload = format!(
        "{}.{}.{}",
        user.id,
        now,
        B64.encode(password_digest(&user.password_hash))
    );
    let tag = ring::hmac::sign(key, payload.as_bytes());
    format!("{}.{}", B64.encode(payload), B64.encode(tag.as_ref()))
}

/// Reads a cookie value: `Some` when it is authentic and not older than
/// [`PENDING_TTL`] at `now`.
pub fn open(key: &ring::hmac::Key, value: &str, now: i64) -> Option<Pending> {
    if value.len() > 512 {
        return None;
    }
    let (payload, tag) = value.split_once('.')?;
    let payload = B64.decode(payload).ok()?;
    let tag = B64.decode(tag).ok()?;
    ring::hmac::verify(key, &payload, &tag).ok()?;
    let payload = String::from_utf8(payload).ok()?;
    let mut parts = payload.split('.');
    let (user_id, at, _digest) = (parts.next()?, parts.next()?, parts.next()?);
    let at: i64 = at.parse().ok()?;
    (now >= at && now - at <= PENDING_TTL).then(|| Pending {
        user_id: user_id.to_string(),
        at,
    })
}

/// Whether `value` was sealed for `user` as they are now (same password).
pub fn matches(value: &str, user: &UserRecord) -> bool {
    let Some((payload, _)) = value.split_once('.') else {
        return false;
    };
    let Some(payload) = B64
        .decode(payload)
        .ok()
        .and_then(|p| String::from_utf8(p).ok())
    else {
        return false;
    };
    let Some(digest) = payload.rsplit('.').next().and_then(|d| B64.decode(d).ok()) else {
        return false;
    };
    bool::from(digest.ct_eq(&password_digest(&user.password_hash)))
}

fn password_digest(hash: &str) -> Vec<u8> {
    ring::digest::digest(&ring::digest::SHA256, hash.as_bytes()).as_ref()[..16].to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(hash: &str) -> UserRecord {
        UserRecord {
            id: "u-1".into(),
            username: "alice".into(),
            email: "alice@example.com".into(),
            password_hash: hash.into(),
            disabled: false,
            created_at: 0,
            updated_at: 0,
            sessions_revoked_at: None,
        }
    }

    #[test]
    fn a_pending_sign_in_is_authentic_fresh_and_of_the_same_password() {
        let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, b"k");
        let alice = user("$argon2id$one");
        let value = seal(&key, &alice, 1000);
        assert_eq!(
            open(&key, &value, 1100),
            Some(Pending {
                user_id: "u-1".into(),
                at: 1000
            })
        );
        assert!(matches(&value, &alice));
        assert!(!matches(&value, &user("$argon2id$two")));
        assert_eq!(open(&key, &value, 1000 + PENDING_TTL + 1), None);
        let other = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, b"other");
        assert_eq!(open(&other, &value, 1100), None);
        let forged = value.replacen('a', "b", 1);
        assert_eq!(open(&key, &forged, 1100), None);
    }
}
