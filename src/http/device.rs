//! `POST /oauth/device_authorization`: RFC 8628 §3.1-3.2.

use std::sync::Arc;

use axum::Extension;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use utoipa::ToSchema;

use super::error::ApiError;
use super::extract::{OAuthForm, basic_credentials};
use super::observe::ClientAddr;
use crate::oauth::{self, authenticate_client_throttled};
use crate::state::Sigil;

/// The device authorization request (RFC 8628 §3.1).
#[derive(Deserialize, ToSchema)]
#[expect(
    dead_code,
    reason = "describes the form for the OpenAPI document; the handler reads it as raw pairs (`Params`), which RFC 6749 §3.2's duplicate-parameter rule needs"
)]
pub struct DeviceAuthorizationForm {
    #[schema(example = "my-cli")]
    client_id: Option<String>,
    /// Space-separated; defaults to everything the client may ask for.
    #[schema(example = "openid profile")]
    scope: Option<String>,
    /// Confidential clients only (or use HTTP Basic).
    #[schema(example = "")]
    client_secret: Option<String>,
}

// RFC 8628 §3.1: the client authenticates as at the token endpoint (a
// public client by client_id); §3.2: the answer, JSON, not cached.
#[tracing::instrument(skip_all, name = "device_authorization_post")]
#[utoipa::path(
    post, path = "/oauth/device_authorization", tag = "oauth", operation_id = "device_authorization",
    request_body(content = DeviceAuthorizationForm, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 200, description = "A device code and a user code (RFC 8628 §3.2)", body = crate::oauth::device::DeviceAuthorization),
        (status = 400, description = "RFC 6749 §5.2 error", body = super::error::ErrorBody),
        (status = 401, description = "invalid_client", body = super::error::ErrorBody),
    ),
    security((), ("client_basic" = []))
)]
pub async fn device_authorization_post(
    State(sigil): State<Arc<Sigil>>,
    client_addr: Option<Extension<ClientAddr>>,
    headers: HeaderMap,
    OAuthForm(params): OAuthForm,
) -> Result<Response, ApiError> {
    let now = sigil.clock.now();
    let basic = basic_credentials(&headers)?;
    let from = client_addr.map(|Extension(ClientAddr(ip))| ip);
    let client = authenticate_client_throttled(
        &sigil,
        from,
        basic,
        &params,
        "/oauth/device_authorization",
        now,
    )
    .await?;
    let answer = oauth::device::authorize(&sigil, &client, &params, now).await?;
    sigil.audit.record(
        now,
        &format!("client:{}", client.id),
        "device.authorization_started",
        None,
        serde_json::json!({ "scope": params.get("scope") }),
    );
    let mut response = axum::Json(answer).into_response();
    let h = response.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    Ok(response)
}
