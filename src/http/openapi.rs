//! The OpenAPI 3.1 document, generated from the handlers' annotations, and
//! the interactive docs page (Swagger UI, vendored in assets/ and embedded
//! in the binary, so it works without internet access).

use std::sync::OnceLock;

use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::{Modify, OpenApi};

struct Security;

impl Modify for Security {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                Http::builder()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .build(),
            ),
        );
        components.add_security_scheme(
            "client_basic",
            SecurityScheme::Http(Http::new(HttpAuthScheme::Basic)),
        );
    }
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Sigil",
        description = "A standalone identity provider: asymmetric JWT access tokens (RS256, EdDSA), a JWKS, and OAuth 2.0.\n\nTry it: register with POST /users, create a public client with `sigil clients create demo --public --grant-types password,refresh_token`, get a token from POST /oauth/token (grant_type=password, client_id=demo), then Authorize with it and call GET /users/me.",
        license(name = "Apache-2.0")
    ),
    paths(
        super::token::token_post,
        super::device::device_authorization_post,
        super::oauth_extra::revoke_post,
        super::oauth_extra::introspect_post,
        super::oauth_extra::revocations_get,
        super::oauth_extra::revocations_post,
        super::users::users_post,
        super::users::users_me_get,
        super::users::users_me_revoke_sessions_post,
        super::admin::admin_keys_get,
        super::admin::admin_keys_rotate_post,
        super::admin::admin_key_retire_post,
        super::admin_accounts::admin_users_get,
        super::admin_accounts::admin_user_action_post,
        super::admin_accounts::admin_user_consents_get,
        super::admin_accounts::admin_user_consent_revoke_post,
        super::admin_factors::admin_user_factors_get,
        super::admin_factors::admin_user_passkey_action_post,
        super::userinfo::userinfo_get,
        super::userinfo::userinfo_post,
        super::admin_accounts::admin_clients_get,
        super::admin_accounts::admin_clients_post,
        super::admin_accounts::admin_client_action_post,
        super::discovery::jwks_get,
        super::discovery::oauth_metadata_get,
        super::discovery::openid_configuration_get,
        super::health::healthz_get,
        super::health::readyz_get,
        super::health::metrics_get,
    ),
    components(schemas(super::error::ErrorBody, super::token::TokenForm, super::oauth_extra::RevokeForm, super::oauth_extra::FeedForm, super::device::DeviceAuthorizationForm)),
    modifiers(&Security),
    tags(
        (name = "oauth", description = "OAuth 2.0: tokens, revocation, introspection, the revocation feed"),
        (name = "openid", description = "OpenID Connect UserInfo (the browser pages, /authorize, /login, /logout, are HTML and documented in docs/oidc.md)"),
        (name = "users", description = "Registration and the caller's account"),
        (name = "admin", description = "Keys, users and clients (sigil:admin scope)"),
        (name = "discovery", description = "JWKS and server metadata"),
        (name = "operations", description = "Health and metrics"),
    )
)]
struct ApiDoc;

/// The document, serialized once.
pub fn document() -> &'static str {
    static JSON: OnceLock<String> = OnceLock::new();
    JSON.get_or_init(|| {
        ApiDoc::openapi()
            .to_json()
            .unwrap_or_else(|_| "{}".to_string())
    })
}

/// `GET /openapi.json`.
pub async fn openapi_get() -> Response {
    asset(document().as_bytes(), "application/json")
}

/// The docs page may load only its own scripts and styles and talk only to
/// this server; Swagger UI sets inline styles, hence `'unsafe-inline'` for
/// styles (never for scripts).
const DOCS_CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
                        img-src 'self' data:; connect-src 'self'; font-src 'self'; \
                        frame-ancestors 'none'; base-uri 'none'; form-action 'none'";

/// `GET /docs`.
pub async fn docs_get() -> Response {
    let mut response = asset(
        include_bytes!("../../assets/docs.html"),
        "text/html; charset=utf-8",
    );
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(DOCS_CSP),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    response
}

pub async fn docs_init_get() -> Response {
    asset(
        include_bytes!("../../assets/docs-init.js"),
        "text/javascript; charset=utf-8",
    )
}

pub async fn docs_bundle_get() -> Response {
    asset(
        include_bytes!("../../assets/swagger-ui/swagger-ui-bundle.js"),
        "text/javascript; charset=utf-8",
    )
}

pub async fn docs_css_get() -> Response {
    asset(
        include_bytes!("../../assets/swagger-ui/swagger-ui.css"),
        "text/css; charset=utf-8",
    )
}

fn asset(body: &'static [u8], content_type: &'static str) -> Response {
    let mut response = body.into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}
