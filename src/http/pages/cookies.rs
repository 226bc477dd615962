//! The pages' cookies: the browser session, the CSRF secret, and a sign-in
//! awaiting its second factor.
//!
//! Both are `HttpOnly`, `SameSite=Lax` and `Path=/`; when the issuer is
//! https they are also `Secure` and take the `__Host-` prefix, which
//! browsers accept only from a secure origin, for the whole host, so a
//! sibling subdomain cannot plant or shadow them.

use axum::http::{HeaderMap, HeaderValue, header};

use crate::config::Config;

pub const SESSION: &str = "sigil_session";
pub const CSRF: &str = "sigil_csrf";
/// A sign-in between its password and its second factor (see
/// `browser::pending`).
pub const PENDING: &str = "sigil_pending";

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

#[cfg(test)]
mod tests {
    use super::*;

    fn config(issuer: &str) -> Config {
        Config {
            issuer: issuer.into(),
            ..Config::default()
        }
    }

    #[test]
    fn under_https_cookies_are_secure_and_host_prefixed() {
        let https = config("https://id.example.com");
        let cookie = set(&https, SESSION, "s3cr3t", 60);
        assert_eq!(
            cookie.to_str().unwrap(),
            "__Host-sigil_session=s3cr3t; Path=/; HttpOnly; SameSite=Lax; Max-Age=60; Secure"
        );
        let plain = config("http://127.0.0.1:8080");
        let cookie = set(&plain, SESSION, "s3cr3t", 60);
        assert!(!cookie.to_str().unwrap().contains("Secure"));
        assert!(cookie.to_str().unwrap().starts_with("sigil_session="));
    }

    #[test]
    fn only_the_cookie_of_this_servers_name_is_read() {
        let https = config("https://id.example.com");
        let mut headers = HeaderMap::new();
        headers.insert(
            header::COOKIE,
            HeaderValue::from_static("sigil_session=planted; __Host-sigil_session=real"),
        );
        assert_eq!(read(&https, &headers, SESSION).as_deref(), Some("real"));
        assert_eq!(
            read(&config("http://x.example"), &headers, SESSION).as_deref(),
            Some("planted")
        );
    }
}
