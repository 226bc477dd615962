//! The admin API: key operations for operators and automation, authorised
//! by an access token carrying the `sigil:admin` scope, every action audited.

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;

use super::bearer::Admin;
use super::error::ApiError;
use super::extract::{ApiJson, ApiPath};
use crate::keys::ops::{KeyOpError, KeyOpOutcome};
use crate::keys::{Alg, KeyState};
use crate::service::{self, Ops};
use crate::state::Sigil;

impl From<KeyOpError> for ApiError {
    fn from(e: KeyOpError) -> Self {
        match e {
            KeyOpError::Refused(why) => ApiError::client(StatusCode::CONFLICT, "refused", why),
            KeyOpError::Failed(e) => ApiError::from(crate::store::StoreError::from(e)),
        }
    }
}

/// `GET /admin/keys`: every stored key with its state and schedule.
#[utoipa::path(
    get, path = "/admin/keys", tag = "admin", operation_id = "admin_keys",
    responses(
        (status = 200, description = "Every stored key with its state and schedule", body = Object),
        (status = 401, description = "No valid bearer token", body = super::error::ErrorBody),
        (status = 403, description = "insufficient_scope (needs sigil:admin)", body = super::error::ErrorBody),
    ),
    security(("bearer" = ["sigil:admin"]))
)]
pub async fn admin_keys_get(
    State(sigil): State<Arc<Sigil>>,
    _admin: Admin,
) -> Result<Response, ApiError> {
    let now = sigil.clock.now();
    let keys = sigil.store.list_keys().await?;
    let rows: Vec<_> = keys
        .iter()
        .map(|k| {
            json!({
                "kid": k.kid, "alg": k.alg,
                "state": KeyState::at(now, k.activates_at, k.retires_at, k.removes_at),
                "created_at": k.created_at, "activates_at": k.activates_at,
                "retires_at": k.retires_at, "removes_at": k.removes_at,
            })
        })
        .collect();
    Ok(axum::Json(json!({ "keys": rows })).into_response())
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RotateBody {
    /// One algorithm, or both when absent.
    alg: Option<String>,
    /// The kid of a compromised key, for an emergency rotation.
    emergency_kid: Option<String>,
    #[serde(default)]
    dry_run: bool,
}

/// `POST /admin/keys/rotate`: schedule a rotation, or an emergency one.
#[utoipa::path(
    post, path = "/admin/keys/rotate", tag = "admin", operation_id = "admin_rotate",
    request_body = RotateBody,
    responses(
        (status = 200, description = "What was done (or would be, on a dry run)", body = Object),
        (status = 403, description = "insufficient_scope", body = super::error::ErrorBody),
        (status = 409, description = "refused (e.g. a rotation is already scheduled)", body = super::error::ErrorBody),
    ),
    security(("bearer" = ["sigil:admin"]))
)]
pub async fn admin_keys_rotate_post(
    State(sigil): State<Arc<Sigil>>,
    admin: Admin,
    ApiJson(body): ApiJson<RotateBody>,
) -> Result<Response, ApiError> {
    let actor = admin.actor();
    let ops = Ops::on(&sigil, &actor);
    let (kek, policy) = (sigil.keys.kek(), sigil.keys.policy());
    let mut outcomes: Vec<KeyOpOutcome> = Vec::new();
    if let Some(kid) = body.emergency_kid {
        outcomes
            .push(service::keys::emergency_rotate(&ops, kek, policy, &kid, body.dry_run).await?);
    } else {
        let algs = match body.alg {
            Some(alg) => vec![
                alg.parse::<Alg>()
                    .map_err(|e| ApiError::client(StatusCode::BAD_REQUEST, "invalid_request", e))?,
            ],
            None => Alg::ALL.to_vec(),
        };
        for alg in algs {
            outcomes.push(service::keys::rotate(&ops, kek, policy, alg, body.dry_run).await?);
        }
    }
    Ok(axum::Json(json!({ "outcomes": outcomes })).into_response())
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RetireBody {
    #[serde(default)]
    dry_run: bool,
}

/// `POST /admin/keys/{kid}/retire`.
#[utoipa::path(
    post, path = "/admin/keys/{kid}/retire", tag = "admin", operation_id = "admin_retire",
    params(("kid" = String, Path, description = "The key id")),
    request_body = RetireBody,
    responses(
        (status = 200, description = "What was done (or would be, on a dry run)", body = Object),
        (status = 400, description = "invalid_request: a kid that cannot be read (e.g. not UTF-8) or a bad body", body = super::error::ErrorBody),
        (status = 403, description = "insufficient_scope", body = super::error::ErrorBody),
        (status = 409, description = "refused", body = super::error::ErrorBody),
    ),
    security(("bearer" = ["sigil:admin"]))
)]
pub async fn admin_key_retire_post(
    State(sigil): State<Arc<Sigil>>,
    admin: Admin,
    ApiPath(kid): ApiPath<String>,
    ApiJson(body): ApiJson<RetireBody>,
) -> Result<Response, ApiError> {
    let actor = admin.actor();
    let outcome = service::keys::retire(
        &Ops::on(&sigil, &actor),
        sigil.keys.policy(),
        &kid,
        body.dry_run,
    )
    .await?;
    Ok(axum::Json(json!({ "outcomes": [outcome] })).into_response())
}
