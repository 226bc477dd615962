//! The gateway: where users' requests come in. It checks the bearer token
//! at the edge (for service A's audience: it only forwards to A), then
//! passes the request on to service A with the `Authorization` header as
//! it came, and relays A's answer.
//!
//! `GET /api/report` → service A's `GET /report`.

use std::time::Duration;

use axum::Router;
use axum::extract::{FromRef, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use sigil_verify::{Claims, Verifier};

use crate::error;

#[derive(Clone)]
struct Gateway {
    verifier: Verifier,
    http: reqwest::Client,
    service_a_url: String,
}

impl FromRef<Gateway> for Verifier {
    fn from_ref(gateway: &Gateway) -> Verifier {
        gateway.verifier.clone()
    }
}

/// The gateway's routes. `verifier` accepts the audience of service A.
pub fn router(verifier: Verifier, service_a_url: impl Into<String>) -> Router {
    let gateway = Gateway {
        verifier,
        http: http_client(),
        service_a_url: service_a_url.into().trim_end_matches('/').to_string(),
    };
    Router::new()
        .route("/api/report", get(report_get))
        .with_state(gateway)
}

/// An HTTP client for calls between the services: no redirects (a bearer
/// token must not follow one elsewhere), and timeouts.
pub(crate) fn http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(Duration::from_secs(5))
        .timeout(Duration::from_secs(15))
        .build()
        .expect("an HTTP client (the TLS backend is built in)")
}

/// `GET /api/report`: service A's report for the caller. The [`Claims`]
/// extractor has refused a missing or invalid token (401) before this runs.
async fn report_get(
    State(gateway): State<Gateway>,
    caller: Claims,
    headers: HeaderMap,
) -> Response {
    tracing::info!(user = %caller.sub, client_id = %caller.client_id, "forwarding to service A");
    let mut request = gateway
        .http
        .get(format!("{}/report", gateway.service_a_url));
    if let Some(authorization) = headers.get(header::AUTHORIZATION) {
        request = request.header(header::AUTHORIZATION, authorization);
    }
    let answer = match request.send().await {
        Ok(answer) => answer,
        Err(e) => {
            tracing::warn!(error = %e, "service A is unreachable");
            return error(
                StatusCode::BAD_GATEWAY,
                "upstream_unavailable",
                "service A is unreachable",
            );
        }
    };
    // Relay A's status, content type and body as they are.
    let status = answer.status();
    let content_type = answer.headers().get(header::CONTENT_TYPE).cloned();
    let body = match answer.bytes().await {
        Ok(body) => body,
        Err(e) => {
            tracing::warn!(error = %e, "service A's answer broke off");
            return error(
                StatusCode::BAD_GATEWAY,
                "upstream_unavailable",
                "service A's answer broke off",
            );
        }
    };
    let mut response = (status, body).into_response();
    if let Some(content_type) = content_type {
        response
            .headers_mut()
            .insert(header::CONTENT_TYPE, content_type);
    }
    response
}
