//! The pages' two cookies: the browser session and the CSRF secret.
//!
//! Both are `HttpOnly`, `SameSite=Lax` and `Path=/`; when the issuer is
//! https they are also `Secure` and take the `__Host-` prefix, which
//! browsers accept only from a secure origin, for the whole host, so a
//! sibling subdomain cannot plant or shadow them.

use axum::http::{HeaderMap, HeaderValue, header};

use crate::config::Config;

pub const SESSION: &str = "sigil_session";
pub const CSRF: &str = "sigil_csrf";

/// The cookie's name on this server (`__Host-` prefixed under https).
pub fn name(config: &Config, base: &str) -> String {
    if secure(config) {
        format!("__Host-{base}")
    } else {
        base.to_string()
    }
}

fn secure(config: &Config) -> bool {
    config.issuer.starts_with("https://")
}

/// The value of the request's cookie `base`, if it sent one.
pub fn read(config: &Config, headers: &HeaderMap, base: &str) -> Option<String> {
    let name = name(config, base);
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(n, _)| *n == name)
        .map(|(_, v)| v.to_string())
        .filter(|v| !v.is_empty())
}

/// A `Set-Cookie` for `base` = `value`, kept for `max_age` seconds
/// (`0` deletes it).
pub fn set(config: &Config, base: &str, value: &str, max_age: u64) -> HeaderValue {
    let secure = if secure(config) { "; Secure" } else { "" };
    let text = format!(
        "{}={value}; Path=/; HttpOnly; SameSite=Lax; Max-Age={max_age}{secure}",
        name(config, base)
    );
    // The value is base64url and the name fixed: always a valid header.
    HeaderValue::try_from(text).unwrap_or_else(|_| HeaderValue::from_static(""))
}
