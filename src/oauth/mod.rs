//! OAuth 2.0 protocol logic: the token endpoint's grants and client
//! authentication. No HTTP types here: the http layer parses requests into
//! [`Params`] and renders [`TokenResponse`] and [`OAuthError`].
//!
//! ```text
//!  client                          Sigil
//!    | POST /oauth/token             |
//!    |  grant_type=password ...  --> | token_post      (http/token.rs)
//!    |                               |  authenticate_client  (client_auth.rs)
//!    |                               |  password_grant       (password.rs)
//!    |                               |  issue               (tokens, keys)
//!    | <-- {access_token, ...}       |
//! ```

pub mod authorize;
mod client_assertion;
mod client_auth;
mod client_credentials;
mod code;
pub mod device;
pub mod dpop;
mod error;
mod exchange;
mod introspect;
mod issue;
pub mod logout;
pub mod mfa;
pub mod passkey;
mod password;
mod pkce;
mod refresh;
mod revoke;
pub mod userinfo;

use std::collections::HashMap;

use serde::Serialize;

pub use client_auth::{BasicCredentials, authenticate_client, authenticate_client_throttled};
pub use error::OAuthError;
pub use introspect::introspect;
pub use issue::{Grant, issue_access_token};
pub use password::check_password;
pub use revoke::revoke;

use crate::clients::{Client, GrantType};
use crate::scope::Scopes;
use crate::state::Sigil;

/// Form parameters of one request: each name at most once, empty values
/// dropped (RFC 6749 §3.1: "sent without a value MUST be treated as if they
/// were omitted").
#[derive(Debug, Default, Clone)]
pub struct Params(HashMap<String, String>);

impl Params {
    /// Builds from decoded pairs, refusing a repeated name (RFC 6749 §3.1).
    pub fn from_pairs<I, K, V>(pairs: I) -> Result<Params, OAuthError>
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<String>,
        V: Into<String>,
    {
        let mut map = HashMap::new();
        for (name, value) in pairs {
            let (name, value) = (name.into(), value.into());
            if map.contains_key(&name) {
                return Err(OAuthError::InvalidRequest(format!(
                    "parameter {name} is repeated"
                )));
            }
            map.insert(name, value);
        }
        map.retain(|_, v: &mut String| !v.is_empty());
        Ok(Params(map))
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(String::as_str)
    }

    /// Every parameter, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// A copy with `name` set to `value` (`None`: removed).
    pub fn with(&self, name: &str, value: Option<&str>) -> Params {
        let mut map = self.0.clone();
        match value {
            Some(value) if !value.is_empty() => {
                map.insert(name.to_string(), value.to_string());
            }
            _ => {
                map.remove(name);
            }
        }
        Params(map)
    }

    pub fn require(&self, name: &str) -> Result<&str, OAuthError> {
        self.get(name)
            .ok_or_else(|| OAuthError::InvalidRequest(format!("{name} is required")))
    }
}

/// The successful token response of RFC 6749 §5.1.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct TokenResponse {
    pub access_token: String,
    pub token_type: &'static str,
    pub expires_in: u64,
    /// Omitted when empty: RFC 6749 §3.3 scope values have at least one token.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
    /// OpenID Connect: when the code grant's scope held `openid`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id_token: Option<String>,
    /// RFC 8693 §2.2.1: what a token exchange issued.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub issued_token_type: Option<&'static str>,
    /// The access token's claims, for metrics and the audit trail.
    #[serde(skip)]
    pub claims: crate::tokens::AccessClaims,
}

/// What the token endpoint knows of a request besides its form: who
/// asks from where, the DPoP proof that came with it, and when.
#[derive(Debug, Clone, Copy)]
pub struct Context<'a> {
    /// The client's address, for login throttling.
    pub from: Option<std::net::IpAddr>,
    /// The request's DPoP proof, checked (RFC 9449).
    pub dpop: Option<&'a crate::dpop::Proof>,
    pub now: i64,
}

impl Context<'_> {
    /// The key the tokens of this request are bound to, if any.
    pub fn jkt(&self) -> Option<&str> {
        self.dpop.map(|p| p.jkt.as_str())
    }
}

// RFC 6749 §3.2 (token endpoint), §4.3.2 and §4.4.2 (grants), §5 (responses).
/// Handles one token request from an already-authenticated client.
pub async fn token(
    sigil: &Sigil,
    client: &Client,
    params: &Params,
    ctx: Context<'_>,
) -> Result<TokenResponse, OAuthError> {
    let grant = params.require("grant_type")?;
    let grant: GrantType = grant.parse().map_err(|_| {
        OAuthError::UnsupportedGrantType(format!("grant_type {grant:?} is not supported"))
    })?;
    if !client.allows(grant) {
        return Err(OAuthError::UnauthorizedClient(format!(
            "this client may not use the {grant} grant"
        )));
    }
    // RFC 9449 §5: a client registered to use DPoP always does.
    if client.require_dpop && ctx.dpop.is_none() {
        return Err(OAuthError::InvalidDpopProof(
            "this client must send a DPoP proof with every token request".into(),
        ));
    }
    match grant {
        GrantType::Password => password::password_grant(sigil, client, params, ctx).await,
        GrantType::ClientCredentials => {
            client_credentials::client_credentials_grant(sigil, client, params, ctx).await
        }
        GrantType::RefreshToken => refresh::refresh_grant(sigil, client, params, ctx).await,
        GrantType::AuthorizationCode => code::code_grant(sigil, client, params, ctx).await,
        GrantType::DeviceCode => device::device_grant(sigil, client, params, ctx).await,
        GrantType::TokenExchange => exchange::exchange_grant(sigil, client, params, ctx).await,
    }
}

/// The scope a request asks for: its `scope` parameter, which must stay
/// within what the client is allowed, or all the client's scopes.
fn requested_scope(client: &Client, params: &Params) -> Result<Scopes, OAuthError> {
    match params.get("scope") {
        None => Ok(client.scopes.clone()),
        Some(text) => {
            let scopes =
                Scopes::parse(text).map_err(|e| OAuthError::InvalidScope(e.to_string()))?;
            if !scopes.is_subset_of(&client.scopes) {
                return Err(OAuthError::InvalidScope(
                    "the requested scope exceeds what this client may ask for".into(),
                ));
            }
            Ok(scopes)
        }
    }
}
