//! One error type for every endpoint. It owns the response: status, JSON
//! body `{error, error_description}`, `WWW-Authenticate` where a challenge is
//! due, `Cache-Control: no-store`, and an opaque body for 5xx whose cause is
//! logged, never sent.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value};

use crate::oauth::OAuthError;
use crate::store::StoreError;
use crate::tokens::TokenError;

#[derive(Debug)]
pub enum ApiError {
    /// RFC 6749 §5.2 errors from the OAuth endpoints.
    OAuth(OAuthError),
    /// RFC 6750 §3: no usable bearer token. `None` when none was presented.
    Bearer(Option<TokenError>),
    /// RFC 6750 §3.1: a valid token without the scope the resource needs.
    InsufficientScope(&'static str),
    /// RFC 9449 §7.1: a DPoP-bound token's proof is missing or invalid, or
    /// lacks the server's nonce (then sent in `DPoP-Nonce`).
    Dpop {
        code: &'static str,
        description: String,
        nonce: Option<String>,
    },
    /// Any other client error: status, code, description, optional
    /// per-field messages.
    Client {
        status: StatusCode,
        code: &'static str,
        description: String,
        fields: Option<Map<String, Value>>,
    },
    /// A dependency is down: 503 with `Retry-After`.
    Unavailable(String),
    /// A bug or unexpected failure: logged, answered with an opaque 500.
    Internal(String),
}

impl ApiError {
    pub fn client(
        status: StatusCode,
        code: &'static str,
        description: impl Into<String>,
    ) -> ApiError {
        ApiError::Client {
            status,
            code,
            description: description.into(),
            fields: None,
        }
    }

    pub fn internal(e: impl std::fmt::Display) -> ApiError {
        ApiError::Internal(e.to_string())
    }
}

impl From<OAuthError> for ApiError {
    fn from(e: OAuthError) -> Self {
        ApiError::OAuth(e)
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Unavailable(detail) => ApiError::Unavailable(detail),
            other => ApiError::Internal(other.to_string()),
        }
    }
}

const RETRY_AFTER_SECONDS: &str = "5";

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code, description, fields, challenge) = match self {
            ApiError::OAuth(e) => {
                let status = match &e {
                    OAuthError::InvalidClient(_) => StatusCode::UNAUTHORIZED,
                    OAuthError::ServerError(_) => StatusCode::INTERNAL_SERVER_ERROR,
                    OAuthError::TemporarilyUnavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
                    _ => StatusCode::BAD_REQUEST,
                };
                if let OAuthError::ServerError(detail) = &e {
                    tracing::error!(%detail, "token endpoint failed");
                }
                // RFC 6749 §5.2: a 401 carries a challenge for the scheme the
                // client used or may use.
                let challenge = (status == StatusCode::UNAUTHORIZED)
                    .then(|| r#"Basic realm="sigil""#.to_string());
                (
                    status,
                    e.code(),
                    e.description().to_string(),
                    None,
                    challenge,
                )
            }
            // RFC 6750 §3.1: no error code in the challenge when the request
            // carried no credentials; the body says the same in plain words.
            ApiError::Bearer(None) => (
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "a bearer token is required".to_string(),
                None,
                Some(r#"Bearer realm="sigil""#.to_string()),
            ),
            ApiError::Bearer(Some(e)) => {
                let description = e.to_string();
                let challenge = format!(
                    r#"Bearer realm="sigil", error="invalid_token", error_description="{description}""#
                );
                (
                    StatusCode::UNAUTHORIZED,
                    "invalid_token",
                    description,
                    None,
                    Some(challenge),
                )
            }
            ApiError::Dpop {
                code,
                description,
                nonce,
            } => {
                let challenge = format!(
                    r#"DPoP algs="{}", error="{code}", error_description="{description}""#,
                    crate::dpop::ALGORITHMS.join(" ")
                );
                let mut response = body(StatusCode::UNAUTHORIZED, code, &description, None);
                let h = response.headers_mut();
                if let Ok(value) = HeaderValue::from_str(&challenge) {
                    h.insert(header::WWW_AUTHENTICATE, value);
                }
                if let Some(value) = nonce.and_then(|n| HeaderValue::from_str(&n).ok()) {
                    h.insert("dpop-nonce", value);
                }
                return response;
            }
            ApiError::InsufficientScope(scope) => (
                StatusCode::FORBIDDEN,
                "insufficient_scope",
                format!("this endpoint requires the {scope} scope"),
                None,
                Some(format!(
                    r#"Bearer realm="sigil", error="insufficient_scope", scope="{scope}""#
                )),
            ),
            ApiError::Client {
                status,
                code,
                description,
                fields,
            } => (status, code, description, fields, None),
            ApiError::Unavailable(detail) => {
                tracing::warn!(%detail, "dependency unavailable");
                let mut response = body(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "temporarily_unavailable",
                    "the service is temporarily unavailable; retry shortly",
                    None,
                );
                response.headers_mut().insert(
                    header::RETRY_AFTER,
                    HeaderValue::from_static(RETRY_AFTER_SECONDS),
                );
                return response;
            }
            ApiError::Internal(detail) => {
                tracing::error!(%detail, "request failed");
                return body(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "server_error",
                    "the server encountered an internal error",
                    None,
                );
            }
        };
        let mut response = body(status, code, &description, fields);
        if let Some(value) = challenge.and_then(|c| HeaderValue::from_str(&c).ok()) {
            let bearer = value.as_bytes().starts_with(b"Bearer");
            let h = response.headers_mut();
            h.insert(header::WWW_AUTHENTICATE, value);
            // RFC 9449 §7.1: the DPoP scheme is accepted too.
            if bearer && status == StatusCode::UNAUTHORIZED {
                let dpop = format!(r#"DPoP algs="{}""#, crate::dpop::ALGORITHMS.join(" "));
                if let Ok(value) = HeaderValue::from_str(&dpop) {
                    h.append(header::WWW_AUTHENTICATE, value);
                }
            }
        }
        if status == StatusCode::SERVICE_UNAVAILABLE {
            response.headers_mut().insert(
                header::RETRY_AFTER,
                HeaderValue::from_static(RETRY_AFTER_SECONDS),
            );
        }
        response
    }
}

/// The error body of every endpoint (RFC 6749 §5.2 at the OAuth endpoints).
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct ErrorBody<'a> {
    /// An error code, e.g. `invalid_grant`.
    error: &'a str,
    error_description: &'a str,
    /// Per-field messages, for invalid registrations.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<std::collections::BTreeMap<String, String>>)]
    fields: Option<Map<String, Value>>,
}

fn body(
    status: StatusCode,
    code: &str,
    description: &str,
    fields: Option<Map<String, Value>>,
) -> Response {
    let body = ErrorBody {
        error: code,
        error_description: description,
        fields,
    };
    let mut response = (status, axum::Json(body)).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    response
}
