//! OAuth clients: who may ask for tokens, with which grants, scopes,
//! audience and signing algorithm.
//!
//! Confidential clients' secrets are 256 random bits, so a SHA-256 digest is
//! as strong a store as a slow hash and keeps client authentication cheap;
//! digests are compared in constant time. Secrets chosen by an operator
//! (`--secret-stdin`) must be at least 32 characters for the same reason.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use serde::Serialize;
use subtle::ConstantTimeEq;

mod fetch;
mod keys;
mod lifetimes;
mod redirect;

pub use fetch::ClientKeyCache;
pub use keys::{AuthMethod, ClientKeys, parse_jwks, parse_jwks_uri};
pub use lifetimes::{Lifetimes, MIN_ACCESS_TOKEN_TTL, MIN_REFRESH_TOKEN_TTL};
pub use redirect::{parse_redirect_uri, redirect_matches};

use crate::keys::Alg;
use crate::scope::Scopes;
use crate::store::{ClientRecord, Store, StoreError};

/// Prefix of generated client secrets, so secret scanners recognise them.
pub const SECRET_PREFIX: &str = "sigil_cs_";
pub const MIN_SECRET_LEN: usize = 32;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GrantType {
    AuthorizationCode,
    Password,
    RefreshToken,
    ClientCredentials,
    /// RFC 8628: input-constrained devices and CLIs.
    DeviceCode,
    /// RFC 8693: a service exchanges a user's token for a narrower one.
    TokenExchange,
}

/// Serialised as its `grant_type` value.
impl Serialize for GrantType {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl GrantType {
    /// What a client registered without `--grant-types` (or `grant_types`
    /// in the admin API) may use: browser sign-in and refresh. The password
    /// grant is only for clients that ask for it (RFC 9700 §2.4: it MUST
    /// NOT be used), and the code flow needs a redirect URI.
    pub const DEFAULT: [GrantType; 2] = [GrantType::AuthorizationCode, GrantType::RefreshToken];

    pub const ALL: [GrantType; 6] = [
        GrantType::AuthorizationCode,
        GrantType::Password,
        GrantType::RefreshToken,
        GrantType::ClientCredentials,
        GrantType::DeviceCode,
        GrantType::TokenExchange,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            GrantType::AuthorizationCode => "authorization_code",
            GrantType::Password => "password",
            GrantType::RefreshToken => "refresh_token",
            GrantType::ClientCredentials => "client_credentials",
            GrantType::DeviceCode => "urn:ietf:params:oauth:grant-type:device_code",
            GrantType::TokenExchange => "urn:ietf:params:oauth:grant-type:token-exchange",
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
    /// This client's own token lifetimes, at most the server's.
    pub lifetimes: Lifetimes,
    /// Where the authorization endpoint may send the browser back to.
    pub redirect_uris: Vec<String>,
    /// Where RP-initiated logout may send the browser back to.
    pub post_logout_redirect_uris: Vec<String>,
    /// Its users are not asked for consent (the operator's own apps).
    pub first_party: bool,
    /// Its users must sign in with a second factor.
    pub require_mfa: bool,
    /// How it authenticates.
    pub auth: AuthMethod,
    /// Every token request must carry a DPoP proof (RFC 9449 §5).
    pub require_dpop: bool,
    /// The audiences a token exchange of this client may target.
    pub exchange_audiences: Vec<String>,
}

impl Client {
    pub fn is_public(&self) -> bool {
        matches!(self.auth, AuthMethod::None)
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
            "access_token_ttl_seconds": self.lifetimes.access_token.map(|d| d.as_secs()),
            "refresh_token_ttl_seconds": self.lifetimes.refresh_token.map(|d| d.as_secs()),
            "redirect_uris": self.redirect_uris,
            "post_logout_redirect_uris": self.post_logout_redirect_uris,
            "first_party": self.first_party,
            "require_mfa": self.require_mfa,
            "token_endpoint_auth_method": self.auth.as_str(),
            "jwks_uri": match &self.auth {
                AuthMethod::PrivateKeyJwt(ClientKeys::Uri(uri)) => Some(uri.as_str()),
                _ => None,
            },
            "require_dpop": self.require_dpop,
            "exchange_audiences": self.exchange_audiences,
        })
    }

    /// How long this client's access tokens live: its own lifetime, never
    /// more than the server's (`global`), which may have been lowered
    /// since the client was created.
    pub fn access_token_ttl(&self, global: Duration) -> Duration {
        self.lifetimes
            .access_token
            .map_or(global, |own| own.min(global))
    }

    /// How long a login of this client lasts (every refresh token of it
    /// expires then): its own lifetime, never more than the server's.
    pub fn refresh_token_ttl(&self, global: Duration) -> Duration {
        self.lifetimes
            .refresh_token
            .map_or(global, |own| own.min(global))
    }

    pub fn allows(&self, grant: GrantType) -> bool {
        self.grant_types.contains(&grant)
    }

    /// Constant-time comparison of the presented secret's digest with the
    /// current secret, and with the previous one while its overlap lasts.
    pub fn secret_matches(&self, presented: &str, now: i64) -> bool {
        let (AuthMethod::Secret, Some(stored)) = (&self.auth, &self.secret_hash) else {
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
        let seconds = |value: Option<i64>, what: &str| match value {
            None => Ok(None),
            Some(s) => u64::try_from(s)
                .map(|s| Some(Duration::from_secs(s)))
                .map_err(|_| corrupt(format!("negative {what}"))),
        };
        let lifetimes = Lifetimes {
            access_token: seconds(r.access_token_ttl_secs, "access_token_ttl")?,
            refresh_token: seconds(r.refresh_token_ttl_secs, "refresh_token_ttl")?,
        };
        let auth = match (r.token_endpoint_auth_method.as_deref(), &r.secret_hash) {
            (Some("private_key_jwt"), _) => {
                AuthMethod::PrivateKeyJwt(match (&r.jwks, &r.jwks_uri) {
                    (Some(jwks), _) => ClientKeys::Inline(parse_jwks(jwks).map_err(corrupt)?),
                    (None, Some(uri)) => ClientKeys::Uri(uri.clone()),
                    (None, None) => return Err(corrupt("private_key_jwt without keys".into())),
                })
            }
            (Some(other), _) => {
                return Err(corrupt(format!("unknown authentication method {other:?}")));
            }
            (None, Some(_)) => AuthMethod::Secret,
            (None, None) => AuthMethod::None,
        };
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
            lifetimes,
            redirect_uris: uri_list(&r.redirect_uris),
            post_logout_redirect_uris: uri_list(&r.post_logout_redirect_uris),
            first_party: r.first_party,
            require_mfa: r.require_mfa,
            auth,
            require_dpop: r.require_dpop,
            exchange_audiences: uri_list(&r.exchange_audiences),
        })
    }
}

fn uri_list(stored: &str) -> Vec<String> {
    stored.split_whitespace().map(str::to_string).collect()
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

/// What an operator asks for when creating a client. The default is a
/// confidential client for the password and refresh-token grants, with no
/// scopes and the server's algorithm, audience and lifetimes: set `id` and
/// what differs (`NewClient { id, ..Default::default() }`).
pub struct NewClient {
    pub id: String,
    pub public: bool,
    pub grant_types: Vec<GrantType>,
    pub scopes: Scopes,
    pub alg: Option<Alg>,
    pub audience: Option<String>,
    /// A chosen secret; `None` generates one (confidential clients only).
    pub secret: Option<SecretString>,
    pub lifetimes: Lifetimes,
    pub redirect_uris: Vec<String>,
    pub post_logout_redirect_uris: Vec<String>,
    pub first_party: bool,
    pub require_mfa: bool,
    /// `private_key_jwt` with these keys instead of a secret.
    pub keys: Option<ClientKeys>,
    pub require_dpop: bool,
    /// Audiences a token exchange may target (RFC 8693).
    pub exchange_audiences: Vec<String>,
}

/// For callers that set what differs. Its grants are the password and
/// refresh grants, as the tests' password-grant clients need; the CLI and the
/// admin API default to [`GrantType::DEFAULT`] instead.
impl Default for NewClient {
    fn default() -> Self {
        NewClient {
            id: String::new(),
            public: false,
            grant_types: vec![GrantType::Password, GrantType::RefreshToken],
            scopes: Scopes::default(),
            alg: None,
            audience: None,
            secret: None,
            lifetimes: Lifetimes::default(),
            redirect_uris: Vec::new(),
            post_logout_redirect_uris: Vec::new(),
            first_party: false,
            require_mfa: false,
            keys: None,
            require_dpop: false,
            exchange_audiences: Vec::new(),
        }
    }
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
    match client.auth {
        AuthMethod::Secret => {}
        AuthMethod::None => {
            return Err(ClientError::Invalid(format!(
                "{id:?} is a public client: it has no secret"
            )));
        }
        AuthMethod::PrivateKeyJwt(_) => {
            return Err(ClientError::Invalid(format!(
                "{id:?} authenticates with private_key_jwt: it has no secret"
            )));
        }
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
/// as given); public clients have none. Its lifetimes are checked against
/// the server's, `max` (see [`Lifetimes::check`]).
pub async fn create_client(
    store: &dyn Store,
    max: &Lifetimes,
    new: NewClient,
    now: i64,
) -> Result<(Client, Option<SecretString>), ClientError> {
    let id = parse_client_id(&new.id).map_err(ClientError::Invalid)?;
    new.lifetimes.check(max)?;
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
    if new.keys.is_some() && (new.public || new.secret.is_some()) {
        return Err(ClientError::Invalid(
            "a client with keys (private_key_jwt) is confidential and has no secret".into(),
        ));
    }
    let exchanges = new.grant_types.contains(&GrantType::TokenExchange);
    if exchanges && new.public {
        return Err(ClientError::Invalid(
            "a public client cannot use token exchange (it cannot authenticate)".into(),
        ));
    }
    if exchanges == new.exchange_audiences.is_empty() {
        return Err(ClientError::Invalid(if exchanges {
            "token exchange needs the audiences the client may target (--exchange-audience)".into()
        } else {
            "exchange audiences are only for the token-exchange grant".into()
        }));
    }
    if let Some(bad) = new
        .exchange_audiences
        .iter()
        .find(|a| a.is_empty() || a.len() > 512 || a.contains(char::is_whitespace))
    {
        return Err(ClientError::Invalid(format!(
            "{bad:?} is not an audience (1 to 512 characters, no spaces)"
        )));
    }
    let checked = |uris: &[String]| -> Result<String, ClientError> {
        let parsed = uris
            .iter()
            .map(|u| parse_redirect_uri(u))
            .collect::<Result<Vec<_>, _>>()
            .map_err(ClientError::Invalid)?;
        Ok(parsed.join(" "))
    };
    let redirect_uris = checked(&new.redirect_uris)?;
    let post_logout_redirect_uris = checked(&new.post_logout_redirect_uris)?;
    let code_flow = new.grant_types.contains(&GrantType::AuthorizationCode);
    if code_flow && redirect_uris.is_empty() {
        return Err(ClientError::Invalid(
            "the authorization_code grant (the default grant type) needs at least one \
             redirect URI; name other grant types for a client without one \
             (client_credentials for a confidential service, password,refresh_token for \
             a legacy app)"
                .into(),
        ));
    }
    if !code_flow && !redirect_uris.is_empty() {
        return Err(ClientError::Invalid(
            "redirect URIs are only for the authorization_code grant".into(),
        ));
    }
    let secret = if new.public || new.keys.is_some() {
        None
    } else {
        Some(checked_or_generated(new.secret)?)
    };
    let (method, jwks, jwks_uri) = match &new.keys {
        None => (None, None, None),
        Some(ClientKeys::Inline(set)) => (
            Some("private_key_jwt".to_string()),
            Some(serde_json::to_string(set).map_err(|e| ClientError::Invalid(e.to_string()))?),
            None,
        ),
        Some(ClientKeys::Uri(uri)) => (
            Some("private_key_jwt".to_string()),
            None,
            Some(parse_jwks_uri(uri).map_err(ClientError::Invalid)?),
        ),
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
        access_token_ttl_secs: new.lifetimes.access_token.map(|d| d.as_secs() as i64),
        refresh_token_ttl_secs: new.lifetimes.refresh_token.map(|d| d.as_secs() as i64),
        redirect_uris,
        post_logout_redirect_uris,
        first_party: new.first_party,
        require_mfa: new.require_mfa,
        token_endpoint_auth_method: method,
        jwks,
        jwks_uri,
        require_dpop: new.require_dpop,
        exchange_audiences: new.exchange_audiences.join(" "),
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
