//! The user's decision on a device authorization request (RFC 8628 §3.3),
//! from the `/device` page: approved with how they authenticated, or
//! denied. Approval also records consent for the scopes, as the code flow
//! does.

use serde_json::json;

use super::Ops;
use crate::browser::session::LiveSession;
use crate::clients::Client;
use crate::oauth::device::{normalise_user_code, user_code_digest};
use crate::scope::Scopes;
use crate::store::{DeviceDecision, DeviceStatus, StoreError};

/// Records the decision. Returns whether the request was still pending
/// (not decided meanwhile, not expired).
pub async fn decide(
    ops: &Ops<'_>,
    session: &LiveSession,
    client: &Client,
    user_code: &str,
    scope: &Scopes,
    approve: bool,
) -> Result<bool, StoreError> {
    let Some(code) = normalise_user_code(user_code) else {
        return Ok(false);
    };
    let decision = DeviceDecision {
        status: if approve {
            DeviceStatus::Approved
        } else {
            DeviceStatus::Denied
        },
        user_id: session.user.id.clone(),
        auth_time: session.auth_time,
        amr: session.authn.amr_text(),
        acr: session.authn.acr.as_str().to_string(),
        sid: session.sid.clone(),
    };
    let decided = ops
        .store
        .decide_device_code(&user_code_digest(&code), &decision, ops.now())
        .await?;
    if !decided {
        return Ok(false);
    }
    if approve {
        super::browser::grant_consent(ops, &session.user, client, scope).await?;
    }
    ops.record(
        if approve {
            "device.approved"
        } else {
            "device.denied"
        },
        &session.user.id,
        json!({ "client_id": client.id, "scope": scope.to_string(), "sid": session.sid }),
    );
    Ok(true)
}
