//! The HTTP skin: routers, extractors and the error renderer. axum types
//! live here and nowhere else; handlers parse, call `oauth`/`users`, render.

mod admin;
mod bearer;
mod discovery;
mod error;
mod extract;
mod oauth_extra;
mod token;
mod users;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::BoxError;
use axum::Router;
use axum::error_handling::HandleErrorLayer;
use axum::extract::{DefaultBodyLimit, FromRef};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use tokio::net::TcpListener;
use tower::ServiceBuilder;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::set_header::SetResponseHeaderLayer;

pub use error::ApiError;

use crate::state::Sigil;

/// Request bodies larger than this are refused (413) before parsing.
const MAX_BODY_BYTES: usize = 16 * 1024;
/// A request that has not completed in this time is answered 503.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Clone)]
pub struct AppState {
    pub sigil: Arc<Sigil>,
    metadata: Arc<discovery::MetadataCache>,
}

impl FromRef<AppState> for Arc<Sigil> {
    fn from_ref(state: &AppState) -> Self {
        Arc::clone(&state.sigil)
    }
}

/// Every route of the public listener.
pub fn app(sigil: Arc<Sigil>) -> Router {
    let state = AppState {
        sigil,
        metadata: Arc::new(discovery::MetadataCache::new()),
    };
    Router::new()
        .route("/oauth/token", post(token::token_post))
        .route("/users", post(users::users_post))
        .route("/oauth/revoke", post(oauth_extra::revoke_post))
        .route("/oauth/introspect", post(oauth_extra::introspect_post))
        .route("/oauth/revocations", get(oauth_extra::revocations_get))
        .route("/admin/keys", get(admin::admin_keys_get))
        .route("/admin/keys/rotate", post(admin::admin_keys_rotate_post))
        .route(
            "/admin/keys/{kid}/retire",
            post(admin::admin_key_retire_post),
        )
        .route("/users/me", get(users::users_me_get))
        .route(
            "/users/me/revoke-sessions",
            post(users::users_me_revoke_sessions_post),
        )
        .route("/.well-known/jwks.json", get(discovery::jwks_get))
        .route(
            "/.well-known/oauth-authorization-server",
            get(discovery::oauth_metadata_get),
        )
        .route(
            "/.well-known/openid-configuration",
            get(discovery::openid_configuration_get),
        )
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(
            ServiceBuilder::new()
                .layer(HandleErrorLayer::new(|_: BoxError| async {
                    ApiError::Unavailable("request timed out".into())
                }))
                .timeout(REQUEST_TIMEOUT),
        )
        .layer(CatchPanicLayer::custom(
            |_: Box<dyn std::any::Any + Send>| {
                ApiError::internal("a request handler panicked").into_response()
            },
        ))
        .layer(SetResponseHeaderLayer::overriding(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ))
        .with_state(state)
}

async fn not_found() -> impl IntoResponse {
    ApiError::client(StatusCode::NOT_FOUND, "not_found", "no such endpoint")
}

async fn method_not_allowed() -> impl IntoResponse {
    ApiError::client(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "method not allowed on this endpoint",
    )
}

/// Serves `app` on `listener` until `shutdown` resolves, then finishes the
/// requests in flight.
pub async fn serve(
    listener: TcpListener,
    sigil: Arc<Sigil>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, app(sigil))
        .with_graceful_shutdown(shutdown)
        .await
}
