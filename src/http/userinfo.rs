//! `GET`/`POST /userinfo`: OIDC Core §5.3. The access token comes in the
//! `Authorization` header (RFC 6750 §2.1) or, on POST, as the form field
//! `access_token` (§2.2), never both; errors are RFC 6750's.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Method, header};
use axum::response::{IntoResponse, Response};

use super::AppState;
use super::bearer::{Presented, Request, presented_token, verify_presented};
use super::error::ApiError;
use crate::oauth::userinfo;
use crate::scope::Scopes;
use crate::tokens::TokenError;

#[tracing::instrument(skip_all, name = "userinfo_get")]
#[utoipa::path(
    get, path = "/userinfo", tag = "openid", operation_id = "userinfo",
    responses(
        (status = 200, description = "`sub`, and `preferred_username` (profile), `email`, `email_verified` (email)", body = Object),
        (status = 401, description = "No valid bearer token (RFC 6750 challenge)", body = super::error::ErrorBody),
        (status = 403, description = "insufficient_scope: the token lacks openid", body = super::error::ErrorBody),
    ),
    security(("bearer" = ["openid"]))
)]
pub async fn userinfo_get(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let token = presented_token(&headers)?;
    respond(&state, &Method::GET, &headers, token).await
}

#[tracing::instrument(skip_all, name = "userinfo_post")]
#[utoipa::path(
    post, path = "/userinfo", tag = "openid", operation_id = "userinfo_post",
    request_body(content = String, content_type = "application/x-www-form-urlencoded", description = "`access_token=…` (RFC 6750 §2.2), or none with the Authorization header"),
    responses(
        (status = 200, description = "As GET", body = Object),
        (status = 401, description = "No valid bearer token, or two at once", body = super::error::ErrorBody),
        (status = 403, description = "insufficient_scope: the token lacks openid", body = super::error::ErrorBody),
    ),
    security(("bearer" = ["openid"]))
)]
pub async fn userinfo_post(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let form_token = form_urlencoded::parse(&body)
        .find(|(name, _)| name == "access_token")
        .map(|(_, value)| value.into_owned());
    match (headers.contains_key(header::AUTHORIZATION), form_token) {
        (true, Some(_)) => Err(ApiError::Bearer(Some(TokenError::Malformed))),
        (false, Some(token)) => {
            respond(&state, &Method::POST, &headers, Presented::Bearer(&token)).await
        }
        (_, None) => {
            let token = presented_token(&headers)?;
            respond(&state, &Method::POST, &headers, token).await
        }
    }
}

async fn respond(
    state: &AppState,
    method: &Method,
    headers: &HeaderMap,
    token: Presented<'_>,
) -> Result<Response, ApiError> {
    let sigil = &state.sigil;
    let config = &sigil.config;
    let audiences = [config.issuer.as_str(), config.audience()];
    let request = Request {
        method,
        path: "/userinfo",
        headers,
    };
    let claims = verify_presented(state, &request, token, Some(&audiences)).await?;
    let scope = Scopes::parse(claims.scope.as_deref().unwrap_or_default())
        .map_err(|_| ApiError::Bearer(Some(TokenError::Malformed)))?;
    // A token without `openid` was not issued for OpenID Connect.
    if !scope.contains("openid") {
        return Err(ApiError::InsufficientScope("openid"));
    }
    let now = sigil.clock.now();
    let Some(user) = sigil
        .users
        .enabled(sigil.store.as_ref(), &claims.sub, now)
        .await?
    else {
        return Err(ApiError::Bearer(Some(TokenError::InactiveSubject)));
    };
    let mut response = axum::Json(userinfo::claims(&user, &scope)).into_response();
    let h = response.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(response)
}
