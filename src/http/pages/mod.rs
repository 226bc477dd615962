//! The hosted pages: sign-in, sign-up, consent, sign-out and the account
//! page, server-rendered (askama templates compiled in, HTML-escaped), no
//! JavaScript, no external asset. Handlers are thin: they parse the form,
//! call `oauth::authorize` / `oauth::logout` for the protocol and
//! `service::browser` for state changes, and render.
//!
//! Every page is sent with a strict CSP (`default-src 'none'`, styles and
//! images from Sigil only, `frame-ancestors 'none'`), `no-store`, and
//! every form carries a CSRF token checked by the [`csrf::PageForm`]
//! extractor, so a handler cannot forget it.

mod account;
mod authorize;
mod cookies;
mod csrf;
mod flow;
mod logout;
mod render;
mod sign_in;
mod sign_up;
mod views;

use axum::Router;
use axum::routing::{get, post};

pub use render::Chrome;

use super::AppState;

/// The pages' routes.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route(
            "/authorize",
            get(authorize::authorize_get).post(authorize::authorize_post),
        )
        .route("/login", get(sign_in::login_get).post(sign_in::login_post))
        .route(
            "/signup",
            get(sign_up::signup_get).post(sign_up::signup_post),
        )
        .route("/consent", post(authorize::consent_post))
        .route("/logout", get(logout::logout_get).post(logout::logout_post))
        .route("/logout/confirm", post(logout::logout_confirm_post))
        .route("/account", get(account::account_get))
        .route("/account/sessions/end", post(account::end_session_post))
        .route("/account/sessions/end-all", post(account::end_all_post))
        .route(
            "/account/consents/revoke",
            post(account::revoke_consent_post),
        )
        .route("/assets/sign-in.css", get(render::stylesheet_get))
        .route("/branding/style.css", get(render::branding_stylesheet_get))
        .route("/branding/logo", get(render::branding_logo_get))
        .route("/favicon.ico", get(render::favicon_get))
}
