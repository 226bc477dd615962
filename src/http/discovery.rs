//! Public, unauthenticated documents: the JWKS and the server metadata.
//! Both are served from bodies held in memory, so neither waits on the
//! database (see `keys` and `metadata`).

use std::sync::Arc;

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;

use crate::state::Sigil;

const STALE_IF_ERROR_SECONDS: u64 = 24 * 3600;

// RFC 7517 §5: the JWK Set. `Cache-Control` never lets a verifier cache the
// set past its next change; `ETag`/`If-None-Match` make revalidation cheap.
#[utoipa::path(
    get, path = "/.well-known/jwks.json", tag = "discovery", operation_id = "jwks",
    responses(
        (status = 200, description = "The published public keys (RFC 7517)", body = Object, content_type = "application/jwk-set+json"),
        (status = 304, description = "Not modified (If-None-Match matched the ETag)"),
    )
)]
pub async fn jwks_get(State(sigil): State<Arc<Sigil>>, headers: HeaderMap) -> Response {
    let keys = sigil.keys.current();
    let now = sigil.clock.now();
    let max_age = keys.jwks_max_age(now, sigil.config.jwks_max_age.as_secs());
    // stale-if-error lets caches keep serving the keys while Sigil is
    // unreachable, so verification does not fail with it.
    let cache_control =
        format!("public, max-age={max_age}, stale-if-error={STALE_IF_ERROR_SECONDS}");
    let etag = keys.etag();
    let not_modified = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag || t.trim() == "*"));
    let mut response = if not_modified {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        let mut r = Response::new(Body::from(keys.jwks_body().clone()));
        r.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/jwk-set+json"),
        );
        r
    };
    let h = response.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&cache_control) {
        h.insert(header::CACHE_CONTROL, v);
    }
    if let Ok(v) = HeaderValue::from_str(etag) {
        h.insert(header::ETAG, v);
    }
    response
}

// RFC 8414 §3: GET /.well-known/oauth-authorization-server
#[utoipa::path(
    get, path = "/.well-known/oauth-authorization-server", tag = "discovery", operation_id = "oauth_metadata",
    responses((status = 200, description = "RFC 8414 metadata", body = Object))
)]
pub async fn oauth_metadata_get(State(sigil): State<Arc<Sigil>>) -> Response {
    json_body(sigil.metadata.current().oauth.clone())
}

// OpenID Connect Discovery 1.0 §4: GET /.well-known/openid-configuration
#[utoipa::path(
    get, path = "/.well-known/openid-configuration", tag = "discovery", operation_id = "openid_configuration",
    responses((status = 200, description = "The same metadata with the OpenID Discovery fields", body = Object))
)]
pub async fn openid_configuration_get(State(sigil): State<Arc<Sigil>>) -> Response {
    json_body(sigil.metadata.current().openid.clone())
}

fn json_body(body: Bytes) -> Response {
    let mut r = Response::new(Body::from(body));
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=60"),
    );
    r
}
