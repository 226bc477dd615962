//! `POST /users` (registration) and `GET /users/me` (the caller's profile).

use std::sync::Arc;

use axum::Extension;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use secrecy::SecretString;
use serde::Deserialize;
use serde_json::{Map, Value};

use super::bearer::Authenticated;
use super::error::ApiError;
use super::extract::ApiJson;
use super::observe::ClientAddr;
use crate::passwords::PasswordError;
use crate::service::{self, Ops};
use crate::state::Sigil;
use crate::tokens::TokenError;
use crate::users::{RegisterError, Registration, User};

/// The registration body. Fields are optional here so that every missing
/// one is reported by name, together with the invalid ones.
#[derive(Deserialize, utoipa::ToSchema)]
pub struct RegisterBody {
    #[schema(example = "alice")]
    username: Option<String>,
    #[schema(example = "alice@example.com")]
    email: Option<String>,
    #[schema(example = "correct horse battery")]
    password: Option<String>,
}

#[utoipa::path(
    post, path = "/users", tag = "users", operation_id = "register",
    request_body = RegisterBody,
    responses(
        (status = 201, description = "Registered", body = User),
        (status = 400, description = "Missing or invalid fields, each named in `fields`", body = super::error::ErrorBody),
        (status = 403, description = "registration_closed", body = super::error::ErrorBody),
        (status = 409, description = "already_exists", body = super::error::ErrorBody),
        (status = 429, description = "too_many_requests: this address registered too often; see Retry-After", body = super::error::ErrorBody),
    )
)]
pub async fn users_post(
    State(sigil): State<Arc<Sigil>>,
    client_addr: Option<Extension<ClientAddr>>,
    ApiJson(body): ApiJson<RegisterBody>,
) -> Result<Response, ApiError> {
    if !sigil.config.registration {
        return Err(ApiError::client(
            StatusCode::FORBIDDEN,
            "registration_closed",
            "self-service registration is closed on this server",
        ));
    }
    // Every attempt counts, so that "already taken" answers cannot be
    // used to enumerate accounts faster than the limit allows.
    let from = client_addr.map(|Extension(ClientAddr(ip))| ip);
    let now = sigil.clock.now();
    if let Err(retry_after) = sigil
        .throttle
        .registration(sigil.store.as_ref(), from, now)
        .await?
    {
        metrics::counter!(crate::metrics::LOGIN_THROTTLED, "scope" => "registration").increment(1);
        let mut response = ApiError::client(
            StatusCode::TOO_MANY_REQUESTS,
            "too_many_requests",
            "too many registrations from this address; retry later",
        )
        .into_response();
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(retry_after.max(1)));
        return Ok(response);
    }
    let mut missing = Map::new();
    for (field, value) in [
        ("username", &body.username),
        ("email", &body.email),
        ("password", &body.password),
    ] {
        if value.is_none() {
            missing.insert(field.into(), Value::String("is required".into()));
        }
    }
    let (Some(username), Some(email), Some(password)) = (body.username, body.email, body.password)
    else {
        return Err(invalid_fields(missing));
    };
    let registration = Registration {
        username,
        email,
        password: SecretString::from(password),
    };
    match service::users::register(
        &Ops::on(&sigil, service::ANONYMOUS),
        &sigil.passwords,
        registration,
    )
    .await
    {
        Ok(user) => Ok(private(
            (StatusCode::CREATED, axum::Json(user)).into_response(),
        )),
        Err(RegisterError::Invalid(errors)) => {
            let fields = errors
                .into_iter()
                .map(|(f, m)| (f.to_string(), Value::String(m)))
                .collect();
            Err(invalid_fields(fields))
        }
        Err(RegisterError::Taken(field)) => Err(ApiError::client(
            StatusCode::CONFLICT,
            "already_exists",
            format!("that {field} is already registered"),
        )),
        Err(RegisterError::Store(e)) => Err(e.into()),
        Err(RegisterError::Hash(PasswordError::Busy)) => {
            Err(ApiError::Unavailable("password hashing queue full".into()))
        }
        Err(RegisterError::Hash(e)) => Err(ApiError::internal(e)),
    }
}

fn invalid_fields(fields: Map<String, Value>) -> ApiError {
    ApiError::Client {
        status: StatusCode::BAD_REQUEST,
        code: "invalid_request",
        description: "some fields are missing or invalid".into(),
        fields: Some(fields),
    }
}

// RFC 6750 §2.1: a bearer-protected resource.
#[utoipa::path(
    get, path = "/users/me", tag = "users", operation_id = "me",
    responses(
        (status = 200, description = "The caller's profile", body = User),
        (status = 401, description = "No valid bearer token (RFC 6750)", body = super::error::ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn users_me_get(
    State(sigil): State<Arc<Sigil>>,
    Authenticated(claims): Authenticated,
) -> Result<Response, ApiError> {
    // A client_credentials token names a client, not a user: never look it
    // up as one, even if a client were named like a user id.
    if claims.sub == claims.client_id {
        return Err(ApiError::Bearer(Some(TokenError::InactiveSubject)));
    }
    let now = sigil.clock.now();
    match sigil
        .users
        .enabled(sigil.store.as_ref(), &claims.sub, now)
        .await?
    {
        Some(user) => Ok(private(axum::Json(&*user).into_response())),
        // A user deleted or disabled since (the user cache only holds
        // enabled users; a disabled user's tokens are revoked anyway).
        None => Err(ApiError::Bearer(Some(TokenError::InactiveSubject))),
    }
}

/// "Log out everywhere": revokes every session of the caller and every
/// access token issued to them so far, this one included.
#[utoipa::path(
    post, path = "/users/me/revoke-sessions", tag = "users", operation_id = "revoke_sessions",
    responses(
        (status = 200, description = "Every session and access token of the caller revoked", body = Object),
        (status = 401, description = "No valid bearer token", body = super::error::ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn users_me_revoke_sessions_post(
    State(sigil): State<Arc<Sigil>>,
    Authenticated(claims): Authenticated,
) -> Result<Response, ApiError> {
    if claims.sub == claims.client_id {
        return Err(ApiError::Bearer(Some(TokenError::InactiveSubject)));
    }
    let Some(user) = sigil.store.user_by_id(&claims.sub).await? else {
        return Err(ApiError::Bearer(Some(TokenError::InactiveSubject)));
    };
    let actor = format!("user:{}", claims.sub);
    let revoked = service::users::revoke_sessions(&Ops::on(&sigil, &actor), &user).await?;
    Ok(private(
        axum::Json(serde_json::json!({ "revoked_sessions": revoked })).into_response(),
    ))
}

/// Personal data must not be stored by shared caches.
fn private(mut response: Response) -> Response {
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}
