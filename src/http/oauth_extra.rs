//! RFC 7009 revocation, RFC 7662 introspection, and the revocation feed.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Extension;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};
use utoipa::ToSchema;

use super::error::ApiError;
use super::extract::{OAuthForm, basic_credentials};
use super::observe::ClientAddr;
use crate::clients::Client;
use crate::oauth::{self, OAuthError, Params, authenticate_client_throttled};
use crate::state::Sigil;
use crate::store::RevocationKind;

const REVOKE: &str = "/oauth/revoke";
const INTROSPECT: &str = "/oauth/introspect";
const FEED: &str = "/oauth/revocations";

fn no_store(body: Value) -> Response {
    let mut response = axum::Json(body).into_response();
    let h = response.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    response
}

/// A revocation (RFC 7009) or introspection (RFC 7662) request.
#[derive(Deserialize, ToSchema)]
#[expect(
    dead_code,
    reason = "describes the form for the OpenAPI document; the handler reads it as raw pairs (`Params`), which RFC 6749 §3.2's duplicate-parameter rule needs"
)]
pub struct RevokeForm {
    token: String,
    #[schema(example = "")]
    token_type_hint: Option<String>,
    #[schema(example = "demo")]
    client_id: Option<String>,
    #[schema(example = "")]
    client_secret: Option<String>,
}

// RFC 7009 §2: POST /oauth/revoke, client-authenticated, form-encoded.
#[tracing::instrument(skip_all, name = "revoke_post")]
#[utoipa::path(
    post, path = "/oauth/revoke", tag = "oauth", operation_id = "revoke",
    request_body(content = RevokeForm, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 200, description = "Revoked, or nothing to revoke (RFC 7009 §2.2)", body = Object),
        (status = 400, description = "invalid_request", body = super::error::ErrorBody),
        (status = 401, description = "invalid_client", body = super::error::ErrorBody),
    ),
    security((), ("client_basic" = []))
)]
pub async fn revoke_post(
    State(sigil): State<Arc<Sigil>>,
    client_addr: Option<Extension<ClientAddr>>,
    headers: HeaderMap,
    OAuthForm(params): OAuthForm,
) -> Result<Response, ApiError> {
    let now = sigil.clock.now();
    let client = form_client(&sigil, client_addr, &headers, &params, REVOKE, now).await?;
    oauth::revoke(&sigil, &client, &params, now).await?;
    Ok(no_store(json!({})))
}

/// The client of a form-encoded request (Basic or form credentials),
/// with secret guessing throttled per client address.
async fn form_client(
    sigil: &Sigil,
    client_addr: Option<Extension<ClientAddr>>,
    headers: &HeaderMap,
    params: &Params,
    path: &str,
    now: i64,
) -> Result<Arc<Client>, ApiError> {
    let from = client_addr.map(|Extension(ClientAddr(ip))| ip);
    let basic = basic_credentials(headers)?;
    Ok(authenticate_client_throttled(sigil, from, basic, params, path, now).await?)
}

// RFC 7662 §2: POST /oauth/introspect, client-authenticated, form-encoded;
// always 200 with application/json for any token.
#[tracing::instrument(skip_all, name = "introspect_post")]
#[utoipa::path(
    post, path = "/oauth/introspect", tag = "oauth", operation_id = "introspect",
    request_body(content = RevokeForm, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 200, description = "{active: true, …claims} or {active: false} (RFC 7662 §2.2)", body = Object),
        (status = 401, description = "invalid_client", body = super::error::ErrorBody),
    ),
    security(("client_basic" = []))
)]
pub async fn introspect_post(
    State(sigil): State<Arc<Sigil>>,
    client_addr: Option<Extension<ClientAddr>>,
    headers: HeaderMap,
    OAuthForm(params): OAuthForm,
) -> Result<Response, ApiError> {
    let now = sigil.clock.now();
    let client = form_client(&sigil, client_addr, &headers, &params, INTROSPECT, now).await?;
    let body = oauth::introspect(&sigil, &client, &params, now).await?;
    Ok(no_store(body))
}

const FEED_PAGE: i64 = 1000;

/// `GET /oauth/revocations?since=<cursor>`: deny-list entries added after
/// the cursor, for resource services that verify tokens locally. Clients
/// authenticate with HTTP Basic (secrets never go in a URL). The format is
/// documented in docs/revocation-feed.md.
#[tracing::instrument(skip_all, name = "revocations_get")]
#[utoipa::path(
    get, path = "/oauth/revocations", tag = "oauth", operation_id = "revocations",
    params(("since" = Option<String>, Query, description = "The cursor of the previous page; 0 or absent for all entries in force")),
    responses(
        (status = 200, description = "Deny-list entries after the cursor (docs/revocation-feed.md)", body = Object),
        (status = 400, description = "invalid_request", body = super::error::ErrorBody),
        (status = 401, description = "invalid_client", body = super::error::ErrorBody),
    ),
    security(("client_basic" = []))
)]
pub async fn revocations_get(
    State(sigil): State<Arc<Sigil>>,
    client_addr: Option<Extension<ClientAddr>>,
    headers: HeaderMap,
    query: Result<Query<HashMap<String, String>>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ApiError> {
    let now = sigil.clock.now();
    let Query(query) =
        query.map_err(|_| OAuthError::InvalidRequest("malformed query string".into()))?;
    let basic = basic_credentials(&headers)?.ok_or_else(|| {
        OAuthError::InvalidClient(
            "the revocation feed requires HTTP Basic client authentication (or a POST)".into(),
        )
    })?;
    let from = client_addr.map(|Extension(ClientAddr(ip))| ip);
    let client =
        authenticate_client_throttled(&sigil, from, Some(basic), &Params::default(), FEED, now)
            .await?;
    feed_page(&sigil, &client, query.get("since").map(String::as_str), now).await
}

/// A page of the revocation feed, asked for in a form.
#[derive(Deserialize, ToSchema)]
#[expect(
    dead_code,
    reason = "describes the form for the OpenAPI document; the handler reads it as raw pairs (`Params`)"
)]
pub struct FeedForm {
    #[schema(example = "0")]
    since: Option<String>,
    client_assertion_type: Option<String>,
    client_assertion: Option<String>,
}

/// `POST /oauth/revocations` with `since` in a form: the same page as the
/// GET, for clients that authenticate in the body (`private_key_jwt`, or
/// `client_secret_post`).
#[tracing::instrument(skip_all, name = "revocations_post")]
#[utoipa::path(
    post, path = "/oauth/revocations", tag = "oauth", operation_id = "revocations_form",
    request_body(content = FeedForm, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 200, description = "Deny-list entries after the cursor (docs/revocation-feed.md)", body = Object),
        (status = 400, description = "invalid_request", body = super::error::ErrorBody),
        (status = 401, description = "invalid_client", body = super::error::ErrorBody),
    ),
    security((), ("client_basic" = []))
)]
pub async fn revocations_post(
    State(sigil): State<Arc<Sigil>>,
    client_addr: Option<Extension<ClientAddr>>,
    headers: HeaderMap,
    OAuthForm(params): OAuthForm,
) -> Result<Response, ApiError> {
    let now = sigil.clock.now();
    let client = form_client(&sigil, client_addr, &headers, &params, FEED, now).await?;
    feed_page(&sigil, &client, params.get("since"), now).await
}

async fn feed_page(
    sigil: &Sigil,
    client: &Client,
    since: Option<&str>,
    now: i64,
) -> Result<Response, ApiError> {
    if client.is_public() {
        return Err(OAuthError::InvalidClient(
            "the revocation feed requires a confidential client".into(),
        )
        .into());
    }
    let since = match since {
        None | Some("") => 0,
        Some(text) => text
            .parse::<i64>()
            .ok()
            .filter(|n| *n >= 0)
            .ok_or_else(|| {
                OAuthError::InvalidRequest("since must be a cursor returned by this feed".into())
            })?,
    };
    let records = sigil
        .store
        .revocations_since(since, now, FEED_PAGE + 1)
        .await?;
    let more = records.len() as i64 > FEED_PAGE;
    let page = &records[..records.len().min(FEED_PAGE as usize)];
    let cursor = page.last().map_or(since, |r| r.seq);
    let entries: Vec<Value> = page
        .iter()
        .map(|r| match r.kind {
            RevocationKind::Token => json!({"type": "token", "jti": r.value, "exp": r.expires_at}),
            RevocationKind::Session => json!({"type": "session", "sid": r.value, "exp": r.expires_at}),
            RevocationKind::User => json!({"type": "user", "sub": r.value, "not_before": r.not_before, "exp": r.expires_at}),
            RevocationKind::Key => json!({"type": "key", "kid": r.value, "exp": r.expires_at}),
        })
        .collect();
    let body = json!({
        "entries": entries,
        "cursor": cursor.to_string(),
        "more": more,
        "poll_interval": sigil.config.revocation_poll_interval.as_secs().max(1),
    });
    let mut response = (StatusCode::OK, axum::Json(body)).into_response();
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(response)
}
