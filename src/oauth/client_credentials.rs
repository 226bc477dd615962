//! The client credentials grant, RFC 6749 §4.4: a service acting for itself.

use super::{
    Context, Grant, OAuthError, Params, TokenResponse, issue_access_token, requested_scope,
};
use crate::clients::Client;
use crate::state::Sigil;

// RFC 6749 §4.4.2-3: only confidential clients (a public client has no
// credentials to present); `sub` is the client; no refresh token (§4.4.3).
pub async fn client_credentials_grant(
    sigil: &Sigil,
    client: &Client,
    params: &Params,
    ctx: Context<'_>,
) -> Result<TokenResponse, OAuthError> {
    let now = ctx.now;
    if client.is_public() {
        return Err(OAuthError::UnauthorizedClient(
            "a public client cannot use the client_credentials grant".into(),
        ));
    }
    let scope = requested_scope(client, params)?;
    let grant = Grant {
        jkt: ctx.jkt(),
        ..Grant::new(&client.id, &scope)
    };
    let (access_token, claims) = issue_access_token(sigil, client, grant, now)?;
    Ok(TokenResponse::new(access_token, claims, now))
}
