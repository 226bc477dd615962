//! The admin API for users' sign-in factors: what the CLI's `sigil users
//! factors|passkeys|reset-factors` do, over HTTP, for a token with the
//! `sigil:admin` scope, through the same service functions.

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};

use super::bearer::Admin;
use super::error::ApiError;
use super::extract::ApiPath;
use crate::service::factors::FactorError;
use crate::service::{self, Ops};
use crate::state::Sigil;
use crate::store::{StoreError, UserRecord};
use crate::users;

impl From<FactorError> for ApiError {
    fn from(e: FactorError) -> Self {
        match e {
            FactorError::Invalid(why) => {
                ApiError::client(StatusCode::BAD_REQUEST, "invalid_request", why)
            }
            FactorError::Store(e) => e.into(),
        }
    }
}

async fn user(sigil: &Sigil, username: &str) -> Result<UserRecord, ApiError> {
    match users::find(sigil.store.as_ref(), username).await {
        Err(StoreError::NotFound) => Err(ApiError::client(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("no user {username:?}"),
        )),
        other => Ok(other?),
    }
}

/// What a user has enrolled, never a secret.
pub async fn factors_json(sigil: &Sigil, user: &UserRecord) -> Result<Value, ApiError> {
    let store = sigil.store.as_ref();
    let totp = store.totp(&user.id).await?;
    let passkeys: Vec<Value> = store
        .passkeys(&user.id)
        .await?
        .into_iter()
        .map(|p| {
            json!({
                "id": p.id,
                "name": p.name,
                "backup_eligible": p.backup_eligible,
                "created_at": p.created_at,
                "last_used_at": p.last_used_at,
            })
        })
        .collect();
    Ok(json!({
        "username": user.username,
        "password": !user.password_hash.is_empty(),
        "totp": totp.as_ref().is_some_and(|t| t.confirmed_at.is_some()),
        "totp_enrolled_at": totp.and_then(|t| t.confirmed_at),
        "recovery_codes_left": store.unused_recovery_codes(&user.id).await?,
        "passkeys": passkeys,
    }))
}

/// `GET /admin/users/{username}/factors`.
#[utoipa::path(
    get, path = "/admin/users/{username}/factors", tag = "admin", operation_id = "admin_user_factors",
    params(("username" = String, Path, description = "The user")),
    responses(
        (status = 200, description = "`{username, password, totp, totp_enrolled_at, recovery_codes_left, passkeys: [{id, name, backup_eligible, created_at, last_used_at}]}`", body = Object),
        (status = 403, description = "insufficient_scope", body = super::error::ErrorBody),
        (status = 404, description = "not_found: no such user", body = super::error::ErrorBody),
    ),
    security(("bearer" = ["sigil:admin"]))
)]
pub async fn admin_user_factors_get(
    State(sigil): State<Arc<Sigil>>,
    _admin: Admin,
    ApiPath(username): ApiPath<String>,
) -> Result<Response, ApiError> {
    let user = user(&sigil, &username).await?;
    Ok(axum::Json(factors_json(&sigil, &user).await?).into_response())
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PasskeyActionBody {
    /// For `rename`: 1 to 64 characters.
    name: Option<String>,
}

/// `POST /admin/users/{username}/passkeys/{id}/{action}`: `rename` or
/// `remove`.
#[utoipa::path(
    post, path = "/admin/users/{username}/passkeys/{id}/{action}", tag = "admin",
    operation_id = "admin_user_passkey_action",
    params(
        ("username" = String, Path, description = "The user"),
        ("id" = String, Path, description = "The passkey (its id in the factors listing)"),
        ("action" = String, Path, description = "`rename` or `remove`"),
    ),
    request_body(content = Option<PasskeyActionBody>, description = "Only for rename"),
    responses(
        (status = 200, description = "Done", body = Object),
        (status = 400, description = "invalid_request (e.g. an empty name)", body = super::error::ErrorBody),
        (status = 403, description = "insufficient_scope", body = super::error::ErrorBody),
        (status = 404, description = "not_found: no such user, passkey or action", body = super::error::ErrorBody),
    ),
    security(("bearer" = ["sigil:admin"]))
)]
pub async fn admin_user_passkey_action_post(
    State(sigil): State<Arc<Sigil>>,
    admin: Admin,
    ApiPath((username, id, action)): ApiPath<(String, String, String)>,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    let user = user(&sigil, &username).await?;
    let actor = admin.actor();
    let ops = Ops::on(&sigil, &actor);
    let options: PasskeyActionBody = if body.iter().all(u8::is_ascii_whitespace) {
        PasskeyActionBody { name: None }
    } else {
        serde_json::from_slice(&body).map_err(|e| {
            ApiError::client(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                format!("the body is not valid: {e}"),
            )
        })?
    };
    let done = match action.as_str() {
        "rename" => {
            let name = options.name.unwrap_or_default();
            service::factors::rename_passkey(&ops, &user, &id, &name).await?
        }
        "remove" => service::factors::remove_passkey(&ops, &user, &id).await?,
        other => {
            return Err(ApiError::client(
                StatusCode::NOT_FOUND,
                "not_found",
                format!("no passkey action {other:?}"),
            ));
        }
    };
    if !done {
        return Err(ApiError::client(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("no passkey {id:?} of user {username:?}"),
        ));
    }
    Ok(
        axum::Json(json!({ "username": user.username, "passkey": id, "done": action }))
            .into_response(),
    )
}
