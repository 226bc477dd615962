//! Extractors that turn a malformed request into Sigil's JSON error instead
//! of axum's plain-text rejection.

use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, JsonRejection, PathRejection};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, header};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use secrecy::SecretString;
use serde::de::DeserializeOwned;

use super::error::ApiError;
use crate::oauth::{BasicCredentials, OAuthError, Params};

/// At most this many form parameters per request.
const MAX_PARAMS: usize = 32;

/// An `application/x-www-form-urlencoded` body as OAuth [`Params`].
pub struct OAuthForm(pub Params);

impl<S: Send + Sync> FromRequest<S> for OAuthForm {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let is_form = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .is_some_and(|v| {
                v.trim()
                    .eq_ignore_ascii_case("application/x-www-form-urlencoded")
            });
        if !is_form {
            return Err(OAuthError::InvalidRequest(
                "the body must be application/x-www-form-urlencoded".into(),
            )
            .into());
        }
        let body = Bytes::from_request(req, state)
            .await
            .map_err(body_rejection)?;
        let pairs: Vec<_> = form_urlencoded::parse(&body).into_owned().collect();
        if pairs.len() > MAX_PARAMS {
            return Err(OAuthError::InvalidRequest("too many parameters".into()).into());
        }
        Ok(OAuthForm(Params::from_pairs(pairs)?))
    }
}

fn body_rejection(e: BytesRejection) -> ApiError {
    if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::client(
            StatusCode::PAYLOAD_TOO_LARGE,
            "invalid_request",
            "the request body is too large",
        )
    } else {
        ApiError::client(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "the request body could not be read",
        )
    }
}

/// A JSON body; a bad one is a 400 (415 without the JSON content type).
pub struct ApiJson<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(value)) => Ok(ApiJson(value)),
            Err(rejection) => Err(json_rejection(rejection)),
        }
    }
}

fn json_rejection(rejection: JsonRejection) -> ApiError {
    let status = rejection.status();
    let description = match &rejection {
        JsonRejection::MissingJsonContentType(_) => "the body must be application/json".to_string(),
        JsonRejection::BytesRejection(_) if status == StatusCode::PAYLOAD_TOO_LARGE => {
            "the request body is too large".to_string()
        }
        _ => rejection.body_text(),
    };
    ApiError::client(status, "invalid_request", description)
}

/// Path parameters; one that cannot be read (e.g. `%FF`, not UTF-8) is a
/// JSON 400 `invalid_request`.
pub struct ApiPath<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for ApiPath<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match axum::extract::Path::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Path(value)) => Ok(ApiPath(value)),
            Err(rejection) => Err(path_rejection(rejection)),
        }
    }
}

fn path_rejection(rejection: PathRejection) -> ApiError {
    // A route whose pattern and extractor disagree is a bug, not bad input.
    if rejection.status().is_server_error() {
        return ApiError::internal(rejection.body_text());
    }
    ApiError::client(
        StatusCode::BAD_REQUEST,
        "invalid_request",
        rejection.body_text(),
    )
}

/// Reads `Authorization: Basic` client credentials (RFC 6749 §2.3.1: the id
/// and secret are form-urlencoded before base64). No header gives `None`.
pub fn basic_credentials(headers: &HeaderMap) -> Result<Option<BasicCredentials>, OAuthError> {
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Ok(None);
    };
    let malformed = || OAuthError::InvalidClient("malformed Basic credentials".into());
    let value = value.to_str().map_err(|_| malformed())?;
    let (scheme, encoded) = value.split_once(' ').ok_or_else(malformed)?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return Err(OAuthError::InvalidClient(
            "the token endpoint accepts Basic authentication only".into(),
        ));
    }
    let decoded = STANDARD.decode(encoded.trim()).map_err(|_| malformed())?;
    let decoded = String::from_utf8(decoded).map_err(|_| malformed())?;
    let (id, secret) = decoded.split_once(':').ok_or_else(malformed)?;
    let id = url_decode(id).ok_or_else(malformed)?;
    let decoded_secret = url_decode(secret).ok_or_else(malformed)?;
    // Many client libraries skip the form-encoding step; when decoding changed
    // the secret, the secret exactly as sent is tried too.
    let raw_secret = (decoded_secret != secret).then(|| SecretString::from(secret.to_string()));
    Ok(Some(BasicCredentials {
        client_id: id,
        secret: SecretString::from(decoded_secret),
        raw_secret,
    }))
}

/// `application/x-www-form-urlencoded` decoding of one component.
fn url_decode(text: &str) -> Option<String> {
    let spaced = text.replace('+', " ");
    percent_encoding::percent_decode_str(&spaced)
        .decode_utf8()
        .ok()
        .map(|s| s.into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_credentials_are_url_decoded() {
        let mut headers = HeaderMap::new();
        let encoded = STANDARD.encode("my%20app:s%3Acret+x");
        headers.insert(
            header::AUTHORIZATION,
            format!("Basic {encoded}").parse().unwrap(),
        );
        let creds = basic_credentials(&headers).unwrap().unwrap();
        assert_eq!(creds.client_id, "my app");
        use secrecy::ExposeSecret;
        assert_eq!(creds.secret.expose_secret(), "s:cret x");
    }

    #[test]
    fn malformed_basic_credentials_are_invalid_client() {
        for value in ["Basic", "Basic !!!", "Bearer abc", "Basic bm9jb2xvbg=="] {
            let mut headers = HeaderMap::new();
            headers.insert(header::AUTHORIZATION, value.parse().unwrap());
            assert!(
                matches!(
                    basic_credentials(&headers),
                    Err(OAuthError::InvalidClient(_))
                ),
                "{value}"
            );
        }
    }
}
