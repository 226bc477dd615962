//! Rendering: the branding every page shows, the headers every page gets,
//! and the error page.

use askama::Template;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;

use super::super::AppState;
use crate::browser::Branding;

/// The default stylesheet, compiled in.
const STYLESHEET: &str = include_str!("../../../assets/sign-in.css");
/// The pages' one script: the WebAuthn calls for passkeys, compiled in.
const WEBAUTHN_JS: &str = include_str!("../../../assets/webauthn.js");

/// What every page shows of the operator's branding, read once at start.
pub struct Chrome {
    pub product_name: String,
    pub has_logo: bool,
    pub has_stylesheet: bool,
    logo: Option<(Bytes, &'static str)>,
    stylesheet: Option<Bytes>,
}

impl Chrome {
    /// Reads the configured files. Start-up has checked they are readable
    /// (`Config::validated`); one that vanished since is left out, loudly.
    pub fn load(branding: &Branding) -> Chrome {
        let read = |path: &std::path::Path| match std::fs::read(path) {
            Ok(bytes) => Some(Bytes::from(bytes)),
            Err(e) => {
                tracing::error!(path = %path.display(), error = %e, "branding file unreadable; left out");
                None
            }
        };
        let logo = branding.logo_file.as_deref().and_then(|path| {
            let kind = crate::browser::settings::logo_type(path)?;
            read(path).map(|bytes| (bytes, kind))
        });
        let stylesheet = branding.stylesheet_file.as_deref().and_then(read);
        Chrome {
            product_name: branding.product_name.clone(),
            has_logo: logo.is_some(),
            has_stylesheet: stylesheet.is_some(),
            logo,
            stylesheet,
        }
    }
}

/// A rendered page: `status`, the template, and where its forms may lead
/// besides Sigil itself (a client's redirect URI: Chromium applies
/// `form-action` to the redirect that answers a form).
pub fn page(status: StatusCode, template: &impl Template, leads_to: Option<&str>) -> Response {
    render(status, template, leads_to, false)
}

/// [`page`], and when `script` (the page shows passkey buttons) one that
/// loads Sigil's one script (`/assets/webauthn.js`): its CSP then allows
/// scripts and fetches from Sigil itself, and nothing inline. A page
/// without passkeys keeps the stricter CSP.
pub fn page_with_script_if(
    script: bool,
    status: StatusCode,
    template: &impl Template,
    leads_to: Option<&str>,
) -> Response {
    render(status, template, leads_to, script)
}

fn render(
    status: StatusCode,
    template: &impl Template,
    leads_to: Option<&str>,
    script: bool,
) -> Response {
    let body = match template.render() {
        Ok(body) => body,
        Err(e) => {
            tracing::error!(error = %e, "rendering a page failed");
            return (
                StatusCode::INTERNAL_SERVER_ERROR,
                "the page could not be rendered",
            )
                .into_response();
        }
    };
    let mut response = (status, body).into_response();
    let form_action = leads_to
        .and_then(origin)
        .map(|o| format!(" {o}"))
        .unwrap_or_default();
    let scripts = if script {
        " script-src 'self'; connect-src 'self';"
    } else {
        ""
    };
    let csp = format!(
        "default-src 'none';{scripts} style-src 'self'; img-src 'self'; form-action 'self'{form_action}; \
         frame-ancestors 'none'; base-uri 'none'"
    );
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    if let Ok(csp) = HeaderValue::try_from(csp) {
        h.insert(header::CONTENT_SECURITY_POLICY, csp);
    }
    response
}

/// `scheme://host[:port]` of an absolute URI.
fn origin(uri: &str) -> Option<&str> {
    let start = uri.find("://")? + 3;
    let end = uri[start..]
        .find(['/', '?', '#'])
        .map_or(uri.len(), |i| start + i);
    // Quotes, semicolons or spaces would break out of the CSP directive;
    // registered URIs cannot hold them, but this is the last line.
    let origin = &uri[..end];
    (!origin.contains([';', ',', '\'', ' '])).then_some(origin)
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage<'a> {
    chrome: &'a Chrome,
    title: &'a str,
    message: &'a str,
}

/// Sigil's own error page: what cannot be sent back to a client.
pub fn error_page(chrome: &Chrome, status: StatusCode, message: &str) -> Response {
    let title = if status.is_server_error() {
        "Something went wrong"
    } else {
        "This request cannot be completed"
    };
    page(
        status,
        &ErrorPage {
            chrome,
            title,
            message,
        },
        None,
    )
}

/// A 303 to `location` (after a form, or the authorization response).
pub fn see_other(location: &str) -> Response {
    match HeaderValue::try_from(location) {
        Ok(value) => {
            let mut response = StatusCode::SEE_OTHER.into_response();
            response.headers_mut().insert(header::LOCATION, value);
            response
                .headers_mut()
                .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            response
        }
        Err(_) => (StatusCode::INTERNAL_SERVER_ERROR, "bad redirect").into_response(),
    }
}

fn asset(kind: &'static str, body: Bytes) -> Response {
    let mut response = body.into_response();
    let h = response.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(kind));
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=3600"),
    );
    response
}

pub async fn stylesheet_get() -> Response {
    asset(
        "text/css; charset=utf-8",
        Bytes::from_static(STYLESHEET.as_bytes()),
    )
}

pub async fn webauthn_script_get() -> Response {
    asset(
        "text/javascript; charset=utf-8",
        Bytes::from_static(WEBAUTHN_JS.as_bytes()),
    )
}

pub async fn branding_stylesheet_get(State(state): State<AppState>) -> Response {
    match &state.chrome.stylesheet {
        Some(css) => asset("text/css; charset=utf-8", css.clone()),
        None => error_page(
            &state.chrome,
            StatusCode::NOT_FOUND,
            "no stylesheet is configured",
        ),
    }
}

pub async fn branding_logo_get(State(state): State<AppState>) -> Response {
    match &state.chrome.logo {
        Some((bytes, kind)) => {
            let mut response = asset(kind, bytes.clone());
            // An SVG logo must not run script if opened directly.
            response.headers_mut().insert(
                header::CONTENT_SECURITY_POLICY,
                HeaderValue::from_static("default-src 'none'; style-src 'unsafe-inline'"),
            );
            response
        }
        None => error_page(
            &state.chrome,
            StatusCode::NOT_FOUND,
            "no logo is configured",
        ),
    }
}

/// Browsers ask for it on every page: the logo when one is configured,
/// else nothing (204, so no console shows an error).
pub async fn favicon_get(State(state): State<AppState>) -> Response {
    match &state.chrome.logo {
        Some((bytes, kind)) => asset(kind, bytes.clone()),
        None => {
            let mut response = StatusCode::NO_CONTENT.into_response();
            response.headers_mut().insert(
                header::CACHE_CONTROL,
                HeaderValue::from_static("public, max-age=86400"),
            );
            response
        }
    }
}
