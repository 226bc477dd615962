//! `POST /oauth/token`: RFC 6749 §3.2.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};

use super::error::ApiError;
use super::extract::{OAuthForm, basic_credentials};
use crate::oauth::{self, authenticate_client};
use crate::state::Sigil;

// RFC 6749 §3.2 / §5.1: form-encoded request, JSON response with
// `Cache-Control: no-store` and `Pragma: no-cache`; errors per §5.2.
#[tracing::instrument(skip_all, name = "token_post")]
pub async fn token_post(
    State(sigil): State<Arc<Sigil>>,
    headers: HeaderMap,
    OAuthForm(params): OAuthForm,
) -> Result<Response, ApiError> {
    let now = sigil.clock.now();
    let basic = basic_credentials(&headers)?;
    let client = authenticate_client(sigil.store.as_ref(), basic, &params).await?;
    let response = oauth::token(&sigil, &client, &params, now).await?;
    tracing::info!(
        event = "token.issued",
        client_id = %client.id,
        grant_type = params.get("grant_type").unwrap_or_default(),
        "issued an access token"
    );
    let mut response = axum::Json(response).into_response();
    let h = response.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    Ok(response)
}
