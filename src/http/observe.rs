//! Request ids, one tracing span per request, and per-route metrics.
//!
//! Every request carries an id: the caller's `X-Request-Id` when it is a
//! sane token (≤ 128 characters of `[A-Za-z0-9._:-]`), else a fresh
//! UUID-shaped id. It
//! is echoed in the response and recorded on the request's span, so every
//! log line of the request carries it. Spans record method, route and path,
//! never headers or query strings (they may hold credentials).

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{OnceLock, RwLock};
use std::time::Instant;

use axum::extract::{ConnectInfo, MatchedPath, Request, State};
use axum::http::{HeaderName, HeaderValue, Method};
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

/// A fresh request id: UUID-shaped (the version-4 layout), made of 128
/// random bits chosen once per process plus a counter, so it is unique
/// without asking the operating system for randomness on every request.
fn fresh_request_id() -> HeaderValue {
    static SEED: OnceLock<(u64, u64)> = OnceLock::new();
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let (prefix, offset) = *SEED.get_or_init(|| uuid::Uuid::new_v4().as_u64_pair());
    let n = COUNTER.fetch_add(1, Ordering::Relaxed).wrapping_add(offset);
    let bytes = ((u128::from(prefix) << 64) | u128::from(n)).to_be_bytes();
    let id = uuid::Builder::from_random_bytes(bytes).into_uuid();
    let mut text = uuid::Uuid::encode_buffer();
    HeaderValue::from_str(id.hyphenated().encode_lower(&mut text))
        .unwrap_or(HeaderValue::from_static("-"))
}

/// At most this many (route, method, status) combinations keep a resolved
/// metric handle; any further ones are recorded through the registry each
/// time.
const MAX_RESOLVED: usize = 1024;

/// The method as a metric label: the methods of RFC 9110 and PATCH by name,
/// any other (a client may send any token) as `other`, so that clients
/// cannot create metric series without end.
fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::CONNECT => "CONNECT",
        Method::OPTIONS => "OPTIONS",
        Method::TRACE => "TRACE",
        Method::PATCH => "PATCH",
        _ => "other",
    }
}

/// The HTTP metrics' handles, resolved once per (route, method, status)
/// instead of building and looking up their labels on every request.
#[derive(Default)]
pub struct HttpMetrics {
    resolved: RwLock<HashMap<u64, Vec<Resolved>>>,
    hasher: RandomState,
}

struct Resolved {
    route: Box<str>,
    method: &'static str,
    status: u16,
    requests: metrics::Counter,
    duration: metrics::Histogram,
}

impl HttpMetrics {
    fn record(&self, route: &str, method: &Method, status: u16, seconds: f64) {
        let method = method_label(method);
        let hash = self.hasher.hash_one((route, method, status));
        let same = |r: &&Resolved| &*r.route == route && r.method == method && r.status == status;
        if let Ok(resolved) = self.resolved.read()
            && let Some(r) = resolved.get(&hash).and_then(|v| v.iter().find(same))
        {
            r.requests.increment(1);
            r.duration.record(seconds);
            return;
        }
        let labels = [
            ("route", route.to_string()),
            ("method", method.to_string()),
            ("status", status.to_string()),
        ];
        let requests = metrics::counter!(crate::metrics::HTTP_REQUESTS, &labels);
        let duration = metrics::histogram!(crate::metrics::HTTP_DURATION, &labels);
        requests.increment(1);
        duration.record(seconds);
        if let Ok(mut resolved) = self.resolved.write() {
            let held: usize = resolved.values().map(Vec::len).sum();
            let slot = resolved.entry(hash).or_default();
            if held < MAX_RESOLVED && !slot.iter().any(|r| same(&r)) {
                slot.push(Resolved {
                    route: route.into(),
                    method,
                    status,
                    requests,
                    duration,
                });
            }
        }
    }
}

/// Assigns the request id and client address, runs the request inside its
/// span, logs its outcome and records the HTTP metrics. Nothing is
/// formatted for the span or the log line unless the log level lets them
/// through.
pub async fn observe(State(state): State<AppState>, mut request: Request, next: Next) -> Response {
    let client = client_addr(&request, &state.proxies);
    if let Some(addr) = client {
        request.extensions_mut().insert(ClientAddr(addr));
    }
    let id = match request.headers().get(&REQUEST_ID) {
        Some(id) if sane(id) => id.clone(),
        _ => fresh_request_id(),
    };
    request.headers_mut().insert(REQUEST_ID, id.clone());
    // The route template, not the path, keeps label cardinality bounded.
    let matched = request.extensions().get::<MatchedPath>().cloned();
    let route = matched.as_ref().map_or("unmatched", MatchedPath::as_str);
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
    let status = response.status().as_u16();
    span.in_scope(|| {
        tracing::info!(
            status,
            latency_ms = elapsed.as_secs_f64() * 1000.0,
            "request finished"
        );
    });
    state
        .http_metrics
        .record(route, &method, status, elapsed.as_secs_f64());
    response.headers_mut().insert(REQUEST_ID, id);
    response
}
