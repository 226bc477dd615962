//! The resource owner password credentials grant, RFC 6749 §4.3.

use secrecy::SecretString;

use super::refresh::start_session;
use super::{OAuthError, Params, TokenResponse, issue_access_token, requested_scope};
use crate::clients::{Client, GrantType};
use crate::passwords::PasswordError;
use crate::state::Sigil;
use crate::users::Username;

// RFC 6749 §4.3.2: grant_type=password, username, password, optional scope.
// A wrong password, an unknown user and a disabled user get one answer, after
// one argon2id verification each, so neither the body nor the time tells
// them apart. §4.3.3: a refresh token is included when the client may use
// the refresh_token grant.
pub async fn password_grant(
    sigil: &Sigil,
    client: &Client,
    params: &Params,
    now: i64,
) -> Result<TokenResponse, OAuthError> {
    let username = params.require("username")?;
    let password = SecretString::from(params.require("password")?.to_string());
    let scope = requested_scope(client, params)?;

    let user = match Username::parse(username) {
        Ok(username) => sigil.store.user_by_username(username.as_str()).await?,
        Err(_) => None,
    };
    let matched = sigil
        .passwords
        .verify(&password, user.as_ref().map(|u| u.password_hash.as_str()))
        .await
        .map_err(|e| match e {
            PasswordError::Busy => OAuthError::TemporarilyUnavailable(
                "too many logins in progress; retry shortly".into(),
            ),
            other => OAuthError::ServerError(other.to_string()),
        })?;
    let user = match user {
        Some(user) if matched && !user.disabled => user,
        _ => {
            return Err(OAuthError::InvalidGrant(
                "the username or password is incorrect".into(),
            ));
        }
    };

    let (session, refresh_token) = if client.allows(GrantType::RefreshToken) {
        let (family_id, token) = start_session(sigil, &user.id, client, &scope, now).await?;
        (Some(family_id), Some(token))
    } else {
        (None, None)
    };
    let (access_token, claims) =
        issue_access_token(sigil, &user.id, client, &scope, session.as_deref(), now)?;
    Ok(TokenResponse {
        access_token,
        token_type: "Bearer",
        expires_in: (claims.exp - now) as u64,
        scope: claims.scope.clone(),
        refresh_token,
        claims,
    })
}
