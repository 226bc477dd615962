//! Browser sign-in's domain: the browser session behind the SSO cookie,
//! remembered consent, and their settings. No HTTP types here: the hosted
//! pages (`http::pages`) read the cookie and call these; state changes go
//! through `service::browser`.

pub mod consent;
pub mod pending;
pub mod session;
pub mod settings;

pub use settings::{Branding, SignInConfig};
