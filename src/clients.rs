//! OAuth clients: who may ask for tokens, with which grants, scopes,
//! audience and signing algorithm.
//!
//! Confidential clients' secrets are 256 random bits, so a SHA-256 digest is
//! as strong a store as a slow hash and keeps client authentication cheap;
//! digests are compared in constant time. Secrets chosen by an operator
//! (`--secret-stdin`) must be at least 32 characters for the same reason.

use std::fmt;
use std::str::FromStr;

use secrecy::{ExposeSecret, SecretString};
use serde::Serialize;
use subtle::ConstantTimeEq;

use crate::keys::Alg;
use crate::scope::Scopes;
use crate::store::{ClientRecord, Store, StoreError};

/// Prefix of generated client secrets, so secret scanners recognise them.
pub const SECRET_PREFIX: &str = "sigil_cs_";
pub const MIN_SECRET_LEN: usize = 32;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum GrantType {
    Password,
    RefreshToken,
    ClientCredentials,
}

impl GrantType {
    pub const ALL: [GrantType; 3] = [
        GrantType::Password,
        GrantType::RefreshToken,
        GrantType::ClientCredentials,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            GrantType::Password => "password",
            GrantType::RefreshToken => "refresh_token",
            GrantType::ClientCredentials => "client_credentials",
        }
    }
}

impl fmt::Display for GrantType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for GrantType {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        GrantType::ALL
            .into_iter()
            .find(|g| g.as_str() == s)
            .ok_or_else(|| format!("unknown grant type {s:?}"))
    }
}

/// A registered client.
#[derive(Debug, Clone)]
pub struct Client {
    pub id: String,
    secret_hash: Option<Vec<u8>>,
    /// The secret before the last rotation and until when it still works.
    previous_secret: Option<(Vec<u8>, i64)>,
    pub grant_types: Vec<GrantType>,
    pub scopes: Scopes,
    pub alg: Option<Alg>,
    pub audience: Option<String>,
    pub disabled: bool,
    pub created_at: i64,
}

impl Client {
    pub fn is_public(&self) -> bool {
        self.secret_hash.is_none()
    }

    /// What `clients list --json` and the admin API show (never a secret).
    pub fn summary(&self) -> serde_json::Value {
        serde_json::json!({
            "client_id": self.id,
            "public": self.is_public(),
            "grant_types": self.grant_types,
            "scopes": self.scopes.to_string(),
            "alg": self.alg.map(|a| a.as_str()),
            "audience": self.audience,
            "disabled": self.disabled,
            "created_at": self.created_at,
        })
    }

    pub fn allows(&self, grant: GrantType) -> bool {
        self.grant_types.contains(&grant)
    }

    /// Constant-time comparison of the presented secret's digest with the
    /// current secret, and with the previous one while its overlap lasts.
    pub fn secret_matches(&self, presented: &str, now: i64) -> bool {
        let Some(stored) = &self.secret_hash else {
            return false;
        };
        let digest = hash_secret(presented);
        let current = bool::from(digest.as_slice().ct_eq(stored));
        let previous = self
            .previous_secret
            .as_ref()
            .is_some_and(|(hash, until)| now < *until && bool::from(digest.as_slice().ct_eq(hash)));
        current | previous
    }

    fn from_record(r: ClientRecord) -> Result<Client, StoreError> {
        let corrupt = |what: String| StoreError::Other(format!("client {}: {what}", r.client_id));
        let grant_types = r
            .grant_types
            .split_whitespace()
            .map(GrantType::from_str)
            .collect::<Result<_, _>>()
            .map_err(corrupt)?;
        let scopes = Scopes::parse(&r.scopes).map_err(|e| corrupt(e.to_string()))?;
        let alg = r
            .alg
            .as_deref()
            .map(Alg::from_str)
            .transpose()
            .map_err(corrupt)?;
        Ok(Client {
            id: r.client_id,
            secret_hash: r.secret_hash,
            previous_secret: r.previous_secret_hash.zip(r.previous_secret_expires_at),
            grant_types,
            scopes,
            alg,
            audience: r.audience,
            disabled: r.disabled,
            created_at: r.created_at,
        })
    }
}

fn hash_secret(secret: &str) -> Vec<u8> {
    ring::digest::digest(&ring::digest::SHA256, secret.as_bytes())
        .as_ref()
        .to_vec()
}

/// A client id: 1–128 characters of `A-Z a-z 0-9 . _ ~ -` (URL-safe as is).
pub fn parse_client_id(text: &str) -> Result<String, String> {
    let ok = (1..=128).contains(&text.len())
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._~-".contains(&b));
    if ok {
        Ok(text.to_string())
    } else {
        Err("client id must be 1 to 128 characters of letters, digits, '.', '_', '~' or '-'".into())
    }
}

/// What an operator asks for when creating a client.
pub struct NewClient {
    pub id: String,
    pub public: bool,
    pub grant_types: Vec<GrantType>,
    pub scopes: Scopes,
    pub alg: Option<Alg>,
    pub audience: Option<String>,
    /// A chosen secret; `None` generates one (confidential clients only).
    pub secret: Option<SecretString>,
}

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("{0}")]
    Invalid(String),
    #[error("a client with id {0:?} already exists")]
    Exists(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Gives a confidential client a new secret (generated, or as given); the
/// old one keeps working until `previous_until`. Returns the new secret.
/// While an earlier rotation's overlap lasts, a second rotation would end
/// it for the secret deployments may still use, so it needs `force`.
pub async fn rotate_secret(
    store: &dyn Store,
    id: &str,
    given: Option<SecretString>,
    previous_until: i64,
    now: i64,
    force: bool,
) -> Result<SecretString, ClientError> {
    let client = find_client(store, id)
        .await?
        .ok_or_else(|| ClientError::Invalid(format!("no client {id:?}")))?;
    if client.is_public() {
        return Err(ClientError::Invalid(format!(
            "{id:?} is a public client: it has no secret"
        )));
    }
    if let Some((_, until)) = client.previous_secret
        && until > now
        && !force
    {
        return Err(ClientError::Invalid(format!(
            "the secret replaced by the last rotation still works for {}s; rotating again \
             would end it now: wait, or force it",
            until - now
        )));
    }
    let secret = checked_or_generated(given)?;
    store
        .rotate_client_secret(id, &hash_secret(secret.expose_secret()), previous_until)
        .await?;
    Ok(secret)
}

fn checked_or_generated(given: Option<SecretString>) -> Result<SecretString, ClientError> {
    match given {
        Some(given) if given.expose_secret().len() < MIN_SECRET_LEN => Err(ClientError::Invalid(
            format!("a client secret must be at least {MIN_SECRET_LEN} characters"),
        )),
        Some(given) => Ok(given),
        None => Ok(SecretString::from(format!(
            "{SECRET_PREFIX}{}",
            crate::tokens::random_b64::<32>()
        ))),
    }
}

/// Registers a client. Returns it with the secret to show once (generated or
/// as given); public clients have none.
pub async fn create_client(
    store: &dyn Store,
    new: NewClient,
    now: i64,
) -> Result<(Client, Option<SecretString>), ClientError> {
    let id = parse_client_id(&new.id).map_err(ClientError::Invalid)?;
    if new.grant_types.is_empty() {
        return Err(ClientError::Invalid(
            "a client needs at least one grant type".into(),
        ));
    }
    if new.public && new.grant_types.contains(&GrantType::ClientCredentials) {
        return Err(ClientError::Invalid(
            "a public client cannot use client_credentials (it has no secret)".into(),
        ));
    }
    if new.public && new.secret.is_some() {
        return Err(ClientError::Invalid("a public client has no secret".into()));
    }
    let secret = if new.public {
        None
    } else {
        Some(checked_or_generated(new.secret)?)
    };
    let record = ClientRecord {
        client_id: id.clone(),
        secret_hash: secret.as_ref().map(|s| hash_secret(s.expose_secret())),
        grant_types: new
            .grant_types
            .iter()
            .map(|g| g.as_str())
            .collect::<Vec<_>>()
            .join(" "),
        scopes: new.scopes.to_string(),
        alg: new.alg.map(|a| a.as_str().to_string()),
        audience: new.audience,
        disabled: false,
        previous_secret_hash: None,
        previous_secret_expires_at: None,
        created_at: now,
    };
    match store.insert_client(&record).await {
        Ok(()) => {}
        Err(StoreError::Conflict(_)) => return Err(ClientError::Exists(id)),
        Err(e) => return Err(e.into()),
    }
    Ok((Client::from_record(record)?, secret))
}

pub async fn find_client(store: &dyn Store, id: &str) -> Result<Option<Client>, StoreError> {
    store
        .client_by_id(id)
        .await?
        .map(Client::from_record)
        .transpose()
}

pub async fn list_clients(store: &dyn Store) -> Result<Vec<Client>, StoreError> {
    store
        .list_clients()
        .await?
        .into_iter()
        .map(Client::from_record)
        .collect()
}
