//! Service A: verifies the user's token (audience `service-a`), then calls
//! service B for the user. It does not pass the user's token on (B would
//! refuse it: it is not addressed to B); it exchanges it at Sigil (RFC
//! 8693) for one that is:
//!
//! ```text
//! POST /oauth/token                  Authorization: Basic service-a:…
//!   grant_type=urn:ietf:params:oauth:grant-type:token-exchange
//!   subject_token=<the user's token>  subject_token_type=…:access_token
//!   actor_token=<A's own token>       actor_token_type=…:access_token
//!   audience=service-b                scope=reports:read
//! → a token for the same user (sub, sid, acr, amr), aud service-b,
//!   client_id service-a, act {sub: service-a}, scope reports:read,
//!   expiring no later than the user's token
//! ```
//!
//! Its own token (the actor token) comes from the client_credentials
//! grant and is kept until shortly before it expires.
//!
//! `GET /report` (scope `reports:read`) → service B's `GET /report`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::{FromRef, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;
use sigil_verify::Verifier;
use sigil_verify::axum::{Rejection, RequireScope};
use tokio::sync::Mutex;

use crate::{REPORTS_READ, ReportsRead, Settings, error};

/// RFC 8693 §2.1: the grant type of a token exchange.
pub const TOKEN_EXCHANGE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
/// RFC 8693 §3: the type of an OAuth access token, subject or actor.
pub const ACCESS_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:access_token";

/// Service A, ready to serve (cheap to clone).
#[derive(Clone)]
pub struct ServiceA {
    verifier: Verifier,
    http: reqwest::Client,
    sigil: Arc<SigilClient>,
    service_b_url: Arc<str>,
}

impl FromRef<ServiceA> for Verifier {
    fn from_ref(service: &ServiceA) -> Verifier {
        service.verifier.clone()
    }
}

/// Service A as a client of Sigil's token endpoint.
struct SigilClient {
    token_endpoint: String,
    /// Already form-urlencoded for the Basic header (RFC 6749 §2.3.1).
    client_id: String,
    client_secret: String,
    /// The audience it asks exchanges for.
    service_b_audience: String,
    /// Its client_credentials token, while it has one worth keeping.
    own_token: Mutex<Option<OwnToken>>,
}

struct OwnToken {
    access_token: String,
    renew_after: Instant,
}

/// Sigil's token response (RFC 6749 §5.1, RFC 8693 §2.2.1).
#[derive(Deserialize)]
struct TokenResponse {
    access_token: String,
    token_type: String,
    expires_in: u64,
    #[serde(default)]
    issued_token_type: Option<String>,
}

/// Sigil's error response (RFC 6749 §5.2).
#[derive(Deserialize)]
struct ErrorResponse {
    error: String,
    #[serde(default)]
    error_description: Option<String>,
}

/// Why service A could not get a token from Sigil.
#[derive(Debug)]
pub enum TokenError {
    /// Sigil refused the request: its `error` and `error_description`.
    Refused { error: String, description: String },
    /// Sigil was unreachable or its answer was not a token response.
    Unavailable(String),
}

impl std::fmt::Display for TokenError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TokenError::Refused { error, description } => {
                write!(f, "Sigil refused: {error}: {description}")
            }
            TokenError::Unavailable(why) => write!(f, "Sigil is unavailable: {why}"),
        }
    }
}

impl std::error::Error for TokenError {}

impl ServiceA {
    /// Finds Sigil's token endpoint in its metadata (RFC 8414).
    /// `verifier` accepts the audience of service A's users' tokens, its
    /// client id.
    pub async fn new(settings: &Settings, verifier: Verifier) -> Result<ServiceA, String> {
        #[derive(Deserialize)]
        struct Metadata {
            issuer: String,
            token_endpoint: String,
        }
        let http = crate::gateway::http_client();
        let url = format!(
            "{}/.well-known/oauth-authorization-server",
            settings.issuer.trim_end_matches('/')
        );
        let metadata: Metadata = async {
            http.get(&url)
                .send()
                .await?
                .error_for_status()?
                .json()
                .await
        }
        .await
        .map_err(|e: reqwest::Error| format!("Sigil's metadata at {url}: {e}"))?;
        if metadata.issuer != settings.issuer {
            return Err(format!(
                "{url} names issuer {:?}, not {:?}",
                metadata.issuer, settings.issuer
            ));
        }
        let encode = |text: &str| form_urlencoded::byte_serialize(text.as_bytes()).collect();
        Ok(ServiceA {
            verifier,
            http,
            sigil: Arc::new(SigilClient {
                token_endpoint: metadata.token_endpoint,
                client_id: encode(&settings.service_a_client_id),
                client_secret: encode(&settings.service_a_client_secret),
                service_b_audience: settings.service_b_audience.clone(),
                own_token: Mutex::new(None),
            }),
            service_b_url: settings.service_b_url.trim_end_matches('/').into(),
        })
    }

    /// Exchanges the user's token for one service B accepts, with service
    /// A as actor and the scope narrowed to what B needs.
    pub async fn exchange(&self, user_token: &str) -> Result<String, TokenError> {
        let actor_token = self.own_token().await?;
        let exchanged = self
            .token_request(&[
                ("grant_type", TOKEN_EXCHANGE),
                ("subject_token", user_token),
                ("subject_token_type", ACCESS_TOKEN_TYPE),
                ("actor_token", &actor_token),
                ("actor_token_type", ACCESS_TOKEN_TYPE),
                ("audience", &self.sigil.service_b_audience),
                ("scope", REPORTS_READ),
            ])
            .await;
        if let Err(TokenError::Refused { error, .. }) = &exchanged
            && error == "invalid_grant"
        {
            // The user's token or ours is no longer good (revoked, expired,
            // its key removed): get ourselves a fresh one next time.
            *self.sigil.own_token.lock().await = None;
        }
        let exchanged = exchanged?;
        if exchanged.issued_token_type.as_deref() != Some(ACCESS_TOKEN_TYPE) {
            return Err(TokenError::Unavailable(format!(
                "the exchange issued a {:?}, not an access token",
                exchanged.issued_token_type
            )));
        }
        Ok(exchanged.access_token)
    }

    /// Service A's own token (client_credentials), kept until shortly
    /// before it expires. Concurrent requests wait for one fetch.
    async fn own_token(&self) -> Result<String, TokenError> {
        let mut cached = self.sigil.own_token.lock().await;
        if let Some(token) = cached.as_ref()
            && Instant::now() < token.renew_after
        {
            return Ok(token.access_token.clone());
        }
        let asked_at = Instant::now();
        let fresh = self
            .token_request(&[("grant_type", "client_credentials")])
            .await?;
        // Renew a quarter of its lifetime early, at most a minute early,
        // so it never expires on its way to Sigil.
        let lifetime = Duration::from_secs(fresh.expires_in);
        let early = (lifetime / 4).min(Duration::from_secs(60));
        *cached = Some(OwnToken {
            access_token: fresh.access_token.clone(),
            renew_after: asked_at + lifetime - early,
        });
        Ok(fresh.access_token)
    }

    /// A request to Sigil's token endpoint, authenticated with
    /// client_secret_basic.
    async fn token_request(&self, form: &[(&str, &str)]) -> Result<TokenResponse, TokenError> {
        let sigil = &self.sigil;
        let unavailable = |e: reqwest::Error| TokenError::Unavailable(e.to_string());
        let response = self
            .http
            .post(&sigil.token_endpoint)
            .basic_auth(&sigil.client_id, Some(&sigil.client_secret))
            .form(form)
            .send()
            .await
            .map_err(unavailable)?;
        if !response.status().is_success() {
            let status = response.status();
            return Err(match response.json::<ErrorResponse>().await {
                Ok(refusal) => TokenError::Refused {
                    error: refusal.error,
                    description: refusal.error_description.unwrap_or_default(),
                },
                Err(_) => TokenError::Unavailable(format!("the token endpoint answered {status}")),
            });
        }
        let token: TokenResponse = response.json().await.map_err(unavailable)?;
        if !token.token_type.eq_ignore_ascii_case("bearer") {
            return Err(TokenError::Unavailable(format!(
                "a {} token, not a bearer token",
                token.token_type
            )));
        }
        Ok(token)
    }
}

/// Service A's routes.
pub fn router(service: ServiceA) -> Router {
    Router::new()
        .route("/report", get(report_get))
        .with_state(service)
}

/// The request's bearer token, as the caller sent it.
fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

/// `GET /report`: service B's report, asked for the caller. The
/// extractor has checked the token (401) and its scope (403).
async fn report_get(
    State(service): State<ServiceA>,
    caller: RequireScope<ReportsRead>,
    headers: HeaderMap,
) -> Response {
    let Some(user_token) = bearer(&headers) else {
        return Rejection::missing_token()
            .with_realm(service.verifier.realm())
            .into_response();
    };
    let token_for_b = match service.exchange(user_token).await {
        Ok(token) => token,
        Err(e) => {
            tracing::warn!(user = %caller.sub, error = %e, "the token exchange failed");
            return error(
                StatusCode::BAD_GATEWAY,
                "exchange_failed",
                "could not get a token for service B",
            );
        }
    };
    let answer = service
        .http
        .get(format!("{}/report", service.service_b_url))
        .bearer_auth(&token_for_b)
        .send()
        .await;
    let answer = match answer {
        Ok(answer) => answer,
        Err(e) => {
            tracing::warn!(error = %e, "service B is unreachable");
            return error(
                StatusCode::BAD_GATEWAY,
                "upstream_unavailable",
                "service B is unreachable",
            );
        }
    };
    let status = answer.status();
    match answer.json::<serde_json::Value>().await {
        Ok(report) if status.is_success() => Json(report).into_response(),
        // B refusing our token is our problem, not the caller's: a 401
        // from B must not read as "your token is bad" to them.
        refused => {
            tracing::warn!(%status, answer = ?refused.ok(), "service B refused");
            error(
                StatusCode::BAD_GATEWAY,
                "upstream_refused",
                &format!("service B answered {status}"),
            )
        }
    }
}
