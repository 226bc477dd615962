//! The admin API for users and clients: what the CLI does, over HTTP, for a
//! token with the `sigil:admin` scope, through the same service functions.
//! Every action is audited with the caller as actor.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde_json::{Value, json};

use super::bearer::Admin;
use super::error::ApiError;
use super::extract::{ApiJson, ApiPath};
use crate::clients::{self, ClientError, ClientKeys, GrantType, Lifetimes, NewClient};
use crate::keys::Alg;
use crate::scope::Scopes;
use crate::service::{self, Ops};
use crate::state::Sigil;
use crate::store::StoreError;
use crate::users::{self, User};

fn not_found(what: &str, name: &str) -> ApiError {
    ApiError::client(
        StatusCode::NOT_FOUND,
        "not_found",
        format!("no {what} {name:?}"),
    )
}

fn invalid(description: impl Into<String>) -> ApiError {
    ApiError::client(StatusCode::BAD_REQUEST, "invalid_request", description)
}

impl From<ClientError> for ApiError {
    fn from(e: ClientError) -> Self {
        match e {
            ClientError::Invalid(why) => invalid(why),
            ClientError::Exists(id) => ApiError::client(
                StatusCode::CONFLICT,
                "already_exists",
                format!("a client with id {id:?} already exists"),
            ),
            ClientError::Store(e) => e.into(),
        }
    }
}

#[derive(Deserialize, utoipa::IntoParams)]
pub struct Page {
    /// Only users whose username sorts after this one (the `next` of the
    /// previous page).
    after: Option<String>,
    /// At most this many (default 100, at most 1000).
    limit: Option<i64>,
}

/// `GET /admin/users`.
#[utoipa::path(
    get, path = "/admin/users", tag = "admin", operation_id = "admin_users",
    params(Page),
    responses(
        (status = 200, description = "`{users: [...], next}`; pass `next` as `after` for the next page", body = Object),
        (status = 401, description = "No valid bearer token", body = super::error::ErrorBody),
        (status = 403, description = "insufficient_scope (needs sigil:admin)", body = super::error::ErrorBody),
    ),
    security(("bearer" = ["sigil:admin"]))
)]
pub async fn admin_users_get(
    State(sigil): State<Arc<Sigil>>,
    _admin: Admin,
    page: Result<Query<Page>, QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(page) = page.map_err(|e| invalid(format!("bad query: {}", e.body_text())))?;
    let limit = page.limit.unwrap_or(100).clamp(1, 1000);
    let records = sigil
        .store
        .list_users(page.after.as_deref().unwrap_or(""), limit)
        .await?;
    let next = (records.len() as i64 == limit)
        .then(|| records.last().map(|r| r.username.clone()))
        .flatten();
    let users: Vec<Value> = records
        .into_iter()
        .map(|r| {
            let disabled = r.disabled;
            let mut user = serde_json::to_value(User::from(r)).unwrap_or_default();
            user["disabled"] = json!(disabled);
            user
        })
        .collect();
    Ok(axum::Json(json!({ "users": users, "next": next })).into_response())
}

/// `GET /admin/users/{username}/consents`: the clients the user allowed.
#[utoipa::path(
    get, path = "/admin/users/{username}/consents", tag = "admin", operation_id = "admin_user_consents",
    params(("username" = String, Path, description = "The user")),
    responses(
        (status = 200, description = "`{consents: [{client_id, scope, granted_at}]}`", body = Object),
        (status = 403, description = "insufficient_scope", body = super::error::ErrorBody),
        (status = 404, description = "not_found: no such user", body = super::error::ErrorBody),
    ),
    security(("bearer" = ["sigil:admin"]))
)]
pub async fn admin_user_consents_get(
    State(sigil): State<Arc<Sigil>>,
    _admin: Admin,
    ApiPath(username): ApiPath<String>,
) -> Result<Response, ApiError> {
    let user = match users::find(sigil.store.as_ref(), &username).await {
        Err(StoreError::NotFound) => return Err(not_found("user", &username)),
        other => other?,
    };
    let consents: Vec<Value> = sigil
        .store
        .list_consents(&user.id)
        .await?
        .into_iter()
        .map(|c| json!({ "client_id": c.client_id, "scope": c.scope, "granted_at": c.granted_at }))
        .collect();
    Ok(axum::Json(json!({ "consents": consents })).into_response())
}

/// `POST /admin/users/{username}/consents/{client_id}/revoke`.
#[utoipa::path(
    post, path = "/admin/users/{username}/consents/{client_id}/revoke", tag = "admin",
    operation_id = "admin_user_consent_revoke",
    params(
        ("username" = String, Path, description = "The user"),
        ("client_id" = String, Path, description = "The client"),
    ),
    responses(
        (status = 200, description = "Revoked: the next sign-in to the client asks again", body = Object),
        (status = 403, description = "insufficient_scope", body = super::error::ErrorBody),
        (status = 404, description = "not_found: no such user or consent", body = super::error::ErrorBody),
    ),
    security(("bearer" = ["sigil:admin"]))
)]
pub async fn admin_user_consent_revoke_post(
    State(sigil): State<Arc<Sigil>>,
    admin: Admin,
    ApiPath((username, client_id)): ApiPath<(String, String)>,
) -> Result<Response, ApiError> {
    let actor = admin.actor();
    let ops = Ops::on(&sigil, &actor);
    let user = match users::find(ops.store, &username).await {
        Err(StoreError::NotFound) => return Err(not_found("user", &username)),
        other => other?,
    };
    if !service::browser::revoke_consent(&ops, &user, &client_id).await? {
        return Err(not_found("consent", &client_id));
    }
    Ok(
        axum::Json(json!({ "username": user.username, "client_id": client_id, "revoked": true }))
            .into_response(),
    )
}

/// `POST /admin/users/{username}/{action}`: `disable` (also revokes every
/// session and token), `enable`, `revoke-sessions`, or `reset-factors`
/// (removes the user's authenticator app, recovery codes and passkeys).
#[utoipa::path(
    post, path = "/admin/users/{username}/{action}", tag = "admin", operation_id = "admin_user_action",
    params(
        ("username" = String, Path, description = "The user"),
        ("action" = String, Path, description = "`disable`, `enable`, `revoke-sessions` or `reset-factors`"),
    ),
    responses(
        (status = 200, description = "Done", body = Object),
        (status = 400, description = "invalid_request: a path parameter that cannot be read (e.g. not UTF-8)", body = super::error::ErrorBody),
        (status = 403, description = "insufficient_scope", body = super::error::ErrorBody),
        (status = 404, description = "not_found: no such user or action", body = super::error::ErrorBody),
    ),
    security(("bearer" = ["sigil:admin"]))
)]
pub async fn admin_user_action_post(
    State(sigil): State<Arc<Sigil>>,
    admin: Admin,
    ApiPath((username, action)): ApiPath<(String, String)>,
) -> Result<Response, ApiError> {
    let actor = admin.actor();
    let ops = Ops::on(&sigil, &actor);
    let user = match users::find(ops.store, &username).await {
        Err(StoreError::NotFound) => return Err(not_found("user", &username)),
        other => other?,
    };
    let body = match action.as_str() {
        "disable" | "enable" => {
            let disabled = action == "disable";
            service::users::set_disabled(&ops, &user.username, disabled).await?;
            json!({ "username": user.username, "disabled": disabled })
        }
        "revoke-sessions" => {
            let revoked = service::users::revoke_sessions(&ops, &user).await?;
            json!({ "username": user.username, "revoked_sessions": revoked })
        }
        "reset-factors" => {
            let removed = service::factors::reset(&ops, &user).await?;
            json!({
                "username": user.username,
                "removed": {
                    "totp": removed.totp,
                    "recovery_codes": removed.recovery_codes,
                    "passkeys": removed.passkeys,
                },
            })
        }
        other => return Err(not_found("user action", other)),
    };
    Ok(axum::Json(body).into_response())
}

/// `GET /admin/clients`.
#[utoipa::path(
    get, path = "/admin/clients", tag = "admin", operation_id = "admin_clients",
    responses(
        (status = 200, description = "`{clients: [...]}`, never with secrets; each with `access_token_ttl_seconds` and `refresh_token_ttl_seconds` (null: the server's)", body = Object),
        (status = 403, description = "insufficient_scope", body = super::error::ErrorBody),
    ),
    security(("bearer" = ["sigil:admin"]))
)]
pub async fn admin_clients_get(
    State(sigil): State<Arc<Sigil>>,
    _admin: Admin,
) -> Result<Response, ApiError> {
    let list = clients::list_clients(sigil.store.as_ref()).await?;
    let rows: Vec<Value> = list.iter().map(clients::Client::summary).collect();
    Ok(axum::Json(json!({ "clients": rows })).into_response())
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewClientBody {
    client_id: String,
    /// A public client has no secret.
    #[serde(default)]
    public: bool,
    /// Default `["authorization_code", "refresh_token"]` (which needs
    /// `redirect_uris`); the password grant only when listed here.
    grant_types: Option<Vec<String>>,
    /// Redirect URIs for the authorization code flow: https, or http on
    /// 127.0.0.1/[::1] (any port matches, RFC 8252 §7.3).
    #[serde(default)]
    redirect_uris: Vec<String>,
    /// Where RP-initiated logout may send the browser back to.
    #[serde(default)]
    post_logout_redirect_uris: Vec<String>,
    /// The operator's own app: its users are not asked for consent.
    #[serde(default)]
    first_party: bool,
    /// Its users must sign in with a second factor.
    #[serde(default)]
    require_mfa: bool,
    /// `private_key_jwt` (RFC 7523): the client's public keys (a JWKS) …
    #[schema(value_type = Option<Object>)]
    jwks: Option<serde_json::Value>,
    /// … or where to fetch them. Either makes a confidential client with
    /// no secret.
    jwks_uri: Option<String>,
    /// Every token request must carry a DPoP proof (RFC 9449).
    #[serde(default)]
    require_dpop: bool,
    /// Audiences a token exchange (RFC 8693) of the client may target.
    #[serde(default)]
    exchange_audiences: Vec<String>,
    /// Space-separated scopes the client may request.
    #[serde(default)]
    scopes: String,
    /// `RS256` or `EdDSA`; the server default when absent.
    alg: Option<String>,
    /// The `aud` of its tokens; the server default when absent.
    audience: Option<String>,
    /// Its access tokens' lifetime in seconds, at least 10 and
    /// at most the server's `access_token_ttl` (its value when absent).
    #[schema(minimum = 10)]
    access_token_ttl_seconds: Option<u64>,
    /// How long its logins last before their refresh tokens stop working,
    /// in seconds, at least 60 and
    /// at most the server's `refresh_absolute_ttl` (its value when absent).
    #[schema(minimum = 60)]
    refresh_token_ttl_seconds: Option<u64>,
}

/// `POST /admin/clients`: the secret of a confidential client is in this
/// response only.
#[utoipa::path(
    post, path = "/admin/clients", tag = "admin", operation_id = "admin_client_create",
    request_body = NewClientBody,
    responses(
        (status = 201, description = "The client, with `client_secret` when confidential (shown once)", body = Object),
        (status = 400, description = "invalid_request (e.g. a lifetime longer than the server's)", body = super::error::ErrorBody),
        (status = 403, description = "insufficient_scope", body = super::error::ErrorBody),
        (status = 409, description = "already_exists", body = super::error::ErrorBody),
    ),
    security(("bearer" = ["sigil:admin"]))
)]
pub async fn admin_clients_post(
    State(sigil): State<Arc<Sigil>>,
    admin: Admin,
    ApiJson(body): ApiJson<NewClientBody>,
) -> Result<Response, ApiError> {
    let grant_types = match body.grant_types {
        None => GrantType::DEFAULT.to_vec(),
        Some(names) => names
            .iter()
            .map(|g| g.parse::<GrantType>())
            .collect::<Result<Vec<_>, _>>()
            .map_err(invalid)?,
    };
    let scopes = Scopes::parse(&body.scopes).map_err(|e| invalid(e.to_string()))?;
    let alg = body
        .alg
        .as_deref()
        .map(str::parse::<Alg>)
        .transpose()
        .map_err(invalid)?;
    let keys = match (body.jwks, body.jwks_uri) {
        (Some(_), Some(_)) => return Err(invalid("give jwks or jwks_uri, not both")),
        (Some(jwks), None) => Some(ClientKeys::Inline(
            clients::parse_jwks(&jwks.to_string()).map_err(invalid)?,
        )),
        (None, Some(uri)) => Some(ClientKeys::Uri(uri)),
        (None, None) => None,
    };
    let new = NewClient {
        id: body.client_id,
        public: body.public,
        grant_types,
        scopes,
        alg,
        audience: body.audience,
        secret: None,
        lifetimes: Lifetimes {
            access_token: body.access_token_ttl_seconds.map(Duration::from_secs),
            refresh_token: body.refresh_token_ttl_seconds.map(Duration::from_secs),
        },
        redirect_uris: body.redirect_uris,
        post_logout_redirect_uris: body.post_logout_redirect_uris,
        first_party: body.first_party,
        require_mfa: body.require_mfa,
        keys,
        require_dpop: body.require_dpop,
        exchange_audiences: body.exchange_audiences,
    };
    let actor = admin.actor();
    let (client, secret) = service::clients::create(&Ops::on(&sigil, &actor), new).await?;
    let mut shown = client.summary();
    if let Some(secret) = secret {
        shown["client_secret"] = json!(secret.expose_secret());
    }
    Ok(no_store(
        (StatusCode::CREATED, axum::Json(shown)).into_response(),
    ))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ClientActionBody {
    /// For `rotate-secret`: seconds the previous secret keeps working
    /// (default 86400).
    overlap_seconds: Option<u64>,
    /// For `rotate-secret`: rotate even while the previous rotation's
    /// overlap lasts (the secret it replaced stops working at once).
    #[serde(default)]
    force: bool,
}

/// `POST /admin/clients/{client_id}/{action}`: `disable`, `enable`,
/// `require-mfa`, `optional-mfa`, or `rotate-secret` (the new secret is in
/// this response only).
#[utoipa::path(
    post, path = "/admin/clients/{client_id}/{action}", tag = "admin", operation_id = "admin_client_action",
    params(
        ("client_id" = String, Path, description = "The client"),
        ("action" = String, Path, description = "`disable`, `enable`, `require-mfa`, `optional-mfa` or `rotate-secret`"),
    ),
    request_body(content = Option<ClientActionBody>, description = "Only for rotate-secret"),
    responses(
        (status = 200, description = "Done", body = Object),
        (status = 400, description = "invalid_request (e.g. rotating a public client's secret, a path parameter that cannot be read)", body = super::error::ErrorBody),
        (status = 403, description = "insufficient_scope", body = super::error::ErrorBody),
        (status = 404, description = "not_found", body = super::error::ErrorBody),
    ),
    security(("bearer" = ["sigil:admin"]))
)]
pub async fn admin_client_action_post(
    State(sigil): State<Arc<Sigil>>,
    admin: Admin,
    ApiPath((client_id, action)): ApiPath<(String, String)>,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    let options: ClientActionBody = if body.iter().all(u8::is_ascii_whitespace) {
        ClientActionBody {
            overlap_seconds: None,
            force: false,
        }
    } else {
        serde_json::from_slice(&body).map_err(|e| invalid(format!("the body is not valid: {e}")))?
    };
    let actor = admin.actor();
    let ops = Ops::on(&sigil, &actor);
    if clients::find_client(ops.store, &client_id).await?.is_none() {
        return Err(not_found("client", &client_id));
    }
    let response = match action.as_str() {
        "disable" | "enable" => {
            let disabled = action == "disable";
            service::clients::set_disabled(&ops, &client_id, disabled).await?;
            json!({ "client_id": client_id, "disabled": disabled })
        }
        "require-mfa" | "optional-mfa" => {
            let required = action == "require-mfa";
            service::clients::set_require_mfa(&ops, &client_id, required).await?;
            json!({ "client_id": client_id, "require_mfa": required })
        }
        "rotate-secret" => {
            let overlap = options
                .overlap_seconds
                .unwrap_or(86_400)
                .min(Duration::from_secs(30 * 86_400).as_secs());
            let until = ops.now() + overlap as i64;
            let secret: SecretString =
                service::clients::rotate_secret(&ops, &client_id, None, until, options.force)
                    .await?;
            json!({
                "client_id": client_id,
                "previous_secret_valid_until": until,
                "client_secret": secret.expose_secret(),
            })
        }
        other => return Err(not_found("client action", other)),
    };
    Ok(no_store(axum::Json(response).into_response()))
}

/// Responses that may carry a secret are never cached.
fn no_store(mut response: Response) -> Response {
    response.headers_mut().insert(
        axum::http::header::CACHE_CONTROL,
        axum::http::HeaderValue::from_static("no-store"),
    );
    response
}
