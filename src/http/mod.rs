//! The HTTP skin: routers, extractors, the error renderer and the hosted
//! sign-in pages (`pages`). axum types live here and nowhere else;
//! handlers parse, call `oauth`/`service`, render.

mod admin;
mod admin_accounts;
mod admin_factors;
mod bearer;
mod device;
mod discovery;
mod error;
mod extract;
mod health;
mod oauth_extra;
mod observe;
mod openapi;
mod pages;
mod server;
pub mod tls;
mod token;
mod userinfo;
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
pub use server::serve_router;

use crate::state::Sigil;

/// Request bodies larger than this are refused (413) before parsing.
const MAX_BODY_BYTES: usize = 16 * 1024;

#[derive(Clone)]
pub struct AppState {
    pub sigil: Arc<Sigil>,
    /// `trusted_proxies`, parsed once.
    proxies: Arc<Vec<ipnet::IpNet>>,
    http_metrics: Arc<observe::HttpMetrics>,
    /// The hosted pages' branding, read once.
    chrome: Arc<pages::Chrome>,
}

impl FromRef<AppState> for Arc<Sigil> {
    fn from_ref(state: &AppState) -> Self {
        Arc::clone(&state.sigil)
    }
}

/// Every route of the public listener (with `/metrics` unless the
/// operator moved it to a separate admin listener).
pub fn app(sigil: Arc<Sigil>) -> Router {
    let separate_admin = sigil.config.admin_listen.is_some();
    let state = AppState {
        proxies: Arc::new(sigil.config.proxy_networks().unwrap_or_default()),
        chrome: Arc::new(pages::Chrome::load(&sigil.config.branding)),
        sigil,
        http_metrics: Arc::default(),
    };
    let mut router = Router::new()
        .route("/oauth/token", post(token::token_post))
        .route(
            "/oauth/device_authorization",
            post(device::device_authorization_post),
        )
        .route("/oauth/revoke", post(oauth_extra::revoke_post))
        .route("/oauth/introspect", post(oauth_extra::introspect_post))
        .route(
            "/oauth/revocations",
            get(oauth_extra::revocations_get).post(oauth_extra::revocations_post),
        )
        .route(
            "/userinfo",
            get(userinfo::userinfo_get).post(userinfo::userinfo_post),
        )
        .route("/users", post(users::users_post))
        .route("/users/me", get(users::users_me_get))
        .route(
            "/users/me/revoke-sessions",
            post(users::users_me_revoke_sessions_post),
        )
        .route("/admin/keys", get(admin::admin_keys_get))
        .route("/admin/users", get(admin_accounts::admin_users_get))
        .route(
            "/admin/users/{username}/{action}",
            post(admin_accounts::admin_user_action_post),
        )
        .route(
            "/admin/users/{username}/consents",
            get(admin_accounts::admin_user_consents_get),
        )
        .route(
            "/admin/users/{username}/factors",
            get(admin_factors::admin_user_factors_get),
        )
        .route(
            "/admin/users/{username}/passkeys/{id}/{action}",
            post(admin_factors::admin_user_passkey_action_post),
        )
        .route(
            "/admin/users/{username}/consents/{client_id}/revoke",
            post(admin_accounts::admin_user_consent_revoke_post),
        )
        .route(
            "/admin/clients",
            get(admin_accounts::admin_clients_get).post(admin_accounts::admin_clients_post),
        )
        .route(
            "/admin/clients/{client_id}/{action}",
            post(admin_accounts::admin_client_action_post),
        )
        .route("/admin/keys/rotate", post(admin::admin_keys_rotate_post))
        .route(
            "/admin/keys/{kid}/retire",
            post(admin::admin_key_retire_post),
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
        .route("/healthz", get(health::healthz_get))
        .route("/readyz", get(health::readyz_get))
        .route("/openapi.json", get(openapi::openapi_get))
        .route("/docs", get(openapi::docs_get))
        .route("/docs/init.js", get(openapi::docs_init_get))
        .route("/docs/swagger-ui-bundle.js", get(openapi::docs_bundle_get))
        .route("/docs/swagger-ui.css", get(openapi::docs_css_get));
    router = router.merge(pages::routes());
    if !separate_admin {
        router = router.route("/metrics", get(health::metrics_get));
    }
    finish(router, state)
}

/// The admin listener (`admin_listen`): metrics and health only.
pub fn admin_app(sigil: Arc<Sigil>) -> Router {
    let state = AppState {
        proxies: Arc::new(sigil.config.proxy_networks().unwrap_or_default()),
        chrome: Arc::new(pages::Chrome::load(&sigil.config.branding)),
        sigil,
        http_metrics: Arc::default(),
    };
    let router = Router::new()
        .route("/metrics", get(health::metrics_get))
        .route("/healthz", get(health::healthz_get))
        .route("/readyz", get(health::readyz_get));
    finish(router, state)
}

/// The layers every router shares, outermost last.
fn finish(router: Router<AppState>, state: AppState) -> Router {
    // A request not answered in this time is answered 503; the time runs
    // while its body is read, so a trickling body is cut too.
    let request_timeout = state.sigil.config.http.request_timeout;
    router
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(
            ServiceBuilder::new()
                .layer(HandleErrorLayer::new(|_: BoxError| async {
                    ApiError::Unavailable("request timed out".into())
                }))
                .timeout(request_timeout),
        )
        .layer(CatchPanicLayer::custom(
            |_: Box<dyn std::any::Any + Send>| {
                ApiError::internal("a request handler panicked").into_response()
            },
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            observe::observe,
        ))
        .layer(SetResponseHeaderLayer::overriding(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ))
        .layer(SetResponseHeaderLayer::if_not_present(
            header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
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

/// After shutdown is requested, requests in flight get this long to finish.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(20);

/// Serves Sigil's public API on `listener` until `shutdown` resolves.
pub async fn serve(
    listener: TcpListener,
    sigil: Arc<Sigil>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let limits = sigil.config.http.clone();
    serve_router(listener, app(sigil), limits, shutdown).await
}
