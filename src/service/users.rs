//! Actions on users: create (self-service or by an operator), disable,
//! enable, revoke sessions, change a password.

use secrecy::SecretString;
use serde_json::json;

use super::Ops;
use crate::passwords::Passwords;
use crate::revocation;
use crate::store::{StoreError, UserRecord};
use crate::users::{self, RegisterError, Registration, User};

/// Self-service registration (`POST /users`), audited as `user.registered`.
pub async fn register(
    ops: &Ops<'_>,
    passwords: &Passwords,
    input: Registration,
) -> Result<User, RegisterError> {
    create_as(ops, passwords, input, "user.registered").await
}

/// A user created by an operator, audited as `user.created`.
pub async fn create(
    ops: &Ops<'_>,
    passwords: &Passwords,
    input: Registration,
) -> Result<User, RegisterError> {
    create_as(ops, passwords, input, "user.created").await
}

async fn create_as(
    ops: &Ops<'_>,
    passwords: &Passwords,
    input: Registration,
    event: &'static str,
) -> Result<User, RegisterError> {
    let user = users::create(ops.store, passwords, &ops.config.password, input, ops.now()).await?;
    ops.record(event, &user.id, json!({ "username": user.username }));
    Ok(user)
}

/// Disables a user (revoking every session and access token of theirs in
/// the same transaction) or enables one again. Returns the user as it was
/// found; `NotFound` for an unknown username.
pub async fn set_disabled(
    ops: &Ops<'_>,
    username: &str,
    disabled: bool,
) -> Result<UserRecord, StoreError> {
    let user = users::find(ops.store, username).await?;
    let window = ops.config.revocation_window();
    let changed = if disabled {
        revocation::disable_user(ops.store, &user.id, window, ops.now())
            .await
            .map(drop)
    } else {
        ops.store
            .set_user_disabled(&user.id, false, ops.now())
            .await
    };
    // Whatever the outcome, this node must not serve a profile it held
    // before the attempt.
    ops.users_changed().await;
    changed?;
    let event = if disabled {
        "user.disabled"
    } else {
        "user.enabled"
    };
    ops.record(
        event,
        &user.id,
        json!({ "username": user.username, "disabled": disabled }),
    );
    Ok(user)
}

/// Revokes every session of a user and every access token issued to them up
/// to now; returns how many sessions were open.
pub async fn revoke_sessions(ops: &Ops<'_>, user: &UserRecord) -> Result<u64, StoreError> {
    let revoked = revocation::revoke_user_sessions(
        ops.store,
        &user.id,
        ops.config.revocation_window(),
        ops.now(),
    )
    .await?;
    ops.revocations_changed().await;
    ops.record(
        "user.sessions_revoked",
        &user.id,
        json!({ "username": user.username, "revoked_sessions": revoked }),
    );
    Ok(revoked)
}

/// Sets a new password, which revokes every session of the user.
pub async fn set_password(
    ops: &Ops<'_>,
    passwords: &Passwords,
    username: &str,
    password: SecretString,
) -> Result<UserRecord, RegisterError> {
    let user = users::set_password(
        ops.store,
        passwords,
        &ops.config.password,
        username,
        password,
        ops.config.revocation_window(),
        ops.now(),
    )
    .await?;
    ops.users_changed().await;
    ops.record(
        "user.password_changed",
        &user.id,
        json!({ "username": user.username }),
    );
    Ok(user)
}
