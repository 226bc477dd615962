//! `POST /oauth/token`: RFC 6749 §3.2.

use std::sync::Arc;

use axum::Extension;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;
use utoipa::ToSchema;

use super::error::ApiError;
use super::extract::{OAuthForm, basic_credentials};
use super::observe::ClientAddr;
use crate::oauth::{self, OAuthError, authenticate_client_throttled};
use crate::state::Sigil;

/// The token request (RFC 6749 §4.3.2, §4.4.2, §6). Public clients send
/// `client_id`; confidential ones HTTP Basic or `client_secret`.
#[derive(Deserialize, ToSchema)]
#[expect(
    dead_code,
    reason = "describes the form for the OpenAPI document; the handler reads it as raw pairs (`Params`), which RFC 6749 §3.2's duplicate-parameter rule needs"
)]
pub struct TokenForm {
    /// `authorization_code`, `password`, `refresh_token`, `client_credentials`
    /// or `urn:ietf:params:oauth:grant-type:device_code`.
    #[schema(example = "password")]
    grant_type: String,
    #[schema(example = "alice")]
    username: Option<String>,
    #[schema(example = "correct horse battery")]
    password: Option<String>,
    #[schema(example = "")]
    refresh_token: Option<String>,
    /// The authorization code (`authorization_code` grant).
    #[schema(example = "")]
    code: Option<String>,
    /// The redirect URI of the authorization request (`authorization_code`).
    #[schema(example = "")]
    redirect_uri: Option<String>,
    /// The PKCE verifier (RFC 7636 §4.5).
    #[schema(example = "")]
    code_verifier: Option<String>,
    /// The device code (`urn:ietf:params:oauth:grant-type:device_code`).
    #[schema(example = "")]
    device_code: Option<String>,
    /// Token exchange (RFC 8693): the user's access token, its type, and
    /// optionally the acting service's own token and type.
    #[schema(example = "")]
    subject_token: Option<String>,
    #[schema(example = "")]
    subject_token_type: Option<String>,
    #[schema(example = "")]
    actor_token: Option<String>,
    #[schema(example = "")]
    actor_token_type: Option<String>,
    /// Token exchange: the service the new token is for.
    #[schema(example = "")]
    audience: Option<String>,
    /// `private_key_jwt` (RFC 7523): the assertion and its type.
    #[schema(example = "")]
    client_assertion: Option<String>,
    #[schema(example = "")]
    client_assertion_type: Option<String>,
    /// Space-separated; defaults to everything the client may ask for.
    #[schema(example = "")]
    scope: Option<String>,
    #[schema(example = "demo")]
    client_id: Option<String>,
    /// Confidential clients only (or use HTTP Basic).
    #[schema(example = "")]
    client_secret: Option<String>,
}

// RFC 6749 §3.2 / §5.1: form-encoded request, JSON response with
// `Cache-Control: no-store` and `Pragma: no-cache`; errors per §5.2.
#[tracing::instrument(skip_all, name = "token_post")]
#[utoipa::path(
    post, path = "/oauth/token", tag = "oauth", operation_id = "token",
    request_body(content = TokenForm, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 200, description = "Tokens issued (RFC 6749 §5.1)", body = crate::oauth::TokenResponse),
        (status = 400, description = "RFC 6749 §5.2 error", body = super::error::ErrorBody),
        (status = 401, description = "invalid_client", body = super::error::ErrorBody),
        (status = 503, description = "temporarily_unavailable", body = super::error::ErrorBody),
    ),
    security((), ("client_basic" = []))
)]
pub async fn token_post(
    State(sigil): State<Arc<Sigil>>,
    client_addr: Option<Extension<ClientAddr>>,
    headers: HeaderMap,
    OAuthForm(params): OAuthForm,
) -> Result<Response, ApiError> {
    let now = sigil.clock.now();
    let grant = grant_label(params.get("grant_type"));
    let outcome = async {
        // RFC 9449 §4-5: a proof binds the tokens to the client's key.
        // Checked first: a client told use_dpop_nonce retries with a new
        // proof and the same body, so its assertion (RFC 7523, used once)
        // must not have been spent on the refused try.
        let proofs = dpop_headers(&headers);
        let proof =
            oauth::dpop::check_request(&sigil, &proofs, "POST", TOKEN_PATH, None, now).await?;
        let basic = basic_credentials(&headers)?;
        let from = client_addr.as_ref().map(|Extension(ClientAddr(ip))| *ip);
        let client =
            authenticate_client_throttled(&sigil, from, basic, &params, TOKEN_PATH, now).await?;
        let ctx = oauth::Context {
            from,
            dpop: proof.as_ref(),
            now,
        };
        let issued = oauth::token(&sigil, &client, &params, ctx).await?;
        Ok::<_, OAuthError>((client, issued))
    }
    .await;
    let nonce = oauth::dpop::nonce_to_send(&sigil, now);
    let (client, issued) = match outcome {
        Ok(done) => done,
        Err(e) => {
            metrics::counter!(crate::metrics::LOGIN_FAILURES, "reason" => e.code(), "grant" => grant).increment(1);
            if matches!(e, OAuthError::InvalidGrant(_)) && grant == "password" {
                let username = params.get("username").unwrap_or_default();
                let from = client_addr.map(|Extension(ClientAddr(ip))| ip.to_string());
                let detail = json!({ "client_id": params.get("client_id"), "client_addr": from });
                sigil
                    .audit
                    .record(now, "anonymous", "login.failed", Some(username), detail);
            }
            let mut response = ApiError::from(e).into_response();
            with_nonce(&mut response, nonce.as_deref());
            return Ok(response);
        }
    };
    let claims = &issued.claims;
    let alg = client.alg.unwrap_or(sigil.config.default_alg).as_str();
    metrics::counter!(crate::metrics::TOKENS_ISSUED, "grant" => grant, "alg" => alg).increment(1);
    sigil.audit.record(
        now,
        &format!("client:{}", client.id),
        "token.issued",
        Some(&claims.sub),
        json!({ "grant": grant, "alg": alg, "jti": claims.jti, "sid": claims.sid, "scope": claims.scope }),
    );
    let mut response = axum::Json(issued).into_response();
    let h = response.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    with_nonce(&mut response, nonce.as_deref());
    Ok(response)
}

/// Where the token endpoint is (DPoP's `htu`, assertions' `aud`).
pub(super) const TOKEN_PATH: &str = "/oauth/token";

/// The request's `DPoP` header values (RFC 9449 §4.1).
pub(super) fn dpop_headers(headers: &HeaderMap) -> Vec<&str> {
    headers
        .get_all("dpop")
        .iter()
        .map(|v| v.to_str().unwrap_or("\u{0}"))
        .collect()
}

/// RFC 9449 §8: the server nonce, when nonces are required.
pub(super) fn with_nonce(response: &mut Response, nonce: Option<&str>) {
    if let Some(value) = nonce.and_then(|n| HeaderValue::from_str(n).ok()) {
        response.headers_mut().insert("dpop-nonce", value);
    }
}

/// A bounded label for the grant type (metrics must not take arbitrary input).
fn grant_label(grant: Option<&str>) -> &'static str {
    match grant {
        Some("password") => "password",
        Some("authorization_code") => "authorization_code",
        Some("refresh_token") => "refresh_token",
        Some("client_credentials") => "client_credentials",
        Some("urn:ietf:params:oauth:grant-type:device_code") => "device_code",
        Some("urn:ietf:params:oauth:grant-type:token-exchange") => "token_exchange",
        Some(_) => "other",
        None => "none",
    }
}
