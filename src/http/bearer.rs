//! RFC 6750 bearer-token authentication for Sigil's own resource endpoints.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, header};

use super::AppState;
use super::error::ApiError;
use crate::tokens::{AccessClaims, TokenError, verify_access_token};

/// The verified claims of the request's access token.
pub struct Authenticated(pub AccessClaims);

impl FromRequestParts<AppState> for Authenticated {
    type Rejection = ApiError;

    #[tracing::instrument(skip_all)]
    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let token = bearer_token(&parts.headers)?;
        // Sigil's own endpoints accept only tokens addressed to Sigil itself
        // (the default audience), not tokens minted for a resource service.
        let issuer = state.sigil.config.issuer.as_str();
        let claims = verify_bearer(state, token, Some(&[issuer])).await?;
        Ok(Authenticated(claims))
    }
}

/// Verifies an access token for one of Sigil's endpoints: signature, `iss`,
/// `aud` among `audiences` (`None`: any), expiry, and the deny-list.
pub(super) async fn verify_bearer(
    state: &AppState,
    token: &str,
    audiences: Option<&[&str]>,
) -> Result<AccessClaims, ApiError> {
    let sigil = &state.sigil;
    let now = sigil.clock.now();
    let claims = verify_access_token(
        &sigil.keys.current(),
        token,
        &sigil.config.issuer,
        audiences,
        now,
    )
    .map_err(|e| ApiError::Bearer(Some(e)))?;
    if sigil
        .deny_list
        .is_revoked(sigil.store.as_ref(), &claims, now)
        .await?
    {
        return Err(ApiError::Bearer(Some(TokenError::Revoked)));
    }
    Ok(claims)
}

/// RFC 6750 §2.1: `Authorization: Bearer <token68>`. Anything else is "no
/// token" (a challenge without an error code) or a malformed token.
pub(super) fn bearer_token(headers: &HeaderMap) -> Result<&str, ApiError> {
    let value = headers
        .get(header::AUTHORIZATION)
        .ok_or(ApiError::Bearer(None))?
        .to_str()
        .map_err(|_| ApiError::Bearer(Some(TokenError::Malformed)))?;
    let (scheme, token) = value.split_once(' ').unwrap_or((value, ""));
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(ApiError::Bearer(None));
    }
    let token = token.trim();
    let token68 = !token.is_empty()
        && token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~+/=".contains(&b));
    if !token68 {
        return Err(ApiError::Bearer(Some(TokenError::Malformed)));
    }
    Ok(token)
}

/// The scope that grants the admin API.
pub const ADMIN_SCOPE: &str = "sigil:admin";

/// A verified token carrying [`ADMIN_SCOPE`]. Without a token: 401; with a
/// token lacking the scope: 403 `insufficient_scope` (RFC 6750 §3.1).
pub struct Admin(pub AccessClaims);

impl Admin {
    /// Who acted, for the audit trail.
    pub fn actor(&self) -> String {
        if self.0.sub == self.0.client_id {
            format!("client:{}", self.0.client_id)
        } else {
            format!("user:{}", self.0.sub)
        }
    }
}

impl FromRequestParts<AppState> for Admin {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let Authenticated(claims) = Authenticated::from_request_parts(parts, state).await?;
        let allowed = claims
            .scope
            .as_deref()
            .is_some_and(|s| s.split(' ').any(|t| t == ADMIN_SCOPE));
        if !allowed {
            return Err(ApiError::InsufficientScope(ADMIN_SCOPE));
        }
        Ok(Admin(claims))
    }
}
