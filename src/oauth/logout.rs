//! OpenID Connect RP-Initiated Logout 1.0 §2-§3: what a logout request may
//! ask, checked before anything is ended.
//!
//! `post_logout_redirect_uri` must be registered, by exact string (a
//! loopback one on any port, as for redirect URIs: RFC 8252 §7.3), for the
//! client the request names (through `client_id` or the `id_token_hint`'s
//! `aud`); otherwise there is no redirect at all. Without a valid hint the
//! user is asked to confirm (§2: the hint is what shows the request came
//! from the user's own relying party).

use std::sync::Arc;

use super::Params;
use super::authorize::redirect_url;
use crate::clients::{Client, redirect_matches};
use crate::state::Sigil;
use crate::tokens::{IdClaims, verify_id_token_hint};

#[derive(Debug, Clone)]
pub struct LogoutRequest {
    /// The verified hint, when one was sent.
    pub hint: Option<IdClaims>,
    pub client: Option<Arc<Client>>,
    /// Where to send the browser afterwards (`state` already added).
    pub redirect: Option<String>,
    /// The parameters, for the confirmation page to carry.
    pub params: Params,
}

/// Checks a logout request. The error is for Sigil's own page.
pub async fn parse(sigil: &Sigil, params: Params, now: i64) -> Result<LogoutRequest, String> {
    let hint = match params.get("id_token_hint") {
        None => None,
        Some(token) => Some(
            verify_id_token_hint(&sigil.keys.current(), token, &sigil.config.issuer)
                .map_err(|e| format!("the id_token_hint is not usable: {e}"))?,
        ),
    };
    let client_id = match (params.get("client_id"), &hint) {
        (Some(id), Some(hint)) if id != hint.aud => {
            return Err("client_id is not the audience of the id_token_hint".into());
        }
        (Some(id), _) => Some(id.to_string()),
        (None, Some(hint)) => Some(hint.aud.clone()),
        (None, None) => None,
    };
    let client = match &client_id {
        None => None,
        Some(id) => Some(
            sigil
                .clients
                .get(sigil.store.as_ref(), id, now)
                .await
                .map_err(|_| "the service is unavailable; retry shortly".to_string())?
                .ok_or_else(|| format!("there is no client {id:?}"))?,
        ),
    };
    let redirect = match params.get("post_logout_redirect_uri") {
        None => None,
        Some(uri) => {
            let Some(client) = &client else {
                return Err(
                    "a post_logout_redirect_uri needs the client it belongs to: \
                     send id_token_hint (or client_id)"
                        .into(),
                );
            };
            if !redirect_matches(&client.post_logout_redirect_uris, uri) {
                return Err(format!(
                    "{uri:?} is not a post-logout redirect URI registered for the client"
                ));
            }
            Some(redirect_url(uri, &[("state", params.get("state"))]))
        }
    };
    Ok(LogoutRequest {
        hint,
        client,
        redirect,
        params,
    })
}
