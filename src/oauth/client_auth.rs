//! Client authentication at the token endpoint (RFC 6749 §2.3):
//! `client_secret_basic`, `client_secret_post`, `private_key_jwt` (RFC 7523,
//! `client_assertion.rs`), or `client_id` alone for a public client.
//! Exactly one method per request (§2.3.1).

use std::net::IpAddr;
use std::sync::Arc;

use secrecy::{ExposeSecret, SecretString};

use super::client_assertion::claimed_client;
use super::{OAuthError, Params};
use crate::clients::Client;
use crate::state::Sigil;

/// Credentials from the `Authorization: Basic` header, already URL-decoded.
pub struct BasicCredentials {
    pub client_id: String,
    pub secret: SecretString,
    /// The secret as sent, when URL-decoding changed it (a client that did
    /// not form-encode, as many libraries do not).
    pub raw_secret: Option<SecretString>,
}

/// [`authenticate_client`], with the guessing of client secrets throttled
/// per address and client (`crate::throttle`): failures are delayed and,
/// past the limit, the pair is locked out; every refusal reads the same.
pub async fn authenticate_client_throttled(
    sigil: &Sigil,
    from: Option<IpAddr>,
    basic: Option<BasicCredentials>,
    params: &Params,
    path: &str,
    now: i64,
) -> Result<Arc<Client>, OAuthError> {
    let store = sigil.store.as_ref();
    let assertion = params.get("client_assertion");
    let has_secret =
        basic.is_some() || params.get("client_secret").is_some() || assertion.is_some();
    let presented = basic
        .as_ref()
        .map(|b| b.client_id.clone())
        .or_else(|| params.get("client_id").map(str::to_string))
        .or_else(|| assertion.and_then(|a| claimed_client(a).ok()));
    let Some(client_id) = presented.filter(|_| has_secret) else {
        return authenticate_client(sigil, basic, params, path, now).await;
    };
    let mut attempt = sigil.throttle.client_attempt(from, &client_id);
    let lockout = sigil.throttle.lockout(store, &mut attempt, now).await?;
    match (
        authenticate_client(sigil, basic, params, path, now).await,
        lockout,
    ) {
        (Ok(client), None) => {
            sigil.throttle.succeeded(store, &attempt).await?;
            Ok(client)
        }
        (Ok(_) | Err(OAuthError::InvalidClient(_)), _) => {
            // Only a client that exists has a secret to guess; counting
            // made-up ids would only fill the counter table.
            let delay = if sigil.clients.get(store, &client_id, now).await?.is_some() {
                sigil.throttle.failed(store, &attempt, now).await?
            } else {
                std::time::Duration::ZERO
            };
            if lockout.is_some() {
                metrics::counter!(crate::metrics::LOGIN_THROTTLED, "scope" => "client")
                    .increment(1);
            }
            tokio::time::sleep(delay).await;
            Err(OAuthError::InvalidClient(
                "client authentication failed".into(),
            ))
        }
        (Err(other), _) => Err(other),
    }
}

/// Authenticates the client of a request to the endpoint `path` from its
/// Basic header (if any) and its form parameters, against the clients held
/// in memory (`crate::client_cache`). `now` decides whether a rotated-out
/// secret still works, and whether an assertion is current.
pub async fn authenticate_client(
    sigil: &Sigil,
    basic: Option<BasicCredentials>,
    params: &Params,
    path: &str,
    now: i64,
) -> Result<Arc<Client>, OAuthError> {
    if params.get("client_assertion").is_some() || params.get("client_assertion_type").is_some() {
        if basic.is_some() {
            return Err(OAuthError::InvalidRequest(
                "use one client authentication method, not both Basic and an assertion".into(),
            ));
        }
        return super::client_assertion::authenticate(sigil, params, path, now).await;
    }
    let form_id = params.get("client_id");
    let form_secret = params.get("client_secret");
    let (client_id, secret) = match (basic, form_secret) {
        (Some(_), Some(_)) => {
            return Err(OAuthError::InvalidRequest(
                "use one client authentication method, not both Basic and client_secret".into(),
            ));
        }
        (Some(basic), None) => {
            if form_id.is_some_and(|id| id != basic.client_id) {
                return Err(OAuthError::InvalidClient(
                    "client_id does not match the credentials".into(),
                ));
            }
            (basic.client_id, Some((basic.secret, basic.raw_secret)))
        }
        (None, Some(secret)) => {
            let id = form_id
                .ok_or_else(|| OAuthError::InvalidRequest("client_id is required".into()))?;
            (
                id.to_string(),
                Some((SecretString::from(secret.to_string()), None)),
            )
        }
        (None, None) => match form_id {
            Some(id) => (id.to_string(), None),
            None => {
                return Err(OAuthError::InvalidClient(
                    "client authentication is required".into(),
                ));
            }
        },
    };

    let unauthenticated = || OAuthError::InvalidClient("client authentication failed".into());
    let client = sigil
        .clients
        .get(sigil.store.as_ref(), &client_id, now)
        .await?;
    let Some(client) = client.filter(|c| !c.disabled) else {
        return Err(unauthenticated());
    };
    let authenticated = match &secret {
        Some((secret, raw)) => {
            client.secret_matches(secret.expose_secret(), now)
                || raw
                    .as_ref()
                    .is_some_and(|raw| client.secret_matches(raw.expose_secret(), now))
        }
        None => client.is_public(),
    };
    if authenticated {
        Ok(client)
    } else {
        Err(unauthenticated())
    }
}
