//! Request ids, one tracing span per request, and per-route metrics.
//!
//! Every request carries an id: the caller's `X-Request-Id` when it is a
//! sane token (≤ 128 characters of `[A-Za-z0-9._:-]`), else a fresh UUID. It
//! is echoed in the response and recorded on the request's span, so every
//! log line of the request carries it. Spans record method, route and path,
//! never headers or query strings (they may hold credentials).

use std::time::Instant;

use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, MatchedPath, Request, State};
use axum::http::{HeaderName, HeaderValue};
use axum::middleware::Next;
use axum::response::Response;
use ipnet::IpNet;
use tracing::Instrument;

use super::AppState;

pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

fn sane(id: &HeaderValue) -> bool {
    let bytes = id.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= 128
        && bytes
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || b"._:-".contains(b))
}

/// The address of the client a request came from: the peer, or, when the
/// peer is a trusted proxy, the nearest untrusted address in
/// `X-Forwarded-For` (read right to left, since each proxy appends).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientAddr(pub IpAddr);

fn client_addr(request: &Request, proxies: &[IpNet]) -> Option<IpAddr> {
    let peer = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()?
        .0
        .ip();
    if !proxies.iter().any(|p| p.contains(&peer)) {
        return Some(peer);
    }
    let forwarded = request
        .headers()
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|a| a.trim().parse::<IpAddr>())
        .collect::<Vec<_>>();
    let mut nearest = peer;
    for hop in forwarded.into_iter().rev() {
        let Ok(hop) = hop else { break };
        nearest = hop;
        if !proxies.iter().any(|p| p.contains(&hop)) {
            break;
        }
    }
    Some(nearest)
}

/// Assigns the request id and client address, runs the request inside its
/// span, logs its outcome and records the HTTP metrics.
pub async fn observe(State(state): State<AppState>, mut request: Request, next: Next) -> Response {
    if let Some(addr) = client_addr(&request, &state.proxies) {
        request.extensions_mut().insert(ClientAddr(addr));
    }
    let client = request.extensions().get::<ClientAddr>().map(|c| c.0);
    let id = match request.headers().get(&REQUEST_ID) {
        Some(id) if sane(id) => id.clone(),
        _ => HeaderValue::from_str(&uuid::Uuid::new_v4().to_string())
            .unwrap_or(HeaderValue::from_static("-")),
    };
    request.headers_mut().insert(REQUEST_ID, id.clone());
    // The route template, not the path, keeps label cardinality bounded.
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched", |p| p.as_str())
        .to_string();
    let method = request.method().clone();
    let span = tracing::info_span!(
        "request",
        request_id = %id.to_str().unwrap_or("-"),
        method = %method,
        route = %route,
        client = ?client,
    );
    let started = Instant::now();
    let mut response = next.run(request).instrument(span.clone()).await;
    let elapsed = started.elapsed();
    let status = response.status();
    span.in_scope(|| {
        tracing::info!(
            status = status.as_u16(),
            latency_ms = elapsed.as_secs_f64() * 1000.0,
            "request finished"
        );
    });
    let labels = [
        ("route", route),
        ("method", method.to_string()),
        ("status", status.as_u16().to_string()),
    ];
    metrics::counter!(crate::metrics::HTTP_REQUESTS, &labels).increment(1);
    metrics::histogram!(crate::metrics::HTTP_DURATION, &labels).record(elapsed.as_secs_f64());
    response.headers_mut().insert(REQUEST_ID, id);
    response
}
