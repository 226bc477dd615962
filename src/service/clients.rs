//! Actions on clients: create, rotate the secret, disable, enable.

use secrecy::SecretString;
use serde_json::json;

use super::Ops;
use crate::clients::{self, Client, ClientError, NewClient};
use crate::store::StoreError;

/// Registers a client; returns it with the secret to show once (none for a
/// public client). Audited as `client.created` with its summary.
pub async fn create(
    ops: &Ops<'_>,
    new: NewClient,
) -> Result<(Client, Option<SecretString>), ClientError> {
    let created = clients::create_client(
        ops.store,
        &ops.config.max_client_lifetimes(),
        new,
        ops.now(),
    )
    .await?;
    // Its scopes appear in the discovery documents at once on this node.
    ops.clients_changed().await;
    ops.record("client.created", &created.0.id, created.0.summary());
    Ok(created)
}

/// Replaces a confidential client's secret with `given` (or a generated
/// one, returned to show once); the current one keeps working until
/// `previous_until`. `force` rotates even while the previous rotation's
/// overlap lasts. Audited as `client.secret_rotated`.
pub async fn rotate_secret(
    ops: &Ops<'_>,
    client_id: &str,
    given: Option<SecretString>,
    previous_until: i64,
    force: bool,
) -> Result<SecretString, ClientError> {
    let secret = clients::rotate_secret(
        ops.store,
        client_id,
        given,
        previous_until,
        ops.now(),
        force,
    )
    .await?;
    ops.clients_changed().await;
    ops.record(
        "client.secret_rotated",
        client_id,
        json!({ "client_id": client_id, "previous_secret_valid_until": previous_until }),
    );
    Ok(secret)
}

/// Disables a client (its tokens are refused at once on this node, within
/// a second elsewhere) or enables it. `NotFound` for an unknown client.
pub async fn set_disabled(
    ops: &Ops<'_>,
    client_id: &str,
    disabled: bool,
) -> Result<(), StoreError> {
    ops.store.set_client_disabled(client_id, disabled).await?;
    ops.clients_changed().await;
    let event = if disabled {
        "client.disabled"
    } else {
        "client.enabled"
    };
    ops.record(
        event,
        client_id,
        json!({ "client_id": client_id, "disabled": disabled }),
    );
    Ok(())
}

/// Requires a second factor of the client's users (or stops requiring
/// it). `NotFound` for an unknown client.
pub async fn set_require_mfa(
    ops: &Ops<'_>,
    client_id: &str,
    required: bool,
) -> Result<(), StoreError> {
    ops.store
        .set_client_require_mfa(client_id, required)
        .await?;
    ops.clients_changed().await;
    ops.record(
        "client.mfa_changed",
        client_id,
        json!({ "client_id": client_id, "require_mfa": required }),
    );
    Ok(())
}
