//! Liveness, readiness and metrics, for load balancers, Kubernetes probes
//! and Prometheus.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::keys::KeyState;
use crate::metrics as names;
use crate::state::Sigil;

/// `GET /healthz`: the process is alive and serving.
#[utoipa::path(get, path = "/healthz", tag = "operations", operation_id = "healthz",
    responses((status = 200, description = "Alive", body = Object)))]
pub async fn healthz_get() -> Response {
    axum::Json(json!({ "status": "ok" })).into_response()
}

/// `GET /readyz`: ready for traffic when the database answers, its schema
/// is the one this binary expects, and every algorithm has a signing key.
#[utoipa::path(get, path = "/readyz", tag = "operations", operation_id = "readyz",
    responses((status = 200, description = "Ready", body = Object), (status = 503, description = "Not ready", body = Object)))]
pub async fn readyz_get(State(sigil): State<Arc<Sigil>>) -> Response {
    let database =
        tokio::time::timeout(std::time::Duration::from_secs(2), sigil.store.ping()).await;
    let database_ok = matches!(database, Ok(Ok(())));
    let migrations_ok = database_ok && matches!(sigil.store.schema_is_current().await, Ok(true));
    let keys_ok = sigil.keys.is_ready();
    let ready = database_ok && migrations_ok && keys_ok;
    let body = json!({
        "status": if ready { "ready" } else { "not_ready" },
        "checks": { "database": database_ok, "migrations": migrations_ok, "keys": keys_ok },
    });
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let mut response = (status, axum::Json(body)).into_response();
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// `GET /metrics`: Prometheus text exposition format.
#[utoipa::path(get, path = "/metrics", tag = "operations", operation_id = "metrics",
    responses((status = 200, description = "Prometheus text format", body = String, content_type = "text/plain")))]
pub async fn metrics_get(State(sigil): State<Arc<Sigil>>) -> Response {
    match render_metrics(&sigil) {
        Some(text) => {
            let mut response = text.into_response();
            response.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
            );
            response
        }
        None => super::ApiError::Unavailable("metrics recorder unavailable".into()).into_response(),
    }
}

/// Sets the state gauges from `sigil` and renders the exposition text.
fn render_metrics(sigil: &Sigil) -> Option<String> {
    let handle = names::handle()?;
    let now = sigil.clock.now();
    let keys = sigil.keys.current();
    let states = sigil.keys.states(now);
    for state in [KeyState::Pending, KeyState::Active, KeyState::Retired] {
        let count = states.iter().filter(|s| **s == state).count();
        metrics::gauge!(names::KEYS, "state" => state.as_str()).set(count as f64);
    }
    if let Some(next) = keys.next_transition() {
        metrics::gauge!(names::KEY_NEXT_TRANSITION).set((next - now).max(0) as f64);
    }
    metrics::gauge!(names::ARGON2_QUEUE).set(sigil.passwords.queue_depth() as f64);
    let pool = sigil.store.pool_stats();
    metrics::gauge!(names::DB_POOL, "state" => "idle").set(pool.idle as f64);
    metrics::gauge!(names::DB_POOL, "state" => "in_use")
        .set(pool.size.saturating_sub(pool.idle) as f64);
    metrics::gauge!(names::DB_POOL, "state" => "max").set(pool.max as f64);
    metrics::gauge!(names::DATABASE_UP).set(if pool.reachable { 1.0 } else { 0.0 });
    metrics::gauge!(names::DENYLIST).set(sigil.deny_list.len() as f64);
    Some(handle.render())
}
