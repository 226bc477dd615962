//! Service B: the end of the chain. It accepts only tokens addressed to
//! it (audience `service-b`) with scope `reports:read`, and only tokens a
//! service obtained by exchange, acting for the user: a token without
//! `act` is refused with 403, even when otherwise valid (a caller that
//! skipped the exchange, or a client's own token). The user's own token is
//! addressed to service A, so it gets a 401 here.
//!
//! `GET /report` → [`Report`]: who the request is for, and through whom.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use sigil_verify::Verifier;
use sigil_verify::axum::RequireScope;

use crate::{ReportsRead, error};

/// Service B's answer: what the token it was sent says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Report {
    /// The user the request is for: the token's `sub`.
    pub sub: String,
    /// The services that passed it on, the one that called B first
    /// (`act`, then the `act` nested in it, …).
    pub actors: Vec<String>,
    /// The client the token was issued to: the service that exchanged it.
    pub client_id: String,
    pub aud: Vec<String>,
    pub scope: Option<String>,
    pub exp: i64,
    /// How the user signed in, kept through the exchange.
    pub amr: Vec<String>,
}

/// Service B's routes. `verifier` accepts B's audience only.
pub fn router(verifier: Verifier) -> Router {
    Router::new()
        .route("/report", get(report_get))
        .with_state(verifier)
}

/// `GET /report`. The extractor has checked the token (401) and its
/// scope (403); B checks that a service acts for the user.
async fn report_get(caller: RequireScope<ReportsRead>) -> Response {
    let actors: Vec<String> = caller.actors().map(str::to_string).collect();
    if actors.is_empty() {
        return error(
            StatusCode::FORBIDDEN,
            "access_denied",
            "service B accepts only a token exchanged by a service acting for the user (with act)",
        );
    }
    // A service with callers it trusts would also check actors[0] here.
    tracing::info!(user = %caller.sub, actors = ?actors, "report");
    let claims = caller.into_claims();
    Json(Report {
        sub: claims.sub,
        actors,
        client_id: claims.client_id,
        aud: claims.aud,
        scope: claims.scope,
        exp: claims.exp,
        amr: claims.amr,
    })
    .into_response()
}
