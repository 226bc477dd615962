//! The hosted pages: sign-in (password, second factor, passkey), sign-up,
//! consent, sign-out, the device page and the account page,
//! server-rendered (askama templates compiled in, HTML-escaped), no
//! external asset. The one script is Sigil's own `/assets/webauthn.js`,
//! for passkeys only: every page works without it for passwords and
//! codes. Handlers are thin: they parse the form,
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
mod device;
mod factor_views;
mod flow;
mod logout;
mod passkeys;
mod render;
mod second_factor;
mod sign_in;
mod sign_up;
mod steps;
mod totp;
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
            "/login/second-factor",
            post(second_factor::second_factor_post),
        )
        .route(
            "/passkeys/sign-in/start",
            post(passkeys::sign_in_start_post),
        )
        .route(
            "/passkeys/sign-in/finish",
            post(passkeys::sign_in_finish_post),
        )
        .route("/signup/passkey/start", post(passkeys::sign_up_start_post))
        .route(
            "/signup/passkey/finish",
            post(passkeys::sign_up_finish_post),
        )
        .route("/device", get(device::device_get).post(device::device_post))
        .route("/device/decision", post(device::device_decision_post))
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
        .route("/account/totp", post(totp::totp_start_post))
        .route("/account/totp/confirm", post(totp::totp_confirm_post))
        .route("/account/totp/remove", post(totp::totp_remove_post))
        .route("/account/recovery-codes", post(totp::recovery_codes_post))
        .route(
            "/account/passkeys/register/start",
            post(passkeys::register_start_post),
        )
        .route(
            "/account/passkeys/register/finish",
            post(passkeys::register_finish_post),
        )
        .route(
            "/account/passkeys/rename",
            post(account::rename_passkey_post),
        )
        .route(
            "/account/passkeys/remove",
            post(account::remove_passkey_post),
        )
        .route("/assets/sign-in.css", get(render::stylesheet_get))
        .route("/assets/webauthn.js", get(render::webauthn_script_get))
        .route("/branding/style.css", get(render::branding_stylesheet_get))
        .route("/branding/logo", get(render::branding_logo_get))
        .route("/favicon.ico", get(render::favicon_get))
}
