//! Users: the parsed identity fields, registration and profile lookup.
//!
//! Usernames and emails are parsed once into types that cannot hold a bad
//! value; both are case-insensitive and stored lowercased.

use secrecy::SecretString;
use serde::Serialize;

use crate::passwords::{Password, PasswordError, PasswordPolicy, Passwords};
use crate::revocation::RevocationWindow;
use crate::store::{Store, StoreError, UserRecord};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Username(String);

impl Username {
    /// 3–64 characters of `a-z 0-9 . _ -`, starting with a letter or digit.
    pub fn parse(text: &str) -> Result<Username, String> {
        let lower = text.to_ascii_lowercase();
        if !(3..=64).contains(&lower.len()) {
            return Err("must be 3 to 64 characters long".into());
        }
        if !lower
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b))
        {
            return Err("may contain only letters, digits, '.', '_' and '-'".into());
        }
        if !lower.as_bytes()[0].is_ascii_alphanumeric() {
            return Err("must start with a letter or digit".into());
        }
        Ok(Username(lower))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Email(String);

impl Email {
    /// A practical subset of RFC 5321 addresses: `local@domain.tld`, ASCII,
    /// at most 254 characters, lowercased.
    pub fn parse(text: &str) -> Result<Email, String> {
        const INVALID: &str = "must be an email address like name@example.com";
        if text.len() > 254 || text.is_empty() {
            return Err("must be 1 to 254 characters long".into());
        }
        let lower = text.to_ascii_lowercase();
        let (local, domain) = lower.split_once('@').ok_or(INVALID)?;
        let local_ok = (1..=64).contains(&local.len())
            && !local.starts_with('.')
            && !local.ends_with('.')
            && !local.contains("..")
            && local
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+/=?^_`{|}~.-".contains(&b));
        let labels: Vec<&str> = domain.split('.').collect();
        let domain_ok = labels.len() >= 2
            && labels.iter().all(|l| {
                (1..=63).contains(&l.len())
                    && !l.starts_with('-')
                    && !l.ends_with('-')
                    && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            });
        if !(local_ok && domain_ok) {
            return Err(INVALID.into());
        }
        Ok(Email(lower))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A user's public profile: what `/users/me` and registration return.
#[derive(Debug, Clone, Serialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct User {
    pub id: String,
    pub username: String,
    pub email: String,
    pub created_at: i64,
}

impl From<UserRecord> for User {
    fn from(r: UserRecord) -> Self {
        User {
            id: r.id,
            username: r.username,
            email: r.email,
            created_at: r.created_at,
        }
    }
}

/// What a registration asks for, before parsing.
pub struct Registration {
    pub username: String,
    pub email: String,
    pub password: SecretString,
}

#[derive(Debug, thiserror::Error)]
pub enum RegisterError {
    /// Each bad field with what is wrong with it.
    #[error("invalid fields")]
    Invalid(Vec<(&'static str, String)>),
    /// The username or email is already registered.
    #[error("{0} is already registered")]
    Taken(&'static str),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Hash(#[from] PasswordError),
}

/// Creates a user after parsing every field; reports all bad fields at once.
pub async fn create(
    store: &dyn Store,
    passwords: &Passwords,
    policy: &PasswordPolicy,
    input: Registration,
    now: i64,
) -> Result<User, RegisterError> {
    let username = Username::parse(&input.username);
    let email = Email::parse(&input.email);
    let password = Password::parse(input.password, policy);
    let (username, email, password) = match (username, email, password) {
        (Ok(u), Ok(e), Ok(p)) => (u, e, p),
        (u, e, p) => {
            let errors = [
                ("username", u.err()),
                ("email", e.err()),
                ("password", p.err()),
            ]
            .into_iter()
            .filter_map(|(field, err)| err.map(|e| (field, e)))
            .collect();
            return Err(RegisterError::Invalid(errors));
        }
    };
    let record = UserRecord {
        id: uuid::Uuid::new_v4().to_string(),
        username: username.as_str().to_string(),
        email: email.as_str().to_string(),
        password_hash: passwords.hash(&password).await?,
        disabled: false,
        created_at: now,
        updated_at: now,
        sessions_revoked_at: None,
    };
    match store.insert_user(&record).await {
        Ok(()) => Ok(record.into()),
        Err(StoreError::Conflict(field)) => Err(RegisterError::Taken(field)),
        Err(e) => Err(e.into()),
    }
}

/// Sets a new password, which revokes every session of the user.
pub async fn set_password(
    store: &dyn Store,
    passwords: &Passwords,
    policy: &PasswordPolicy,
    username: &str,
    password: SecretString,
    window: RevocationWindow,
    now: i64,
) -> Result<UserRecord, RegisterError> {
    let password = Password::parse(password, policy)
        .map_err(|e| RegisterError::Invalid(vec![("password", e)]))?;
    let user = find(store, username).await?;
    let hash = passwords.hash(&password).await?;
    // One transaction: a login with the new password right after the change
    // is never caught by its revocation.
    crate::revocation::change_password(store, &user.id, &hash, window, now).await?;
    Ok(user)
}

/// A user by username (case-insensitively); `NotFound` otherwise.
pub async fn find(store: &dyn Store, username: &str) -> Result<UserRecord, StoreError> {
    let username = Username::parse(username).map_err(|_| StoreError::NotFound)?;
    store
        .user_by_username(username.as_str())
        .await?
        .ok_or(StoreError::NotFound)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usernames_are_lowercased_and_restricted() {
        assert_eq!(Username::parse("Alice_01").unwrap().as_str(), "alice_01");
        for bad in ["ab", "-alice", "al ice", "alicé", "a/b", &"x".repeat(65)] {
            assert!(Username::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn emails_need_a_local_part_and_a_dotted_domain() {
        assert_eq!(
            Email::parse("Alice@Example.COM").unwrap().as_str(),
            "alice@example.com"
        );
        assert!(Email::parse("a.b+tag@mail.example.org").is_ok());
        for bad in [
            "",
            "alice",
            "alice@",
            "@example.com",
            "alice@localhost",
            "a..b@x.io",
            "a b@x.io",
            "a@-x.io",
            "a@x..io",
        ] {
            assert!(Email::parse(bad).is_err(), "{bad}");
        }
    }
}
