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
use crate::keys::ops::{self, KeyOpError, KeyOpOutcome};
use crate::keys::{Alg, KeyState};
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
        (status = 401, description = "No valid bearer token", body = super::openapi::ErrorBody),
        (status = 403, description = "insufficient_scope (needs sigil:admin)", body = super::openapi::ErrorBody),
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
        (status = 403, description = "insufficient_scope", body = super::openapi::ErrorBody),
        (status = 409, description = "refused (e.g. a rotation is already scheduled)", body = super::openapi::ErrorBody),
    ),
    security(("bearer" = ["sigil:admin"]))
)]
pub async fn admin_keys_rotate_post(
    State(sigil): State<Arc<Sigil>>,
    admin: Admin,
    ApiJson(body): ApiJson<RotateBody>,
) -> Result<Response, ApiError> {
    let now = sigil.clock.now();
    let (store, kek, policy, actor) = (
        sigil.store.as_ref(),
        sigil.keys.kek(),
        sigil.keys.policy(),
        admin.actor(),
    );
    let mut outcomes: Vec<KeyOpOutcome> = Vec::new();
    if let Some(kid) = body.emergency_kid {
        outcomes.push(
            ops::emergency_rotate(store, kek, policy, &kid, &actor, now, body.dry_run).await?,
        );
        sigil.revocations_changed(now).await;
    } else {
        let algs = match body.alg {
            Some(alg) => vec![
                alg.parse::<Alg>()
                    .map_err(|e| ApiError::client(StatusCode::BAD_REQUEST, "invalid_request", e))?,
            ],
            None => Alg::ALL.to_vec(),
        };
        for alg in algs {
            outcomes.push(ops::rotate(store, kek, policy, alg, &actor, now, body.dry_run).await?);
        }
    }
    sigil.reload_keys().await.map_err(ApiError::internal)?;
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
        (status = 400, description = "invalid_request: a kid that cannot be read (e.g. not UTF-8) or a bad body", body = super::openapi::ErrorBody),
        (status = 403, description = "insufficient_scope", body = super::openapi::ErrorBody),
        (status = 409, description = "refused", body = super::openapi::ErrorBody),
    ),
    security(("bearer" = ["sigil:admin"]))
)]
pub async fn admin_key_retire_post(
    State(sigil): State<Arc<Sigil>>,
    admin: Admin,
    ApiPath(kid): ApiPath<String>,
    ApiJson(body): ApiJson<RetireBody>,
) -> Result<Response, ApiError> {
    let now = sigil.clock.now();
    let outcome = ops::retire(
        sigil.store.as_ref(),
        sigil.keys.policy(),
        &kid,
        &admin.actor(),
        now,
        body.dry_run,
    )
    .await?;
    sigil.reload_keys().await.map_err(ApiError::internal)?;
    Ok(axum::Json(json!({ "outcomes": [outcome] })).into_response())
}
