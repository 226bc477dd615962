//! Browser sign-in's state changes: signing in and out, granting and
//! revoking consent. The hosted pages, the admin API and the CLI call
//! these, so each writes its audit event the same way.

use serde_json::json;

use super::Ops;
use crate::authn::Authn;
use crate::browser::session;
use crate::clients::Client;
use crate::scope::Scopes;
use crate::store::{ConsentRecord, StoreError, UserRecord};

/// Opens a browser session for `user`, who just proved who they are (as
/// `authn` says, beginning at `at`). Returns the cookie secret and the
/// session's public `sid`.
pub async fn sign_in(
    ops: &Ops<'_>,
    user: &UserRecord,
    authn: &Authn,
    at: i64,
    user_agent: &str,
    client_id: Option<&str>,
) -> Result<(String, String), StoreError> {
    let (secret, record) =
        session::mint(user, user_agent, authn, at, &ops.config.sign_in, ops.now());
    ops.store.insert_browser_session(&record).await?;
    ops.record(
        "browser_session.started",
        &user.id,
        json!({
            "username": user.username,
            "sid": record.sid,
            "client_id": client_id,
            "amr": authn.amr,
            "acr": authn.acr.as_str(),
        }),
    );
    Ok((secret, record.sid))
}

/// Ends the browser session `sid` (only if it is `user_id`'s, when given).
/// Returns whether one was ended.
pub async fn sign_out(ops: &Ops<'_>, sid: &str, user_id: Option<&str>) -> Result<bool, StoreError> {
    let ended = ops
        .store
        .end_browser_session(sid, user_id, ops.now())
        .await?;
    if ended {
        ops.record(
            "browser_session.ended",
            user_id.unwrap_or("unknown"),
            json!({ "sid": sid }),
        );
    }
    Ok(ended)
}

/// Remembers that `user` lets `client` have `scope` (added to what was
/// granted before).
pub async fn grant_consent(
    ops: &Ops<'_>,
    user: &UserRecord,
    client: &Client,
    scope: &Scopes,
) -> Result<(), StoreError> {
    let before = ops.store.consent(&user.id, &client.id).await?;
    let mut granted = before
        .and_then(|c| Scopes::parse(&c.scope).ok())
        .unwrap_or_default();
    granted.extend(scope);
    ops.store
        .put_consent(&ConsentRecord {
            user_id: user.id.clone(),
            client_id: client.id.clone(),
            scope: granted.to_string(),
            granted_at: ops.now(),
        })
        .await?;
    ops.record(
        "consent.granted",
        &user.id,
        json!({ "client_id": client.id, "scope": scope.to_string() }),
    );
    Ok(())
}

/// Forgets a user's consent to a client: the next sign-in to it asks
/// again. Returns whether there was one.
pub async fn revoke_consent(
    ops: &Ops<'_>,
    user: &UserRecord,
    client_id: &str,
) -> Result<bool, StoreError> {
    let revoked = ops.store.delete_consent(&user.id, client_id).await?;
    if revoked {
        ops.record(
            "consent.revoked",
            &user.id,
            json!({ "username": user.username, "client_id": client_id }),
        );
    }
    Ok(revoked)
}
